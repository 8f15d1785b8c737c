"""Understand a table: column kinds, the task, columns to exclude, and the input schema.

The schema decided here at training time is the contract for every later
input: :func:`conform` applies it to prediction data for ``predict``,
``evaluate``, the Python API and the HTTP service alike.
"""

from __future__ import annotations

import difflib
import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .errors import MlkilnError

log = logging.getLogger("mlkiln")

#: integer targets with at most this many distinct values are treated as classes
MAX_CLASSES_FOR_AUTO = 20
#: a text column whose distinct values cover at least this share of rows is an identifier
ID_UNIQUE_RATIO = 0.95
#: a single column scoring this well on its own (R2 or balanced accuracy) leaks the target
LEAK_SCORE = 0.99
#: a binary column is leakage when one value is pure for one class and chance
#: alone would give that purity with at most this probability
LEAK_CHANCE = 1e-4
#: numeric-looking text columns: the share of values that must parse as numbers
NUMERIC_TEXT_SHARE = 0.95
#: how many categories the schema lists per column
MAX_LISTED_CATEGORIES = 100


def coerce_frame(frame, kinds):
    """Return the feature columns of ``frame`` in the dtypes the pipeline expects.

    numeric -> float64 (unparseable text becomes NaN); datetime -> seconds since
    1970-01-01 UTC as float64; categorical -> Python strings with NaN for missing.
    This function uses pandas and numpy only, because the bundle's ``train.py``
    embeds its source to reproduce the model without mlkiln.
    """
    columns = {}
    for name, kind in kinds.items():
        col = frame[name]
        if kind == "numeric":
            columns[name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif kind == "datetime":
            stamps = pd.to_datetime(col, errors="coerce", utc=True)
            columns[name] = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        else:
            text = col.astype("object").map(str, na_action="ignore")
            columns[name] = text.where(col.notna(), np.nan).astype("object")
    return pd.DataFrame(columns, index=frame.index)


def coerce_target(y, task):
    """Return the target as the model sees it, without the rows where it is missing.

    Regression targets become float64 (unreadable text counts as missing).
    Class labels that are whole numbers become int64 and anything else text,
    so labels read the same from CSV, Parquet or JSON. Like
    :func:`coerce_frame`, this uses pandas and numpy only.
    """
    if task == "regression":
        numbers = pd.to_numeric(y, errors="coerce").astype("float64")
        return numbers[numbers.notna() & np.isfinite(numbers)]
    y = y[y.notna()]
    if pd.api.types.is_bool_dtype(y) or pd.api.types.is_numeric_dtype(y):
        numbers = y.astype("float64")
        if np.all(np.mod(numbers, 1.0) == 0.0):
            return numbers.astype("int64")
        return numbers
    return y.astype("object").map(str).astype("object")


def column_kind(col: pd.Series) -> str:
    """Classify a raw column as ``numeric``, ``datetime`` or ``categorical``."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    values = col.dropna()
    if len(values) and not isinstance(col.dtype, pd.CategoricalDtype):
        parsed = pd.to_numeric(values, errors="coerce")
        if parsed.notna().mean() >= NUMERIC_TEXT_SHARE:
            return "numeric"
    return "categorical"


def infer_task(y: pd.Series) -> str:
    """``regression`` for numbers with many distinct values, else ``classification``."""
    values = y.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification"
    if not np.all(np.mod(values.to_numpy(dtype="float64"), 1.0) == 0.0):
        return "regression"
    return "classification" if values.nunique() <= MAX_CLASSES_FOR_AUTO else "regression"


def check_target(frame: pd.DataFrame, target: str) -> None:
    """Fail with the closest column names when ``target`` is not a column."""
    if target in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
    raise MlkilnError(f"target column {target!r} not found{hint} (columns: {shown})")


def screen_columns(
    X: pd.DataFrame, y: pd.Series, task: str, kinds: dict[str, str], seed: int = 0
) -> dict[str, str]:
    """Name the columns that should not be features, each with the reason.

    Identifier-like and constant columns carry no signal that generalises;
    a column that alone predicts the target almost perfectly is nearly always
    recorded after the outcome (target leakage) and would make a model that
    fails in production.
    """
    reasons: dict[str, str] = {}
    n = len(X)
    for name in X.columns:
        col = X[name]
        n_unique = col.nunique(dropna=False)
        if n_unique <= 1:
            reasons[name] = "constant: one value in every row"
        elif kinds[name] == "categorical" and n >= 20 and col.nunique() >= ID_UNIQUE_RATIO * col.notna().sum():
            reasons[name] = "identifier-like: a distinct text value in (almost) every row"
        elif kinds[name] == "numeric" and _is_integer_id(col):
            reasons[name] = "identifier-like: distinct consecutive integers, one per row"
    candidates = [c for c in X.columns if c not in reasons]
    for name in candidates:
        reason = _leak_reason(X[name], y, task, seed)
        if reason:
            reasons[name] = f"target leakage: {reason}"
    return reasons


def _is_integer_id(col: pd.Series) -> bool:
    values = pd.to_numeric(col, errors="coerce")
    if values.isna().any() or len(values) < 20 or values.nunique() != len(values):
        return False
    arr = values.to_numpy(dtype="float64")
    if not np.all(np.mod(arr, 1.0) == 0.0):
        return False
    ordered = np.sort(arr)
    return bool(np.all(np.diff(ordered) == 1.0) or np.all(np.diff(arr) > 0))


def _leak_reason(col: pd.Series, y: pd.Series, task: str, seed: int) -> str | None:
    if task == "classification" and col.nunique() == 2:
        reason = _pure_flag_reason(col, y)
        if reason:
            return reason
    score = _single_column_score(col, y, task, seed)
    if score is not None and score >= LEAK_SCORE:
        what = "R2" if task == "regression" else "balanced accuracy"
        return f"predicts the target on its own with {what} {score:.3f}"
    return None


def _pure_flag_reason(col: pd.Series, y: pd.Series) -> str | None:
    shares = y.value_counts(normalize=True)
    for value, rows in y.groupby(col, observed=True):
        classes = rows.unique()
        if len(classes) != 1:
            continue
        cls = classes[0]
        chance = float(shares[cls]) ** len(rows)
        if len(rows) >= 3 and chance <= LEAK_CHANCE:
            return (
                f"value {_plain(value)!r} occurs only with target {_plain(cls)!r} "
                f"({len(rows)} rows; chance {chance:.0e})"
            )
    return None


def _plain(value):
    """numpy scalars as Python ones, so messages read ``1`` rather than ``np.int64(1)``."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _single_column_score(col: pd.Series, y: pd.Series, task: str, seed: int) -> float | None:
    """Score a small tree on one column, trained on one half and scored on the other."""
    if pd.api.types.is_numeric_dtype(col):
        x = col.to_numpy(dtype="float64")
    else:
        x = col.astype("category").cat.codes.to_numpy(dtype="float64")
        x[x < 0] = np.nan
    rng = np.random.default_rng(seed)
    n = len(x)
    order = rng.permutation(n)[: min(n, 20_000)]
    half = len(order) // 2
    fit_idx, score_idx = order[:half], order[half:]
    if half < 10:
        return None
    target = y.to_numpy()
    tree = (DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier)(
        max_depth=8, min_samples_leaf=5, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree.fit(x[fit_idx, None], target[fit_idx])
        pred = tree.predict(x[score_idx, None])
        if task == "classification":
            return float(balanced_accuracy_score(target[score_idx], pred))
        # a tree approximates a straight line in steps; a rank correlation sees
        # any monotone copy of the target at once
        rank_r2 = pd.Series(x).corr(pd.Series(target, dtype="float64"), method="spearman") ** 2
        return float(np.nanmax([r2_score(target[score_idx], pred), rank_r2]))


def describe_columns(frame: pd.DataFrame, kinds: dict[str, str]) -> list[dict]:
    """The input schema stored in the card: names, kinds, dtypes, categories, ranges."""
    described = []
    coerced = coerce_frame(frame, kinds)
    for name, kind in kinds.items():
        col = coerced[name]
        entry = {
            "name": str(name),
            "kind": kind,
            "dtype": str(frame[name].dtype),
            "missing": round(float(col.isna().mean()), 6),
        }
        if kind == "categorical":
            counts = col.value_counts()
            entry["n_categories"] = int(len(counts))
            entry["categories"] = [str(v) for v in counts.index[:MAX_LISTED_CATEGORIES]]
        elif col.notna().any():
            entry["min"] = float(col.min())
            entry["max"] = float(col.max())
        described.append(entry)
    return described


def conform(frame: pd.DataFrame, columns: list[dict], target: str | None = None) -> pd.DataFrame:
    """Check new data against the schema and return it ready for the pipeline.

    Missing columns and values that cannot be read as the column's kind are
    errors naming the column (and the first bad row); extra columns are ignored
    with a warning (the ``target`` column silently); order does not matter;
    unseen categories are counted.
    """
    kinds = {c["name"]: c["kind"] for c in columns}
    frame = frame.rename(columns=str)
    missing = [name for name in kinds if name not in frame.columns]
    if missing:
        raise MlkilnError(f"input is missing column(s) the model needs: {', '.join(map(repr, missing))}")
    extra = [name for name in frame.columns if name not in kinds and name != target]
    if extra:
        log.warning("ignoring %d column(s) the model does not use: %s", len(extra), ", ".join(map(repr, extra)))
    coerced = coerce_frame(frame, kinds)
    for spec in columns:
        name = spec["name"]
        if spec["kind"] == "categorical":
            continue
        bad = coerced[name].isna() & frame[name].notna() & (frame[name].astype("object").map(str, na_action="ignore").str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise MlkilnError(
                f"column {name!r} expects {'a number' if spec['kind'] == 'numeric' else 'a date/time'}, "
                f"got {frame[name].iloc[row]!r} in row {row + 1}"
            )
    for spec in columns:
        if spec["kind"] == "categorical" and spec.get("n_categories", 0) <= len(spec.get("categories", [])):
            unseen = coerced[spec["name"]].dropna()
            unseen = unseen[~unseen.isin(spec["categories"])]
            if len(unseen):
                log.warning(
                    "column %r: %d value(s) not seen in training (e.g. %r), handled as unknown",
                    spec["name"], len(unseen), unseen.iloc[0],
                )
    return coerced
