"""Write the bundle's ``train.py``: a standalone script that rebuilds the model.

The script needs pandas and scikit-learn only. It embeds the source of
:mod:`mlkiln.pipeline`, :mod:`mlkiln.least_squares` and the data-coercion
functions of :mod:`mlkiln.schema`, so there is one home for that logic and the
script cannot drift from what mlkiln itself ran.
"""

from __future__ import annotations

import inspect
import pprint

from . import data, least_squares, pipeline, schema
from .card import Card

_TEMPLATE = '''\
"""Reproduce the model of this bundle: {summary}.

Made by mlkiln {version} on {created}. Needs only the packages in
requirements.txt (pandas, scikit-learn and their dependencies); mlkiln is not
required.

    python train.py DATA [-o model.joblib]

DATA is the training table ({source}); its sha256 was
{sha256}. The script splits it as mlkiln did (test share {test_size}, seed
{seed}), fits the chosen pipeline with the hyperparameters found by
{folds}-fold cross-validation on all non-test rows, prints the test score and
saves the fitted pipeline with joblib. Its predictions equal the bundle's.
"""

import argparse
import contextlib
import functools
import glob
import threading
import unicodedata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
from sklearn.model_selection import train_test_split

TARGET = {target!r}
TASK = {task!r}
FAMILY = {family!r}
PARAMS = {params}
# an ensemble's members: (name, family, hyperparameters, weight in the vote)
MEMBERS = {members}
THRESHOLD = {threshold!r}
# extra fits, each on a random part of the rows, averaged with the fit on all of them (0: none; pipeline.bag)
BAGGED = {bagged!r}
# categories kept per text column (None: no column has more, so the encoders need not count them)
MAX_CATEGORIES_KEPT = {max_categories!r}
# number columns like ids or codes, which target-encoding families also encode by the target (besides the number)
CODES = {codes!r}
# free-text columns, read as the TF-IDF weights of their most frequent words and pairs of words
TEXTS = {texts!r}
# whether trees read those words too (else only linear models do)
TREE_WORDS = {tree_words!r}
# date columns and the parts trees read of each (hour, weekday, yearday), besides its seconds since 1970
DATES = {dates!r}
SEED = {seed!r}
TEST_SIZE = {test_size!r}
N_CLASSES = {n_classes!r}
# how mlkiln read the CSV file (delimiter and encoding it detected)
CSV_OPTIONS = {csv_options!r}
# feature columns and how each is read (numeric, categorical or datetime)
KINDS = {kinds}
# the rows of the final fit: None for every non-test row, else the first FIT_ROWS of nested_sample (a --budget's)
FIT_ROWS = {fit_rows!r}
# the cores of the machine that trained it: the final fit ran on fit_threads(rows, CORES) threads (BLAS, OpenMP
# and joblib), as here: a least-squares member fitted in a joblib worker sums in another order than on two threads
CORES = {cores!r}
FOLDS = {folds!r}


# ---- data coercion, as in mlkiln.schema ----

#: as mlkiln.schema.VALUE_MAX: a number beyond float32's range is unreadable
VALUE_MAX = float(np.finfo(np.float32).max)

{number_source}

{seconds_source}

{coerce_source}

{target_source}

{categories_source}

# ---- reading a CSV file and the rows of a budget's final fit, as in mlkiln.data ----

{breaks_source}

{sample_source}

# ---- the pipeline, as in mlkiln.pipeline ----

{pipeline_source}

# ---- the fit, as in mlkiln.least_squares ----

{fit_source}

# ---- the run ----

def table_files(path):
    """The file itself, or a directory's or a glob's CSV and Parquet files in name order, as mlkiln read them."""
    if Path(path).is_file():
        return [Path(path)]
    found = Path(path).rglob("*") if Path(path).is_dir() else map(Path, glob.glob(path, recursive=True))
    files = sorted(p for p in found if p.is_file() and p.name.lower().endswith({suffixes!r})
                   and not p.name.startswith((".", "_")))
    if not files:
        raise SystemExit(f"no CSV or Parquet files in {{path}}")
    return files


def read_file(path):
    if path.name.lower().endswith({parquet_suffixes!r}):
        return pd.read_parquet(path)
    with line_breaks_in_values():
        return pd.read_csv(path, engine="pyarrow", **CSV_OPTIONS)


_LINE_BREAKS = threading.Lock()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the training table: a CSV or Parquet file, or a directory or glob of them")
    parser.add_argument("-o", "--output", default="model.joblib", help="where to save the fitted pipeline")
    args = parser.parse_args()
    files = table_files(args.data)
    frame = read_file(files[0]) if len(files) == 1 else pd.concat(map(read_file, files), ignore_index=True)
    y = coerce_target(frame[TARGET], TASK)
    frame = frame.loc[y.index]
    X = as_categories(coerce_frame(frame, KINDS), KINDS)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y if TASK == "classification" else None
    )
    if FIT_ROWS is not None:
        keep = np.sort(nested_sample(y_train, TASK, SEED, FOLDS)[:FIT_ROWS])
        X_train, y_train = X_train.iloc[keep], y_train.iloc[keep]
    if MEMBERS:
        model = build_ensemble(TASK, MEMBERS, KINDS, SEED, N_CLASSES, THRESHOLD, MAX_CATEGORIES_KEPT, CODES, TEXTS,
                               TREE_WORDS, DATES)
    else:
        model = build_pipeline(TASK, FAMILY, KINDS, PARAMS, SEED, N_CLASSES, THRESHOLD, MAX_CATEGORIES_KEPT, CODES,
                               BAGGED, TEXTS, TREE_WORDS, DATES)
    threads = fit_threads(len(X_train), CORES)  # as mlkiln's final fit: sums in the same order, the same model
    with threadpool_limits(threads), joblib.parallel_config(n_jobs=threads):
        fit(model, X_train, y_train)  # least squares in blocks of rows, as mlkiln fitted it; other models by model.fit
    print(f"test score ({{'R2' if TASK == 'regression' else 'accuracy'}}): {{model.score(X_test, y_test):.6f}}")
    joblib.dump(model, args.output)
    print(f"saved {{args.output}}")


if __name__ == "__main__":
    main()
'''


