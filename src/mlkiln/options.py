"""The training options: validated before any data is read, in the library's own words.

This module imports nothing heavy, so the command line builds its parser and
rejects a bad argument without loading scikit-learn. The names here (tasks,
families, metrics, searches) are the one list every other module reads.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ArgumentError, BundleError, InputError

#: what ``C`` means everywhere in mlkiln: the one wording, stored in the card and shown by the CLI and report
C_NOTE = (
    "C is scikit-learn's C: the INVERSE of the regularisation strength. The course writes the L1 "
    "objective with a weight that multiplies the penalty term; that weight is 1/C. Small C = strong penalty."
)

TASKS = ("auto", "regression", "classification")

#: characters that make a data path a glob pattern (a table in several files)
GLOB_CHARS = "*?["


def glob_root(path: str | os.PathLike) -> Path:
    """The folder a glob pattern searches (its leading parts without a glob character); a path that exists,
    itself."""
    if os.path.exists(path):
        return Path(path)
    return Path(*itertools.takewhile(lambda part: not any(c in part for c in GLOB_CHARS), Path(path).parts))

#: a value written with 16 digits or more in a row is a code (an order or account number), not a quantity: a
#: float64 holds 15 to 17 significant digits, and 20-digit order numbers read as numbers became close, rounded
#: values kept as a numeric feature. A column where most values are so written is text (data.read_table reads
#: it as such, and schema.column_kind calls it categorical); the scorer echoes such columns as written.
CODE_DIGITS = r"(?:^|[^\d.,])\d{16}"  # not the fraction of a number written at full precision (0.1304035754887429)
#: a whole number written with a leading zero (``007``, ``02134``): a code, where :func:`written_as_codes` says so
LEADING_ZERO = r"^\s*[+-]?0\d"


def written_as_codes(text) -> bool:
    """Whether a column, as written (a pandas Series of text), holds codes: most values with 16 digits or more in
    a row (:data:`CODE_DIGITS`), or whole numbers only, most with a leading zero (labels ``01``, ``007``, ``010``)
    or some with one and every value of one width (zip codes ``02134`` and ``10001``: 47 % of a table's rows were
    written with the zero). data.read_table reads such a CSV column as text and schema.column_kind calls it
    categorical, so the scorer echoes it as written."""
    text = text.dropna().astype(str).str.strip()
    if not len(text):
        return False
    if text.str.contains(CODE_DIGITS).mean() >= 0.5:
        return True
    if not text.str.fullmatch(r"[+-]?\d+").all():  # not dates (01.02.2020) nor times (01:30)
        return False
    zeros = text.str.contains(LEADING_ZERO, regex=True)
    return bool(zeros.mean() >= 0.5 or (zeros.any() and text.str.len().nunique() == 1))


CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
#: names an output table may have: what it is written as (a .csv.gz or .tsv name would promise another format)
OUTPUT_SUFFIXES = (".csv", *PARQUET_SUFFIXES)


def output_format(path: str | os.PathLike) -> str:
    """The format of a table to write: ``.csv`` (or no suffix) or a Parquet suffix.

    Other names are refused: ``.csv.gz`` or ``.tsv`` would promise a format
    (compressed, tab-separated) the file would not have. Here, not in :mod:`mlkiln.data`, so ``predict -o
    scores.xlsx`` is refused before scikit-learn is imported and the bundle loaded (3 s, more on a busy machine).
    """
    name = str(path).lower()
    if Path(path).suffix and not name.endswith(OUTPUT_SUFFIXES):
        raise InputError(f"the output {path} is neither .csv nor .parquet; name the file for the format to write")
    return "parquet" if name.endswith(PARQUET_SUFFIXES) else "csv"


def check_data_path(path: str | os.PathLike) -> None:
    """Refuse a data path that names no file, directory or glob pattern: before scikit-learn is imported.

    ``mlkiln train missing.csv`` took 3 s to say so. :mod:`mlkiln.data`
    checks every file it reads again, in the same words.
    """
    if not os.path.exists(path) and not any(c in str(path) for c in GLOB_CHARS):
        raise InputError(data_not_found(path))
    if os.path.isfile(path) and os.path.getsize(path) == 0:  # sweep 11: 5.7 s to say so
        raise InputError(f"{path} is empty")


def data_not_found(path: str | os.PathLike) -> str:
    if os.path.islink(path):  # exists() follows links: a dangling one, or a loop, exists as a name only
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"data file {path} is a symbolic link in a loop (it points back to itself)"
        return f"data file not found: {path} is a symbolic link to {os.readlink(path)}, which does not exist"
    return f"data file not found: {path}"


#: the column of the predictions in every scored table (with ``proba_<class>`` beside it for classification)
PREDICTION = "prediction"

#: the file every bundle directory holds, listing the others with their SHA-256
MANIFEST = "MANIFEST.sha256"
#: files that mark a directory as one mlkiln wrote, which --force may replace: a bundle's manifest, an MLflow
#: model's MLmodel (atomic.check_replaceable)
OUTPUT_MARKERS = (MANIFEST, "MLmodel")


def check_bundle_path(path: str | os.PathLike) -> None:
    """Refuse a path that cannot be a bundle (no directory, no manifest): before scikit-learn is imported.

    :func:`mlkiln.bundle.verify` checks it again, and everything else, in the same words.
    """
    if not os.path.isdir(path):
        raise BundleError(f"{path} is not a model bundle directory" + ("" if os.path.exists(path) else " (it does not exist)"))
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        raise BundleError(f"{path} has no {MANIFEST}; it is not an mlkiln bundle or it is incomplete")

#: model families per task, in the order they are tried and listed: the names of
#: :data:`mlkiln.pipeline.REGISTRY` (a test keeps the two equal), here without importing scikit-learn
FAMILIES = {
    "regression": ("linear", "ridge", "lasso", "ridge_normal", "hgb", "hgb_target", "rf", "extra_trees", "mlp"),
    "classification": ("logistic_l1", "logistic_l2", "hgb", "hgb_target", "rf", "extra_trees"),
}

#: what each selectable metric is called and whether larger is better
SELECTION_METRICS = {
    "regression": {"r2": True, "rmse": False, "mae": False, "mape": False},
    "classification": {
        "accuracy": True,
        "balanced_accuracy": True,
        "f1_macro": True,
        "f1_weighted": True,
        "f1": True,
        "roc_auc": True,
        "average_precision": True,
        "log_loss": False,
    },
}

#: metrics defined for two classes only (ROC AUC is one class against the rest averaged over the classes for more)
BINARY_METRICS = ("f1", "average_precision")

#: model formats ``mlkiln export`` writes
EXPORT_FORMATS = ("mlflow",)

#: search strategies; ``auto`` is a family's portfolio where it has one (gradient boosting), else halving for the
#: expensive families and the full grid for the others
SEARCHES = ("auto", "grid", "random", "halving", "portfolio")


@dataclass(frozen=True)
class TrainOptions:
    """Everything :func:`mlkiln.train` is told besides the data and the target (see its docstring).

    Construction validates every value that does not need the data; the
    checks that do (a metric for the inferred task, class counts per fold)
    run in :meth:`for_task` and in the split step.
    """

    task: str = "auto"
    metric: str | None = None
    models: tuple[str, ...] | None = None
    folds: int = 3
    test_size: float = 0.2
    seed: int = 0
    drop: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    n_jobs: int | None = None
    search: str = "auto"
    budget: float | None = None
    trials: int | None = None
    cluster: str | None = None  # None: $MLKILN_DASK_SCHEDULER, else this machine (cluster.scheduler_address)
    ensemble: bool = True
    max_latency_us: float | None = None
    bagging: bool = True

    def __post_init__(self) -> None:
        _choice("task", self.task, TASKS)
        _whole("folds", self.folds, minimum=2)
        _whole("seed", self.seed, minimum=0, maximum=MAX_SEED)
        if isinstance(self.test_size, bool) or not isinstance(self.test_size, (int, float)) or not 0 < self.test_size < 1:
            raise ArgumentError("test_size", self.test_size, "must be a share of the rows, between 0 and 1 (exclusive)")
        if self.n_jobs is not None:
            _whole("n_jobs", self.n_jobs, minimum=1)
        _choice("search", self.search, SEARCHES)
        if self.budget is not None:
            _positive("budget", self.budget, "seconds")
        if self.trials is not None:
            _whole("trials", self.trials, minimum=1)
        if self.max_latency_us is not None:
            _positive("max_latency_us", self.max_latency_us, "microseconds")
        for name in ("drop", "keep"):  # None, as for models, says none
            if getattr(self, name) is None:
                object.__setattr__(self, name, ())
        for name in ("models", "drop", "keep"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, str):  # one name: drop="b" is ["b"], never the letters of "bb"
                    value = (value,)
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise ArgumentError(name, value, "must be a list of names")
                object.__setattr__(self, name, tuple(dict.fromkeys(value)))
        if self.models is not None and not self.models:  # not "all of them": None says that
            raise ArgumentError("models", [], "names no family; leave it out (None) for every family")
        both = [name for name in self.drop if name in self.keep]
        if both:
            raise ArgumentError("keep", list(self.keep), f"{', '.join(map(repr, both))} is also in drop: drop it or "
                                "keep it, not both")
        for name in ("ensemble", "bagging"):
            if not isinstance(getattr(self, name), bool):
                raise ArgumentError(name, getattr(self, name), "must be True or False")
        tasks = FAMILIES if self.task == "auto" else {self.task: FAMILIES[self.task]}
        known = {f for names in tasks.values() for f in names}
        if any(m not in known for m in self.models or ()):  # perhaps a family registered at run time
            tasks = {task: _registered(task) for task in tasks}
            known = {f for names in tasks.values() for f in names}
        unknown = [m for m in self.models or () if m not in known]
        if unknown:
            other = {m: task for task in FAMILIES if task not in tasks for m in _registered(task) if m in unknown}
            nowhere = [m for m in unknown if m not in other]
            if not nowhere:  # families of the other task: say so (--task regression, logistic_l1)
                said = ", ".join(f"{m} is a {task} family" for m, task in other.items())
                raise ArgumentError("models", list(self.models), f"{said}, and the task is {self.task}; choose "
                                    f"from {', '.join(sorted(known))}, or let the task be inferred (auto)")
            raise ArgumentError("models", list(self.models), f"unknown: {', '.join(nowhere)}; choose from {', '.join(sorted(known))}")
        if self.models and not any(set(self.models) <= set(names) for names in tasks.values()):
            # said before the table is read: no task has them all (a model of each, for a table of either)
            split = "; ".join(f"{task}: {', '.join(m for m in self.models if m in names)}"
                              for task, names in tasks.items() if any(m in names for m in self.models))
            raise ArgumentError("models", list(self.models), f"no one task has all of them ({split}); name the "
                                "families of one task")
        if self.metric is not None:
            metrics = {m for task in tasks for m in SELECTION_METRICS[task]}
            _choice("metric", self.metric, sorted(metrics))

    def families(self, task: str) -> list[str]:
        """The families to try for ``task``, in the order they are tried."""
        names = _registered(task)
        if not self.models:
            return list(names)
        unknown = [m for m in self.models if m not in names]
        if unknown:
            raise ArgumentError("models", list(self.models),
                                f"not {task} families: {', '.join(unknown)}; choose from {', '.join(names)}")
        return list(self.models)


def _registered(task: str) -> tuple[str, ...]:
    """The families of :data:`mlkiln.pipeline.REGISTRY` for ``task``, those registered at run time included.

    A family is registered at run time only by a process that imported the registry: until then it holds
    :data:`FAMILIES`, and a typo in ``--models`` is refused without importing scikit-learn (3.3 s, was)."""
    if "mlkiln.pipeline" not in sys.modules:
        return FAMILIES[task]
    from .pipeline import family_names

    return family_names(task)


def _choice(param: str, value, allowed) -> None:
    if value not in allowed:
        raise ArgumentError(param, value, f"must be one of {', '.join(allowed)}")


def _positive(param: str, value, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ArgumentError(param, value, f"must be a positive number of {unit}")


#: numpy's and scikit-learn's seeds are 32-bit
MAX_SEED = 2**32 - 1


def _whole(param: str, value, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(param, value, f"must be a whole number, at least {minimum}")
    if maximum is not None and value > maximum:
        raise ArgumentError(param, value, f"must be a whole number, at most {maximum}")
