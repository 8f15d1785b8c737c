"""Shared fixtures: real example tables written to real files, and bundles trained once per session.

The suite runs on pytest-xdist's workers (``-n``, see pyproject.toml), and each worker has its own session
fixtures; :func:`shared` makes every table, run and bundle below once per test session all the same, under a
file lock, so no model is trained twice because two workers need it.
"""

import fcntl
import os
from pathlib import Path
from typing import Callable

# Each of pytest-xdist's workers gets its share of the cores (joblib's cpu_count, which mlkiln's Compute
# uses, reads LOKY_MAX_CPU_COUNT; OpenMP and BLAS read theirs when first loaded, so before any import of
# them): two workers each fitting on every core made OpenMP's threads wait on each other, and one small
# gradient-boosting fit took seconds. The tests that run fits on several cores ask for them (n_jobs=2).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _name in ("LOKY_MAX_CPU_COUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import joblib
import pandas as pd
import pytest

# The suite's workers share the cores, so OpenMP's threads wait passively, not spinning at all: a test on n_jobs=2
# spun 158 s on a loaded machine. Read when OpenMP loads: before mlkiln (which would spin a little) and scikit-learn
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import mlkiln  # noqa: E402
from mlkiln.examples import EXAMPLES, load_example


def shared(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """The path ``name`` in a directory of this test session, made by ``make(path)`` if no worker made it yet."""
    base = tmp_path_factory.getbasetemp()
    # xdist's workers each have a base directory inside the session's one; alone, the base is the session's
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    root.mkdir(exist_ok=True)
    path = root / name
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            make(path)
    return path


def _dump(path: Path, value) -> None:
    partial = path.with_name(f".{path.name}.partial")
    joblib.dump(value, partial)
    partial.rename(path)


def shared_run(tmp_path_factory, name: str, train: Callable[[], object]):
    """A run trained once per session (pickled for the other workers)."""
    return joblib.load(shared(tmp_path_factory, f"{name}.joblib", lambda path: _dump(path, train())))


def shared_table(tmp_path_factory, name: str, frame: Callable[[], pd.DataFrame]) -> str:
    return str(shared(tmp_path_factory, name, lambda path: frame().to_csv(path, index=False)))


#: what each xdist worker makes first, when the session needs it: the longest trainings side by side (about
#: 14 s and 13 s), where otherwise one worker often waited on the other's lock for the run it needed too
_FIRST = {"gw0": ("failure_run", "failure_bundle"),
          "gw1": ("diamonds_run", "diamonds_bundle", "ensemble_run", "ensemble_bundle")}


@pytest.fixture(scope="session", autouse=True)
def _shared_runs_side_by_side(request):
    needed = set().union(*(item.fixturenames for item in request.session.items))
    for name in _FIRST.get(os.environ.get("PYTEST_XDIST_WORKER", ""), ()):
        if name in needed:
            request.getfixturevalue(name)


@pytest.fixture(scope="session")
def diamonds() -> pd.DataFrame:
    """A 3,000-row sample of diamonds: large enough to learn, small enough to be quick."""
    return load_example("diamonds").sample(3000, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def diamonds_csv(tmp_path_factory, diamonds) -> str:
    return shared_table(tmp_path_factory, "diamonds.csv", lambda: diamonds)


@pytest.fixture(scope="session")
def failure_csv(tmp_path_factory) -> str:
    return shared_table(tmp_path_factory, "machine.csv", lambda: load_example("machine-failure"))


@pytest.fixture(scope="session")
def diamonds_run(tmp_path_factory, diamonds_csv):
    return shared_run(tmp_path_factory, "diamonds_run",
                      lambda: mlkiln.train(diamonds_csv, target="price", models=["linear", "hgb"]))


@pytest.fixture(scope="session")
def diamonds_bundle(tmp_path_factory, diamonds_run) -> str:
    return str(shared(tmp_path_factory, "diamonds", diamonds_run.save))


@pytest.fixture(scope="session")
def linear_bundle(tmp_path_factory, diamonds_csv) -> str:
    """The course's least-squares model alone: fitted by mlkiln.least_squares' streaming fit."""
    return str(shared(tmp_path_factory, "linear",
                      lambda path: mlkiln.train(diamonds_csv, target="price", models=["linear"]).save(path)))


@pytest.fixture(scope="session")
def failure_run(tmp_path_factory, failure_csv):
    """The real AI4I table as its example defines it: RNF dropped (a failure-mode label)."""
    example = EXAMPLES["machine-failure"]
    return shared_run(tmp_path_factory, "failure_run",
                      lambda: mlkiln.train(failure_csv, target=example.target, drop=list(example.drop),
                                           models=["logistic_l1", "hgb"]))


@pytest.fixture(scope="session")
def failure_bundle(tmp_path_factory, failure_run) -> str:
    return str(shared(tmp_path_factory, "failure", failure_run.save))


@pytest.fixture(scope="session")
def ensemble_csv(tmp_path_factory, diamonds) -> str:
    return shared_table(tmp_path_factory, "ensemble.csv", lambda: diamonds.head(1500))


@pytest.fixture(scope="session")
def ensemble_run(tmp_path_factory, ensemble_csv):
    """Three families, two candidates each: ensemble selection weighs them, and the ensemble wins.

    ``common.ENSEMBLE_ARGS`` is the same training on the command line.
    """
    return shared_run(tmp_path_factory, "ensemble_run",
                      lambda: mlkiln.train(ensemble_csv, target="price", models=["ridge", "hgb", "extra_trees"],
                                           trials=2))


@pytest.fixture(scope="session")
def ensemble_bundle(tmp_path_factory, ensemble_run) -> str:
    return str(shared(tmp_path_factory, "ensemble", ensemble_run.save))


#: the real Titanic passenger list: names (with their titles) as free text beside categories and a number
TITANIC_CSV = str(Path(__file__).parent / "data" / "titanic.csv")


@pytest.fixture(scope="session")
def titanic_csv() -> str:
    return TITANIC_CSV


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """Names read as words by a linear model (sparse) and gradient boosting (dense, beside native categories)."""
    return shared_run(tmp_path_factory, "text_run",
                      lambda: mlkiln.train(TITANIC_CSV, target="survived", models=["logistic_l2", "hgb"], trials=2))


@pytest.fixture(scope="session")
def text_bundle(tmp_path_factory, text_run) -> str:
    return str(shared(tmp_path_factory, "text", text_run.save))


@pytest.fixture(scope="session")
def bagged_run(tmp_path_factory, ensemble_csv):
    """Gradient boosting alone under --trials: bagged by rule, not by the clock (selection.bag_fits)."""
    return shared_run(tmp_path_factory, "bagged_run",
                      lambda: mlkiln.train(ensemble_csv, target="price", models=["hgb"], trials=2))


@pytest.fixture(scope="session")
def bagged_bundle(tmp_path_factory, bagged_run) -> str:
    return str(shared(tmp_path_factory, "bagged", bagged_run.save))


@pytest.fixture(scope="session")
def bagged_failure_run(tmp_path_factory, failure_csv):
    """Bagged gradient boosting on the real AI4I table: a rare class, so a decision threshold cuts the vote."""
    example = EXAMPLES["machine-failure"]
    return shared_run(tmp_path_factory, "bagged_failure_run",
                      lambda: mlkiln.train(failure_csv, target=example.target, drop=list(example.drop),
                                           models=["hgb"], trials=1))


@pytest.fixture(scope="session")
def bagged_failure_bundle(tmp_path_factory, bagged_failure_run) -> str:
    return str(shared(tmp_path_factory, "bagged_failure", bagged_failure_run.save))


@pytest.fixture(scope="session")
def threaded_csv(tmp_path_factory) -> str:
    """10,000 rows, a column of 5,000 codes: the final fit runs on every core, and least squares and gradient
    boosting make an ensemble whose members the fit runs in joblib workers."""
    import numpy as np

    def frame():
        rng = np.random.default_rng(0)
        codes = rng.choice(np.array([f"v{i:05d}" for i in range(5000)]), 10_000)
        number = rng.normal(size=10_000)
        return pd.DataFrame({"code": codes, "number": number,
                             "y": 2 * number + 3 * np.char.endswith(codes.astype(str), "7") + rng.normal(size=10_000)})
    return shared_table(tmp_path_factory, "threaded.csv", frame)


@pytest.fixture(scope="session")
def threaded_bundle(tmp_path_factory, threaded_csv) -> str:
    return str(shared(tmp_path_factory, "threaded", lambda path: mlkiln.train(
        threaded_csv, target="y", models=["linear", "hgb"], trials=2).save(path)))


@pytest.fixture(scope="session")
def league_csv(tmp_path_factory) -> str:
    """2,000 football results between 40 teams of hidden strength: two many-valued text columns, three classes,
    where target encoding (``hgb_target``) has something to encode; and 60 referees of hidden leaning, their ids
    numbers (an id column as :func:`mlkiln.pipeline.code_columns` finds them); and the kickoff, a time over two
    seasons: the home side does better on Sundays, which only the date's weekday shows (pipeline.date_parts)."""
    import numpy as np

    def frame():
        rng = np.random.default_rng(7)
        teams = np.array([f"team {i:02d}" for i in range(40)])
        strength = dict(zip(teams, rng.normal(size=40)))
        home, away = rng.choice(teams, 2000), rng.choice(teams, 2000)
        referees = 1000 + 7 * rng.permutation(60)  # ids, not in the order of their leaning
        referee = rng.choice(referees, 2000)
        leaning = dict(zip(referees, rng.normal(scale=0.7, size=60)))
        edge = (np.array([strength[h] - strength[a] for h, a in zip(home, away)]) + 0.3 + rng.normal(size=2000)
                + np.array([leaning[r] for r in referee]))
        rounds = rng.integers(1, 35, 2000)
        kickoff = (pd.Timestamp("2022-08-01") + pd.to_timedelta(rng.integers(0, 700, 2000), unit="D")
                   + pd.to_timedelta(rng.choice([13.5, 15.5, 18.5, 20.75], 2000), unit="h"))
        edge += 1.2 * (kickoff.day_of_week == 6)
        return pd.DataFrame({"home": home, "away": away, "round": rounds, "referee": referee,
                             "kickoff": kickoff.strftime("%Y-%m-%d %H:%M"),
                             "result": np.where(edge > 0.6, "home", np.where(edge < -0.4, "away", "draw"))})
    return shared_table(tmp_path_factory, "league.csv", frame)


@pytest.fixture(scope="session")
def league_run(tmp_path_factory, league_csv):
    return shared_run(tmp_path_factory, "league_run",
                      lambda: mlkiln.train(league_csv, target="result", models=["hgb", "hgb_target"], trials=2))


@pytest.fixture(scope="session")
def league_bundle(tmp_path_factory, league_run) -> str:
    return str(shared(tmp_path_factory, "league", league_run.save))
