"""Understand the table: the task, the target, the usable feature columns and the selection metric.

One step of :func:`mlkiln.train`; every decision it makes is printed with
its reason and recorded in the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import metrics
from .card import Column, Metric, Target
from .data import check_folds
from .errors import ArgumentError, InputError
from .leakage import CombinationLeak
from .options import BINARY_METRICS, PREDICTION, SELECTION_METRICS, TrainOptions
from .pipeline import TEXT_TERMS, TEXT_TERMS_LINEAR
from .schema import (
    MAX_CLASSES_FOR_AUTO,
    VALUE_MAX,
    as_categories,
    check_target,
    coerce_frame,
    coerce_target,
    column_kind,
    date_order,
    describe_columns,
    held_as_numbers,
    is_bytes,
    is_nested,
    infer_task,
    number_share,
    screen_columns_with_evidence,
    text_columns,
    unreadable_warning,
)

log = logging.getLogger("mlkiln")


@dataclass
class Table:
    """The training table as the model will see it, and what was decided about it."""

    X: pd.DataFrame  # usable features: numbers, seconds, categories
    y: pd.Series
    task: str
    kinds: dict[str, str]
    columns: tuple[Column, ...]
    target: Target
    metric: Metric
    excluded: dict[str, str]
    rows_dropped: int
    leaks: tuple[CombinationLeak, ...] = ()  # the evidence of leaks spread over several columns
    texts: tuple[str, ...] = ()  # free-text columns, read as words (schema.text_columns)

    @property
    def classes(self) -> list | None:
        return list(self.target.classes) if self.target.classes else None

    @property
    def categories(self) -> list[str]:
        """The text columns read as categories: all but the free-text ones (:attr:`texts`, read as words)."""
        return [name for name, kind in self.kinds.items() if kind == "categorical" and name not in self.texts]


def understand(frame: pd.DataFrame, target: str, options: TrainOptions) -> Table:
    """Decide the task, drop rows without a target, screen the columns and pick the metric."""
    target = _as_written(frame, target)
    check_target(frame, target)
    for param in ("drop", "keep"):
        for name in getattr(options, param):
            check_target(frame, name, what=f"{param} column")
    if target in options.drop:
        raise ArgumentError("drop", list(options.drop), f"cannot drop the target column {target!r}")
    if target in options.keep:  # a feature it cannot be: the user may have meant another column
        raise ArgumentError("keep", list(options.keep), f"{target!r} is the target, not a feature to keep")
    task, y, raw_target = _target(frame[target], target, options.task)
    rows_dropped = len(frame) - len(y)
    dropped = None
    if rows_dropped:
        log.warning("dropping %d row(s) whose target %r is missing or unreadable", rows_dropped, target)
        # their text in number columns ("Total" in a footer row) is still read as missing in new rows, so
        # that predicting the training file works
        dropped = frame.drop(index=y.index)
        frame = frame.loc[y.index]  # only then: a copy of the whole table costs 1 GB and 1 s at 5M rows

    check_folds(task, y, options.folds, spare=1)  # before the columns are screened: see check_folds
    features = [c for c in frame.columns if c != target and c not in options.drop]
    nested = _not_values(frame, features, options.keep)
    kinds = {name: column_kind(frame[name]) for name in features if name not in nested}
    X = coerce_frame(frame, kinds)
    _warn_unreadable(frame, X, kinds)
    classes = None
    if task == "classification":
        classes = sorted(y.unique().tolist())
        if len(classes) < 2:
            raise InputError(f"target {target!r} has one value ({classes[0]!r}) in every row; there is nothing to learn")
        _warn_classes_in_several_spellings(classes, target)

    reasons, leaks = screen_columns_with_evidence(X, y, task, kinds, options.seed, options.keep)
    excluded = {name: why for name, why in reasons.items() if name not in options.keep}
    in_relations = {name for leak in leaks for name in leak.columns}
    for name, why in excluded.items():
        if name not in in_relations:
            log.warning("excluding column %r: %s (use --keep to override)", name, why)
    for leak in leaks:  # one line per relation, however many columns it blames
        log.warning("excluding column(s) %s: target leakage: %s (use --keep to override)",
                    ", ".join(map(repr, leak.columns)), leak.relation)
    kinds = {name: kind for name, kind in kinds.items() if name not in excluded}
    _require_features(kinds, bool(excluded or nested), target, options.drop)
    _refuse_output_names([*kinds, target], classes)
    metric = choose_metric(task, options.metric, y)
    log.info("selection metric: %s", metric.why)
    texts = text_columns(X, kinds)
    for name in texts:
        log.info("column %r: free text, read as the weights of its most frequent words and pairs of words (TF-IDF: "
                 "%s for linear models, %d for trees)", name, f"{TEXT_TERMS_LINEAR:,}", TEXT_TERMS)
    features = as_categories(X[list(kinds)], kinds)
    # free text is lowercased into words: its case variants are one text
    _warn_categories_in_several_spellings(features, {n: k for n, k in kinds.items() if n not in texts})
    return Table(
        X=features, y=y, task=task, kinds=kinds,
        columns=describe_columns(frame, kinds, X, dropped),
        target=Target(str(target), str(raw_target.dtype), tuple(classes) if classes else None),
        metric=metric, excluded={**nested, **excluded}, rows_dropped=rows_dropped, leaks=leaks, texts=texts,
    )


def _require_features(kinds: dict, excluded: bool, target: str, drop) -> None:
    """Refuse a table left without features, saying whether exclusions or the table itself left none."""
    if kinds:
        return
    if not excluded:  # the table holds the target (and dropped columns) alone
        raise InputError(f"no feature columns: the table has only the target {target!r}"
                         + (" and the columns dropped" if drop else ""))
    raise InputError("no usable feature columns are left; see the exclusions above, or use --keep")


def _as_written(frame: pd.DataFrame, target: str) -> str:
    """The header ``target`` names where it is padded with spaces (``"  price "`` for ``price``), the one such
    column: new rows match padded headers to clean ones too (:func:`mlkiln.schema.conform`)."""
    if target in frame.columns:
        return target
    padded = [name for name in frame.columns if isinstance(name, str) and name.strip() == target.strip()]
    if len(padded) != 1:
        return target
    log.info("target: the column %r", padded[0])
    return padded[0]


def _not_values(frame: pd.DataFrame, features: list[str], keep) -> dict[str, str]:
    """The columns that do not hold single values, each with why (a warning; an error for a ``keep`` column).

    Lists or records in a cell (Parquet's list and struct columns) were read
    as their printed text, categories such as "['plus' 'x']" that no new row
    would match; so were bytes (Parquet's binary columns).
    """
    found = {name: "nested values (lists or records in its cells): flatten them into columns of their own"
             for name in features if is_nested(frame[name])}
    found.update((name, "bytes, not text or numbers: decode them into text first")
                 for name in features if is_bytes(frame[name]))
    for name, why in found.items():
        if name in keep:
            raise InputError(f"keep column {name!r} holds {why}")
        log.warning("excluding column %r: %s", name, why)
    return found


def _refuse_output_names(columns: list[str], classes: list | None) -> None:
    """Refuse a feature or target named as a column ``predict`` adds (``prediction``, ``proba_<class>``): the
    score replaces it in the output, and scoring that output again fed the old scores in as the feature
    (predictions 28.7 apart)."""
    added = {PREDICTION, *(f"proba_{c}" for c in classes or ())}
    clash = [name for name in columns if name in added]
    if clash:
        raise InputError(f"column {clash[0]!r} has the name of a column predict adds to its output, which would "
                         "replace it there; rename it, or --drop it")


def _target(raw_target: pd.Series, target: str, task: str) -> tuple[str, pd.Series, pd.Series]:
    """``(task, target as the model sees it, the column as read)``: the task inferred where ``auto``, rows
    without a readable target left out (see :func:`mlkiln.schema.coerce_target`)."""
    if raw_target.isna().all():
        raise InputError(f"target column {target!r} has no values")
    held = ("lists or records" if is_nested(raw_target)
            else "bytes" if isinstance(raw_target.dropna().iloc[0], (bytes, bytearray)) else None)
    if held:  # Parquet's list, struct and binary columns: their printed forms would be the classes
        raise InputError(f"target column {target!r} holds {held}, not a number or a class: write it as one first")
    _refuse_dates(raw_target, target)
    if task == "auto":
        task = infer_task(raw_target)
        log.info("task: %s (inferred from %r; override with --task)", task, target)
    y = coerce_target(raw_target, task)
    if task == "regression":
        _check_target_size(raw_target, y, target)
        _refuse_tiny_target(y, target)
        _warn_far_targets(y, target)
    if len(y) == 0:  # as classes, only infinite numbers are left out: they are not labels
        raise InputError(f"target column {target!r} has no value usable as a class (only infinite numbers)"
                         if task == "classification" else
                         f"target column {target!r} has no numeric values; use --task classification")
    return task, y, raw_target


#: a regression target whose values are all within this of zero (but not all zero) is refused: the search keeps
#: out-of-fold predictions as float32, which rounds values below about 1e-38 to zero, and at 1e-300 every
#: metric said a perfect fit of a constant model (R2 1.0)
TARGET_MIN = 1e-30


def _refuse_tiny_target(y: pd.Series, target: str) -> None:
    largest = float(y.abs().max()) if len(y) else 0.0
    if 0.0 < largest < TARGET_MIN:
        raise InputError(f"target column {target!r}: its values are all within ±{TARGET_MIN:g} (the largest "
                         f"{largest:.3g}), too small for the models; rescale it (multiply it by a power of ten)")


def _refuse_dates(raw_target: pd.Series, target: str) -> None:
    """Many dates as the target: as classes each is a class of a row or two, as numbers unreadable. A few ("1-5",
    "6-10", which also read as dates) may well be classes."""
    if column_kind(raw_target) == "datetime" and raw_target.nunique() > MAX_CLASSES_FOR_AUTO:
        raise InputError(f"target column {target!r} holds dates or times; mlkiln predicts a number or a class: "
                         "write it as one first (days since a start date, a year, a month)")


def choose_metric(task: str, metric: str | None, y: pd.Series) -> Metric:
    """The selection metric: the user's, checked against the task, or the default for this target."""
    if metric is None:
        name, why = metrics.default_metric(task, y)
    else:
        allowed = SELECTION_METRICS[task]
        if metric not in allowed:
            raise ArgumentError("metric", metric, f"is not a {task} metric; choose from {', '.join(allowed)}")
        if metric in BINARY_METRICS and task == "classification" and y.nunique() != 2:
            raise ArgumentError("metric", metric, "needs two classes; use log_loss (the default), roc_auc, f1_macro "
                                "or accuracy")
        zeros = int((y == 0).sum()) if task == "regression" and metric == "mape" else 0
        if zeros:  # a percentage of zero: infinite
            raise ArgumentError("metric", metric, f"is undefined for a target of zeros ({zeros:,} of {len(y):,} rows); "
                                "use mae, rmse or r2")
        name, why = metric, f"{metric} (chosen with --metric)"
    return Metric(name, why, SELECTION_METRICS[task][name])


def _warn_classes_in_several_spellings(classes: list, target: str) -> None:
    """Classes the same but for case or spaces ('yes', 'Yes', 'YES ') are kept apart, as written; said, since
    they are most often one class typed several ways."""
    for same in _case_variants(c for c in classes if isinstance(c, str)):
        log.warning("target %r: classes %s differ only in case or spaces and are learned as different classes; "
                    "write them one way if they are one", target, ", ".join(map(repr, same)))


def _case_variants(values) -> list[list]:
    """Groups of text values that are the same but for case or the spaces around them ('yes', 'Yes', 'YES ')."""
    spellings: dict[str, list] = {}
    for value in values:
        spellings.setdefault(str(value).strip().casefold(), []).append(value)
    return [group for group in spellings.values() if len(group) > 1]


def _warn_categories_in_several_spellings(X: pd.DataFrame, kinds: dict[str, str]) -> None:
    """Categories the same but for case ('basic', 'BASIC') are kept apart, as the classes are; said once per
    column, since they are most often one value typed several ways. (Spaces around a value are dropped.)"""
    for name in (n for n, kind in kinds.items() if kind == "categorical"):
        same = _case_variants(X[name].cat.categories)  # each distinct value once, from the codes as_categories made
        if same:
            log.warning("column %r: %d value(s) differ from another only in case (e.g. %s) and are kept apart; "
                        "write them one way if they are one", name, sum(map(len, same)),
                        ", ".join(map(repr, same[0][:3])))


#: a text column at least this share of whose values are numbers is said to be read as text, with a value that
#: is not one (below :data:`~mlkiln.schema.NUMERIC_TEXT_SHARE` it is not read as numbers)
MOSTLY_NUMBERS = 0.5


def _warn_unreadable(frame: pd.DataFrame, X: pd.DataFrame, kinds: dict[str, str]) -> None:
    # number columns held as numbers lose only infinities and values beyond float32: found for all at once
    plain = held_as_numbers(frame, kinds)
    lost = X[plain].isna().to_numpy(dtype=bool) & ~frame[plain].isna().to_numpy(dtype=bool)
    intact = set(plain) - {plain[j] for j in np.flatnonzero(lost.any(axis=0))}
    for name, kind in kinds.items():
        if name in intact:
            continue
        if kind == "categorical":
            share, other = number_share(frame[name])
            if share >= MOSTLY_NUMBERS and other is not None:
                log.warning("column %r is read as text (categories): %.0f %% of its values are numbers, but others "
                            "such as %r are not; make them numbers or leave them empty to read it as numbers",
                            name, 100 * share, other)
            continue
        if kind == "datetime":
            _warn_day_first(name, frame[name])
        message = unreadable_warning(name, kind, frame[name], X[name])
        if message:
            log.warning("%s", message)


def _warn_day_first(name: str, col: pd.Series) -> None:
    """Say so when a text date column is written day first (13/02/2020): every dd/mm/yyyy date in it, and in new
    rows, is read so (:func:`mlkiln.schema.date_order`), 01/02/2020 as February 1st; pandas alone reads each
    value on its own, and one whose day is 12 or less month first."""
    if pd.api.types.is_datetime64_any_dtype(col) or date_order(col.dropna()) != "day first":
        return
    text = col.dropna().astype(str).str.strip()
    example = text[text.str.match(r"(1[3-9]|[2-9]\d)[/-]")].iloc[0]  # a day past 12, which date_order saw
    log.warning("column %r: dates such as %r are written day first: every dd/mm/yyyy date in it is read so, in new "
                "rows too (01/02/2020 is February 1st)", name, example)


#: a target value this many interquartile ranges from the median is named in a warning: five values of 1e9 among
#: numbers of about 3 (a typo, a sentinel such as 999999999) gave a CV R2 of -1.2e13 and no word why
FAR_TARGET_IQRS = 1000


def _warn_far_targets(y: pd.Series, target: str) -> None:
    """Warn about target values so far from the rest that squared errors would be theirs alone."""
    if len(y) < 20:
        return
    low, middle, high = np.nanpercentile(y.to_numpy("float64"), [25, 50, 75])
    spread = high - low
    if spread <= 0:
        return
    far = y[(y - middle).abs() > FAR_TARGET_IQRS * spread]
    if len(far):
        log.warning("%d value(s) of the target %r are over %d interquartile ranges from its median (e.g. %s); "
                    "a typo or a placeholder such as 999999 would dominate every squared error: check them, or "
                    "drop those rows", len(far), target, FAR_TARGET_IQRS, f"{far.iloc[0]:g}")


def _check_target_size(raw: pd.Series, y: pd.Series, target: str) -> None:
    """Say so when target values were lost for being too large for the models (beyond ``VALUE_MAX``), not unreadable."""
    numbers = pd.to_numeric(raw, errors="coerce") if not pd.api.types.is_numeric_dtype(raw) else raw.astype("float64")
    huge = int((numbers.abs() > VALUE_MAX).sum())
    if not huge:
        return
    if len(y) == 0:  # every value was too large (or unreadable)
        raise InputError(f"target column {target!r}: its values are beyond ±{VALUE_MAX:.3g}, too large for the models; "
                         "rescale it (divide it by a power of ten)")
    log.warning("%d value(s) of the target %r are beyond ±%.3g, too large for the models, so unreadable",
                huge, target, VALUE_MAX)
