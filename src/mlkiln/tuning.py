"""Tune each model family by k-fold cross-validation and pick the winner.

The mean validation-fold score picks the hyperparameters within a family and
then the family, exactly as the course does for ``C``; the test split is never
seen here. All search spaces live in :data:`SEARCH_SPACES`.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

from . import metrics
from .errors import MlkilnError
from .pipeline import build_pipeline
from .schema import plain_scalar

log = logging.getLogger("mlkiln")

_C_GRID = [float(c) for c in np.logspace(-3, 2, 11)]

#: hyperparameters tried per (task, family); ``C`` is scikit-learn's inverse penalty weight
SEARCH_SPACES: dict[tuple[str, str], dict[str, list]] = {
    ("regression", "linear"): {},
    ("regression", "ridge"): {"alpha": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]},
    ("regression", "lasso"): {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]},
    ("regression", "hgb"): {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31, 63]},
    ("regression", "rf"): {"min_samples_leaf": [1, 5]},
    ("classification", "logistic_l1"): {"C": _C_GRID},
    ("classification", "logistic_l2"): {"C": _C_GRID[::2]},
    ("classification", "hgb"): {"learning_rate": [0.05, 0.1, 0.2], "max_leaf_nodes": [15, 31, 63]},
    ("classification", "rf"): {"min_samples_leaf": [1, 5]},
}


class Scorer:
    """A picklable scikit-learn scorer for any of mlkiln's selection metrics.

    With ``tune_threshold`` the fold is scored at its best probability cut-off,
    so families are compared as they will be used: with a tuned threshold.
    Lower-is-better metrics are negated, as scikit-learn expects.
    """

    def __init__(self, task: str, metric: str, classes=None, tune_threshold: bool = False):
        self.task, self.metric, self.classes, self.tune_threshold = task, metric, classes, tune_threshold
        self.sign = 1.0 if metrics.SELECTION_METRICS[task][metric] else -1.0

    def __call__(self, estimator, X, y) -> float:
        sign = self.sign
        if self.tune_threshold:
            proba = estimator.predict_proba(X)[:, 1]
            return metrics.best_threshold(y, proba, self.classes[1], self.metric)[1]
        proba = estimator.predict_proba(X) if self.task == "classification" and _uses_proba(self.metric) else None
        pred = estimator.predict(X)
        return sign * metrics.score(self.task, self.metric, y, pred, proba, self.classes)


def _uses_proba(metric: str) -> bool:
    return metric in ("roc_auc", "average_precision", "log_loss")


@dataclass
class FamilyResult:
    """What tuning one family found: best parameters, CV scores (in the metric's own units) and timings."""

    family: str
    params: dict
    cv_mean: float
    cv_std: float
    fit_time: float
    search_time: float
    n_candidates: int
    candidates: list = field(default_factory=list)
    error: str | None = None


def make_cv(task: str, folds: int, seed: int):
    """Shuffled k-fold, stratified by class for classification."""
    cls = StratifiedKFold if task == "classification" else KFold
    return cls(n_splits=folds, shuffle=True, random_state=seed)


def check_folds(task: str, y: pd.Series, folds: int) -> None:
    """Every training fold must hold every class, and every fold some rows."""
    if folds < 2:
        raise MlkilnError(f"--folds must be at least 2, got {folds}")
    if len(y) < folds:
        raise MlkilnError(f"{len(y)} training rows are too few for {folds}-fold cross-validation; use fewer --folds")
    if task == "classification":
        counts = y.value_counts()
        if counts.min() < folds:
            raise MlkilnError(
                f"class {plain_scalar(counts.idxmin())!r} has only {counts.min()} training row(s), fewer than "
                f"--folds {folds}; drop that class, add rows, or use fewer folds"
            )


def tune_family(X, y, task, family, kinds, scorer, cv, seed, n_classes, n_jobs) -> FamilyResult:
    """Grid-search one family's space by k-fold CV; a failing family is reported, not fatal."""
    sign = scorer.sign
    grid = {f"model__{k}": v for k, v in SEARCH_SPACES[(task, family)].items()}
    pipe = build_pipeline(task, family, kinds, seed=seed, n_classes=n_classes)
    search = GridSearchCV(pipe, grid, scoring=scorer, cv=cv, n_jobs=n_jobs, refit=False, error_score=np.nan)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    elapsed = time.perf_counter() - start
    res = search.cv_results_
    means = np.asarray(res["mean_test_score"], dtype="float64")  # greater is better
    n = len(means)
    candidates = [
        {
            "params": {k.removeprefix("model__"): _python_scalar(v) for k, v in res["params"][i].items()},
            "mean": _finite(sign * means[i]),
            "std": _finite(res["std_test_score"][i]),
            "folds": [_finite(sign * res[f"split{j}_test_score"][i]) for j in range(cv.get_n_splits())],
        }
        for i in range(n)
    ]
    if not np.isfinite(means).any():
        return FamilyResult(family, {}, float("nan"), float("nan"), float("nan"), elapsed, n, candidates, "every candidate failed to fit")
    best = int(np.nanargmax(means))
    return FamilyResult(
        family=family,
        params=candidates[best]["params"],
        cv_mean=float(sign * means[best]),
        cv_std=float(res["std_test_score"][best]),
        fit_time=float(res["mean_fit_time"][best]),
        search_time=elapsed,
        n_candidates=n,
        candidates=candidates,
    )


def out_of_fold(X, y, pipe, cv, task):
    """Out-of-fold predictions (and probabilities) of ``pipe``, plus the fold index of each row."""
    fold_of = np.empty(len(y), dtype="int64")
    pred = proba = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (fit_idx, val_idx) in enumerate(cv.split(X, y)):
            model = clone(pipe).fit(X.iloc[fit_idx], y.iloc[fit_idx])
            fold_of[val_idx] = k
            fold_pred = model.predict(X.iloc[val_idx])
            if pred is None:
                pred = np.empty(len(y), dtype=fold_pred.dtype)
            pred[val_idx] = fold_pred
            if task == "classification":
                p = model.predict_proba(X.iloc[val_idx])
                if proba is None:
                    proba = np.zeros((len(y), p.shape[1]))
                proba[val_idx] = p
    return pred, proba, fold_of


def _python_scalar(value):
    """numpy scalars -> Python scalars, so parameters serialise to JSON and code."""
    return value.item() if isinstance(value, np.generic) else value


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
