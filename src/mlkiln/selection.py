"""Select the model: tune every family by k-fold CV, rank them, tune the decision threshold.

One step of :func:`mlkiln.train`. The test split is never seen here: the
ranking, the threshold and the validation metrics all come from the
out-of-fold predictions of the training rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import metrics
from .errors import InputError
from .jsonio import params_text
from .options import TrainOptions
from .pipeline import MAX_CATEGORIES, build_pipeline
from .tuning import Compute, FamilyResult, make_cv, out_of_fold, tune_family, unreached
from .understand import Table

log = logging.getLogger("mlkiln")


@dataclass
class Selection:
    """What selection found: every family's result, best first, and the winner's settings."""

    results: list[FamilyResult]  # in the order tried
    ranked: list[FamilyResult]  # those that fitted, best cross-validated score first
    threshold: float | None  # tuned on the pooled out-of-fold probabilities, binary only
    validation: dict  # the winner's metrics over the validation folds (mean, std)
    max_categories: int | None

    @property
    def best(self) -> FamilyResult:
        return self.ranked[0]


def select(X: pd.DataFrame, y: pd.Series, table: Table, options: TrainOptions, compute: Compute) -> Selection:
    """Tune each family in turn within ``options.budget``; the best mean validation score wins."""
    task, metric, classes = table.task, table.metric.name, table.classes
    text = [name for name, kind in table.kinds.items() if kind == "categorical"]
    max_categories = MAX_CATEGORIES if any(X[name].nunique() > MAX_CATEGORIES for name in text) else None
    tune_threshold = metrics.needs_threshold(task, metric, y)
    if tune_threshold:
        log.info("decision threshold: tuned on the validation folds for %s (never on test)", metric)
    scorer = metrics.Scorer(task, metric, classes, tune_threshold)
    cv = make_cv(task, options.folds, options.seed)
    n_classes = len(classes) if classes else 2
    families = options.families(task)
    results: list[FamilyResult] = []
    deadline = None if options.budget is None else time.perf_counter() + options.budget
    for i, family in enumerate(families, 1):
        if deadline is not None and time.perf_counter() > deadline and any(not r.error for r in results):
            results.append(unreached(task, family))
            log.warning("%-12s not reached within the time budget of %gs", family, options.budget)
            continue
        log.info("[%d/%d] tuning %s", i, len(families), family)
        result = tune_family(X, y, task, family, table.kinds, scorer, cv, options.seed, n_classes, compute,
                             search=options.search, trials=options.trials, deadline=deadline,
                             max_categories=max_categories)
        results.append(result)
        if result.error:
            log.warning("%-12s failed: %s", family, result.error)
        else:
            log.info("%-12s CV %s %.4f ± %.4f  (%d candidates, %s, %.1fs)  %s", family, metric, result.cv_mean,
                     result.cv_std, result.n_candidates, result.search, result.search_time, params_text(result.params))
    ranked = sorted((r for r in results if not r.error), key=lambda r: -scorer.sign * r.cv_mean)
    if not ranked:
        raise InputError("every model family failed to fit; check the data (see warnings above)")
    best = ranked[0]
    if best.oof is None:  # halving kept no predictions of the winner on full folds
        pipe = build_pipeline(task, best.family, table.kinds, best.params, options.seed, n_classes,
                              max_categories=max_categories)
        best.oof = out_of_fold(X, y, pipe, cv, task, compute)
    oof_pred, oof_proba, fold_of = best.oof
    threshold = None
    if tune_threshold:
        threshold, _ = metrics.best_threshold(y, oof_proba[:, 1], classes[1], metric)
        oof_pred = np.where(oof_proba[:, 1] >= threshold, classes[1], classes[0])
        log.info("decision threshold: %.4f on P(%s=%r)", threshold, table.target.name, classes[1])
    validation = metrics.fold_metrics(task, y.to_numpy(), oof_pred, oof_proba, fold_of, classes)
    return Selection(results, ranked, threshold, validation, max_categories)