def render(card: Card) -> str:
    """The text of ``train.py`` for the run described by ``card``."""
    model, source = card.model, card.data.source
    kinds = card.schema.kinds
    if source.startswith("example:"):
        source = f"mlkiln's example {source.split(':', 1)[1]!r}; export it with `mlkiln example {source.split(':', 1)[1]} -o data.csv`"
    return _TEMPLATE.format(
        summary=f"{model.family} {card.task} of {card.target!r}",
        version=card.mlkiln_version,
        created=card.created_at,
        source=source,
        sha256=card.data.sha256,
        target=card.target,
        task=card.task,
        family=model.family,
        params=pprint.pformat(model.params, sort_dicts=True),
        members=pprint.pformat([(m.name, m.family, m.params, m.weight) for m in model.members], sort_dicts=True),
        threshold=model.threshold,
        bagged=model.bagged,
        max_categories=model.max_categories,
        codes=tuple(model.codes),
        texts=tuple(model.texts),
        tree_words=model.tree_words,
        dates={name: tuple(parts) for name, parts in model.dates.items()},
        seed=card.split.seed,
        test_size=card.split.test_size,
        folds=card.split.folds,
        n_classes=len(card.classes) or 2,
        kinds=pprint.pformat(kinds, sort_dicts=False),
        fit_rows=_fit_rows(card),
        cores=card.tuning.cores,
        sample_source=inspect.getsource(data.nested_sample).rstrip(),
        breaks_source=inspect.getsource(data.line_breaks_in_values).rstrip(),
        csv_options=card.data.read_options or {"sep": ",", "encoding": "utf-8"},
        suffixes=data.CSV_SUFFIXES + data.PARQUET_SUFFIXES,
        parquet_suffixes=data.PARQUET_SUFFIXES,
        number_source="\n\n".join(inspect.getsource(f) for f in (schema._number_text, schema._number_words, schema._comma_of_words,
                                                                  schema._distinct, schema.in_range, schema.to_number)).rstrip(),
        seconds_source="\n\n".join(inspect.getsource(f) for f in (schema.to_seconds, schema.date_order,
                                                                   schema._one_timestamp)).rstrip(),
        coerce_source="\n\n".join(inspect.getsource(f) for f in (schema.clean_text, schema.held_as_numbers, schema.coerce_frame,
                                                                  schema.category_text)).rstrip(),
        target_source=inspect.getsource(schema.coerce_target).rstrip(),
        categories_source=inspect.getsource(schema.as_categories).rstrip(),
        fit_source=inspect.getsource(least_squares).rstrip(),
        pipeline_source=inspect.getsource(pipeline).rstrip(),
    )


def _fit_rows(card: Card) -> int | None:
    """The final fit's rows when a --budget gave it fewer than every training row, else ``None``."""
    fits = [step.rows for step in card.tuning.steps if step.step == "final fit"]
    return fits[-1] if fits and fits[-1] < card.split.n_train else None
