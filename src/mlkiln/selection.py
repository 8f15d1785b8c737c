"""Select the model: tune every family by k-fold CV, weigh an ensemble of them, rank, tune the decision threshold.

One step of :func:`mlkiln.train`. The test split is never seen here: the
ranking, the ensemble's weights, the threshold and the validation metrics all
come from the out-of-fold predictions of the training rows.

The ensemble is Caruana et al.'s ensemble selection (ICML 2004): greedy
forward selection, with replacement, over the out-of-fold predictions
(probabilities for classification) of the best candidates of every family,
each round adding the candidate that most improves the selection metric of the
average. It is stored as a plain scikit-learn ``VotingRegressor`` /
``VotingClassifier(voting="soft")`` of the member pipelines, and chosen only
when its cross-validated score beats the best single model's. That score is
slightly optimistic: the weights were chosen on the same folds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import FixedThresholdClassifier

from . import metrics
from .card import Member, ModelInfo
from .data import nested_sample
from .compiled import LATENCY_ROWS, compile_pipeline, row_latency_us
from .errors import ArgumentError, InputError
from .jsonio import params_text
from .options import TrainOptions
from .pipeline import (BAG_FITS, BAG_ROWS, HGB_DEFAULTS, MAX_CATEGORIES, REGISTRY, TEXT_TREE_ROWS,
                       build_ensemble, build_pipeline, code_columns, date_parts, unbagged)
from .tuning import (FIRST_TREES, PROBE_TREES, SAMPLE_ROWS, Compute, CostModel, FamilyResult, Predictions,
                     RungSearch, Step, cross_validate_one, fit_final, fold_of, left_out, make_cv, sampled,
                     search_rungs, tune_family)
from .understand import Table

log = logging.getLogger("mlkiln")

#: rounds of greedy ensemble selection: the weights are multiples of 1/ENSEMBLE_ROUNDS
ENSEMBLE_ROUNDS = 25
#: distinct members at most: each is refitted on all rows, stored, and run for every prediction; on diamonds
#: 5 members cost 72.9 s against main's 55.9 s, 3 members 66.0 s, with the same CV and test R2
MAX_MEMBERS = 3
#: fewer training rows than this give the single best model: weights fitted to a few folds' rows overfit them
ENSEMBLE_MIN_ROWS = 500
#: above this many training rows, families whose model grows with the rows (fully grown forests) are left out of
#: the ensemble: on diamonds (43k rows) two forest members made a 495 MB bundle and tripled the time after tuning
LARGE_MEMBER_ROWS = 20_000
#: above SAMPLE_ROWS training rows each member's final fit takes minutes, so an ensemble must beat the best single
#: model by more than this many of its fold spreads: on 5M diamonds rows three gradient boosting members gained
#: 0.00030 CV R2 (spread 0.00028) for three final fits: 325 s against the single model's 151 s, and test R2
#: 0.9870 against its 0.9873
LARGE_ENSEMBLE_SPREADS = 2.0
#: the leaderboard name of the ensemble
ENSEMBLE = "ensemble"
#: the most of a --budget the search keeps back for the final fit; when what is left then cannot fit all training
#: rows, the final fit takes the first rows of the nested sample (train.py draws the same)
FINAL_SHARE = 0.25
#: the final fit's estimate from the CV fits' rate is doubled: on 320k rows gradient boosting's per-row time was
#: twice its rate on the folds' 22k rows (early stopping grows more trees on more rows)
FINAL_FIT_SAFETY = 2.0
#: the fewest trees a search's gradient boosting fit grows with early stopping (its ``n_iter_no_change``)
TREES_PER_FIT = HGB_DEFAULTS["n_iter_no_change"]
#: seconds the steps after the final fit take (metrics, drift profile, report with permutation importances,
#: bundle): a fixed part, a part per row they predict (the test rows, and the training rows up to the training
#: metrics' sample, :data:`mlkiln.metrics.TRAIN_METRIC_ROWS`) besides predicting it, and predicting it through each
#: model. The prediction part is for a gradient boosting model of :data:`~mlkiln.tuning.FIRST_TREES` trees (or a
#: model as fast): :func:`mlkiln.tuning.grow_until` times the final fit's predictions on its own rows and grows more
#: trees only where the time left allows them, so a reserve for the most trees a model might grow (300, 1.2e-5 s a
#: row, until session 25) kept from the search time the final fit would have filled anyway. On 5M diamonds rows
#: (1.2M predicted) under --budget 30 that reserve was 22.7 s: the search stopped after one candidate on 3,703 rows,
#: the final fit took those 3,703 rows, and the command ended at 18.2 s (test R2 0.9714); through 100 trees the 1.2M
#: rows took 3.4-4.9 s to predict (2.8-4.1e-6 s a row), and the steps besides predicting 2.6 s here, 5 s on session
#: 23's slower machine (4e-6 s a row beyond the fixed part until session 25). The fixed part: on 400k
#: machine-failure rows the report page took 2.4 s, the skops file 1.3 s, the importances 1.1 s; on tables of
#: 10,000-50,000 rows these steps took 1.8-4.5 s (sweep 7's tables, session 22), where a fixed 5 s (with the other
#: parts) kept back about twice what a --budget 20 needed and ended such runs at 12-14 s
POST_FIT_SECONDS = 3.5
POST_FIT_SECONDS_PER_ROW = 1.5e-6
PREDICT_SECONDS_PER_ROW = 4e-6
#: ... and a part per input column (importances, drift profile, schema: 1,000 columns of 2,000 rows took 13 s after
#: the fit) and per class beyond two (per-class metrics and curves, a confusion matrix of them all, a larger model
#: to write: 100 classes of 5,000 rows took 12 s with one linear model, about 30 s with an ensemble of forests, in
#: session 19; since the report draws the most frequent classes, 47 classes of 3,339 rows took 2.2 s after a
#: linear model's fit and 4.4 s after a forest's, where 0.1 s a class kept a --budget 15 from all but one candidate)
POST_FIT_SECONDS_PER_COLUMN = 0.01
#: ... and per column past :data:`~mlkiln.metrics.IMPORTANCE_MAX_COLUMNS`, which no importance shuffles but a linear
#: model's parts: 3,013 columns of 1,000 rows took 8.3 s after least squares' fit, where 0.01 a column kept back
#: 34 s of a --budget 60 and no family but least squares was tried (sweep 10)
POST_FIT_SECONDS_PER_WIDE_COLUMN = 0.002
POST_FIT_SECONDS_PER_CLASS = 0.05
#: ... and per row, model and free-text column, whose words every prediction (the metrics', the report's) counts
#: again: a compiled linear model reading the words of 300,000 reviews spent 27 s predicting 260,000 rows (the
#: training metrics' sample and the test rows), 1e-4 s a row (benchmarks/RESULTS.md, session 32)
TEXT_SECONDS_PER_ROW = 1e-4
#: ... and writing the model: skops took 3.3 s for an ensemble of 1,883 boosted trees of 15 leaves (txhousing under
#: --budget 30, which ran to 32-41 s), about 1.7 ms a tree; the fixed part covers a model of this many trees
BUNDLE_SECONDS_PER_TREE = 2e-3
BUNDLE_TREES_RESERVED = 300


@dataclass
class Plan:
    """The clock of a search under a budget: when training must end and what the steps after the search need.

    ``end`` is ``None`` without a budget. The search keeps back the estimated
    final fit of its best family on all training rows (at most
    :data:`FINAL_SHARE` of the budget) and the steps after it; the final fit
    takes as many rows as the time then left allows, never fewer than the
    families were ranked on.
    """

    start: float
    end: float | None
    n_rows: int  # the training rows
    n_table: int  # every row of the table, test rows included
    found: RungSearch | None = None
    n_columns: int = 0  # the input columns
    n_classes: int = 0  # classification's classes (0 for regression)
    n_texts: int = 0  # the free-text columns (read as words: every prediction vectorizes them)
    compared: int = 0  # the rows the families were ranked on (a search on rungs): the final fit takes no fewer

    @property
    def predicted_rows(self) -> int:
        """The rows the steps after the final fit predict: the test rows and the training metrics' sample."""
        return self.n_table - self.n_rows + min(self.n_rows, metrics.TRAIN_METRIC_ROWS)

    def post_fit(self, models: int = 1) -> float:
        """Seconds the steps after the final fit take, predicting through ``models`` models (an ensemble's members;
        0: all but the predictions)."""
        per_row = POST_FIT_SECONDS_PER_ROW + (PREDICT_SECONDS_PER_ROW + TEXT_SECONDS_PER_ROW * self.n_texts) * models
        wide = max(self.n_columns - metrics.IMPORTANCE_MAX_COLUMNS, 0)
        return (POST_FIT_SECONDS + per_row * self.predicted_rows + POST_FIT_SECONDS_PER_WIDE_COLUMN * wide
                + POST_FIT_SECONDS_PER_COLUMN * (self.n_columns - wide)
                + POST_FIT_SECONDS_PER_CLASS * max(self.n_classes - 2, 0))

    def reserve(self, family: str, cost: CostModel, members: int = 1, capped: bool = True) -> float:
        """Seconds the search leaves for the final fit of ``family`` on all rows (of ``members`` such models: an
        ensemble's) and the steps after it; at most :data:`FINAL_SHARE` of the budget for the fit where ``capped``
        (then the final fit may take fewer rows)."""
        fit = FINAL_FIT_SAFETY * cost.fit_seconds(family, self.n_rows) * members
        return (min(fit, FINAL_SHARE * (self.end - self.start)) if capped else fit) + self.post_fit(members)

    def left(self, family: str | None = None) -> float:
        """Seconds before the end, less the steps after the final fit, or with ``family`` its final fit too
        (:meth:`reserve`)."""
        kept = self.post_fit() if family is None else self.reserve(family, self.found.cost)
        return self.end - time.perf_counter() - kept

    def first_trees(self, family: str, rows: int) -> int | None:
        """The trees a gradient boosting final fit grows before it times them (:func:`~mlkiln.tuning.grow_until`):
        None for :data:`~mlkiln.tuning.FIRST_TREES`, or :data:`~mlkiln.tuning.PROBE_TREES` where those might not
        end in time (then those few trees' time decides). The search's fits may have stopped early at
        :data:`TREES_PER_FIT` trees: on Tuna (5 classes) under --budget 20, their rate said 5.4 s for all 10,964
        rows, and the first 100 trees took 9.9 s, to 25.6 s."""
        if self.end is None or self.found is None:
            return None
        estimate = FIRST_TREES / TREES_PER_FIT * self.found.cost.fit_seconds(family, rows)
        return None if estimate <= self.left() else PROBE_TREES

    def bundle_seconds(self, members: list) -> float:
        """Seconds writing an ensemble's boosted trees takes beyond the reserve's (:data:`BUNDLE_SECONDS_PER_TREE`),
        from the trees its gradient boosting members' settings grow (:data:`~mlkiln.tuning.FIRST_TREES` where
        early stopping decides)."""
        per_class = self.n_classes if self.n_classes > 2 else 1
        trees = sum(p.params.get("max_iter", FIRST_TREES) * per_class for _, p, _ in members
                    if REGISTRY[p.family].staged)
        return BUNDLE_SECONDS_PER_TREE * max(trees - BUNDLE_TREES_RESERVED, 0)

    def fits(self, families: list[str], rows: int, extra: float = 0.0) -> bool:
        """Whether the final fits of these families' models (an ensemble's members) on ``rows`` rows, and ``extra``
        seconds after them, end in time."""
        if self.end is None or self.found is None:
            return True
        seconds = self.left() - extra - (self.post_fit(len(families)) - self.post_fit())  # the members' predictions
        return sum(FINAL_FIT_SAFETY * self.found.cost.fit_seconds(f, rows) for f in families) <= seconds

    def final_rows(self, families: list[str]) -> int:
        """The training rows the final fit of these families' models (an ensemble's members) can take in time:
        never fewer than the families were ranked on."""
        if self.end is None or self.found is None:
            return self.n_rows
        least, most = self.compared or len(self.found.rows), self.n_rows  # a fit's time grows with its rows
        if self.fits(families, most):
            return most
        while most - least > 1:
            middle = (least + most) // 2
            least, most = (middle, most) if self.fits(families, middle) else (least, middle)
        return least


@dataclass
class Ensemble:
    """The weighted members Caruana's selection found, and their averaged out-of-fold predictions."""

    members: list[tuple[str, Predictions, int]]  # (name, candidate, times picked: its weight in the vote), heaviest first
    oof: Predictions
    result: FamilyResult  # its leaderboard entry

    def spec(self) -> list[tuple[str, str, dict, float]]:
        """``(name, family, params, weight)`` per member, as :func:`mlkiln.pipeline.build_ensemble` takes them."""
        return [(name, p.family, p.params, weight) for name, p, weight in self.members]


@dataclass
class Selection:
    """What selection found: every family's result, best first, and the winner's settings."""

    results: list[FamilyResult]  # in the order tried, the ensemble's entry last
    ranked: list[FamilyResult]  # those that fitted, best cross-validated score first
    threshold: float | None  # tuned on the pooled out-of-fold probabilities, binary only
    validation: dict  # the winner's metrics over the validation folds (mean, std)
    max_categories: int | None
    oof: Predictions  # the winner's out-of-fold predictions (before the threshold)
    ensemble: Ensemble | None = None  # the one selected, whether it won or not
    trees: dict = field(default_factory=dict)  # filled by fit_model: trees grown per member (gradient boosting)
    plan: Plan | None = None  # the budget's clock and, for a sampled search, what it found
    steps: list[Step] = field(default_factory=list)  # the rows each step saw: the rungs (if any), the final fit
    not_started: list[dict] = field(default_factory=list)  # candidates estimated not to finish in the time left
    oof_y: pd.Series | None = None  # the rows of the out-of-fold predictions, and their folds: to choose again
    folds: np.ndarray | None = None
    threshold_metric: str | None = None  # what the threshold is tuned for (metrics.threshold_metric)
    n_folds: int = 3  # the folds of the cross-validation
    cut_trees: int | None = None  # the trees a --budget's final fit stopped at, where the clock stopped it
    codes: tuple[str, ...] = ()  # number columns target-encoding families also encode (pipeline.code_columns)
    texts: tuple[str, ...] = ()  # free-text columns, read as words (pipeline.words)
    tree_words: bool = True  # trees read them too (pipeline.TEXT_TREE_ROWS)
    dates: dict = field(default_factory=dict)  # the parts trees read of each date column (pipeline.date_parts)
    bagged: int = 0  # the final model's extra fits on part of the rows (pipeline.bag), set by fit_model

    @property
    def best(self) -> FamilyResult:
        return self.ranked[0]

    def final_params(self, family: str, params: dict) -> dict:
        """A searched candidate's settings for the final fit on all training rows (:meth:`Family.refit_params`).

        Not where a decision threshold was tuned: it was tuned on the folds' probabilities at their number of
        trees, and more trees sharpen them past it (macro-F1 fell on all 6 splits of hdma and machine failure,
        by 0.002-0.011, while log loss improved; benchmarks/RESULTS.md, session 18).
        """
        if family not in REGISTRY or self.threshold is not None:
            return params
        return REGISTRY[family].refit_params(params, self.n_folds, self.plan.n_rows if self.plan else 0)

    def chosen_params(self) -> dict:
        """The single chosen model's final settings, with the trees its final fit stopped at (if the clock did)."""
        params = self.final_params(self.best.family, self.best.params)
        return params if self.cut_trees is None else {**params, "max_iter": self.cut_trees}

    def final_spec(self) -> list[tuple[str, str, dict, float]]:
        """The ensemble's members as :func:`~mlkiln.pipeline.build_ensemble` takes them, with their final settings."""
        return [(name, family, self.final_params(family, params), weight)
                for name, family, params, weight in self.ensemble.spec()]

    @property
    def chose_ensemble(self) -> bool:
        return self.best.family == ENSEMBLE


def select(X: pd.DataFrame, y: pd.Series, table: Table, options: TrainOptions, compute: Compute,
           started: float | None = None) -> Selection:
    """Tune the families, then weigh the ensemble; the best mean validation score wins.

    Without ``options.budget``, on at most :data:`~mlkiln.tuning.SAMPLE_ROWS`
    training rows, each family is tuned in turn on all of them. With a budget
    (seconds from ``started``, default now: the whole of training) or on more
    rows, :func:`~mlkiln.tuning.search_rungs` searches best-first across
    families on growing samples, and the ranking, the ensemble, the threshold
    and the validation metrics come from its last rung's rows.
    """
    task, metric, classes = table.task, table.metric.name, table.classes
    encoding = _encoding(X, y, table, options)
    tune_for = metrics.threshold_metric(task, metric, y)
    if tune_for:
        log.info("decision threshold: tuned on the validation folds for %s (never on test)", tune_for)
    # a threshold metric scores each candidate at its own best cut-off: compared as they will be used
    scorer = metrics.Scorer(task, metric, classes, tune_for == metric)
    cv = make_cv(task, options.folds, options.seed)
    n_classes = len(classes) if classes else 2
    started = started or time.perf_counter()
    plan = Plan(started, None if options.budget is None else started + options.budget, len(y), len(table.y),
                n_columns=len(table.kinds), n_classes=len(classes or ()), n_texts=len(table.texts))
    if options.budget is None and not sampled(len(y)):
        results = _tune_in_turn(X, y, table, options, compute, scorer, cv, n_classes, encoding)
    else:
        plan.found = _search_on_rungs(X, y, table, options, compute, scorer, cv, n_classes, encoding, plan)
        rows, results = _compared_on(X, y, table, options, compute, scorer, cv, n_classes, encoding, plan)
        X, y, plan.compared = X.iloc[rows], y.iloc[rows], len(rows)
    ranked = sorted((r for r in results if not r.error), key=lambda r: (-r.rows, -scorer.sign * r.cv_mean))
    if not ranked:
        reasons = "; ".join(f"{r.family}: {r.error}" for r in results if r.error)
        raise InputError(f"every model family failed to fit ({reasons}); check the data")
    best = ranked[0]
    if not best.oofs:  # halving kept no predictions of the winner on full folds
        pipe = build_pipeline(task, best.family, table.kinds, best.params, options.seed, n_classes, **encoding)
        best.oofs = [cross_validate_one(pipe, best.family, best.params, X, y, cv, scorer, task, compute)[0]]
    folds = fold_of(cv, X, y)
    ensemble = None
    if options.ensemble:
        ensemble = _ensemble(y, ranked, scorer, folds, classes)  # of the ranking rows' predictions
        if ensemble is not None and not plan.fits([p.family for _, p, _ in ensemble.members], plan.n_rows,
                                                  plan.bundle_seconds(ensemble.members)):
            log.info("ensemble: its members' final fits on all rows, and writing them, would not end within the "
                     "--budget; not used")
            ensemble = None
        gain = None if ensemble is None else scorer.sign * (ensemble.result.cv_mean - best.cv_mean)
        if gain is not None and sampled(plan.n_rows) and not gain > LARGE_ENSEMBLE_SPREADS * best.cv_std:
            log.info("ensemble: %s better than %s on the folds, within %g times its spread (%.4f) on %s rows: "
                     "the single model is fitted", f"{gain:.4f}", best.family, LARGE_ENSEMBLE_SPREADS, best.cv_std,
                     f"{plan.n_rows:,}")
            ensemble = None
        if ensemble is not None:
            ensemble.result.rows = best.rows
            results.append(ensemble.result)
            ranked = sorted([*ranked, ensemble.result], key=lambda r: (-r.rows, -scorer.sign * r.cv_mean))
    chosen = ensemble.oof if ranked[0].family == ENSEMBLE else best.oofs[0]
    threshold, validation = _settle(chosen, y, folds, table, tune_for)
    found = plan.found
    return Selection(results, ranked, threshold, validation, encoding["max_categories"], chosen, ensemble, plan=plan,
                     steps=[] if found is None else list(found.steps),
                     not_started=[] if found is None else found.not_started, oof_y=y, folds=folds,
                     threshold_metric=tune_for, n_folds=cv.get_n_splits(), codes=encoding["codes"],
                     texts=table.texts, tree_words=encoding["tree_words"], dates=encoding["dates"])


def _encoding(X, y, table: Table, options: TrainOptions) -> dict:
    """How every pipeline of this table encodes its columns (build_pipeline's keywords), said where it is news."""
    max_categories = MAX_CATEGORIES if any(X[name].nunique() > MAX_CATEGORIES for name in table.categories) else None
    # only where a family reads them: each is a pass over its columns' rows (100,000 at most)
    trees = [f for f in options.families(table.task) if REGISTRY[f].encoding != "onehot"]
    by_target = [f for f in options.families(table.task) if REGISTRY[f].encoding == "target"]
    encoding = {"max_categories": max_categories, "codes": code_columns(X, y, table.kinds) if by_target else (),
                "texts": table.texts, "tree_words": len(y) <= TEXT_TREE_ROWS,
                "dates": date_parts(X, y, table.kinds) if trees else {}}
    if table.texts and not encoding["tree_words"]:
        log.info("free text: read as words by the linear models only, on more than %s rows (trees would take a "
                 "column per word)", f"{TEXT_TREE_ROWS:,}")
    if encoding["dates"]:
        log.info("dates: trees also read the %s", "; the ".join(f"{', '.join(parts)} of {name!r}"
                                                             for name, parts in encoding["dates"].items()))
    if encoding["codes"]:
        log.info("%s: whole numbers with many repeated values, maybe ids or codes: %s also encode(s) them by the "
                 "target", ", ".join(map(repr, encoding["codes"])), ", ".join(by_target))
    return encoding


def _compared_on(X, y, table: Table, options: TrainOptions, compute: Compute, scorer, cv, n_classes: int,
                 encoding: dict, plan: Plan) -> tuple[np.ndarray, list[FamilyResult]]:
    """The rows (positions in ``X``) on which the families of a search on rungs are ranked, and their results there.

    Families are compared on the same rows: the largest rung the best of them
    reached (:func:`ranking_rung`). Where that leader stopped below the last
    rung for want of time, it is cross-validated on the rows of the largest
    rung above where that ends in time, and the families are ranked there. On
    400k machine-failure rows under --budget 30, gradient boosting (log loss
    0.0755 on 3,703 rows) was estimated not to fit on the second rung, L1
    logistic regression (0.0982 on 33,333) reached the third, and ranked by
    rows first it was the model: test macro-F1 0.731 where gradient boosting
    reaches 0.89. Where that CV would not end in time either, the leader of the
    last rung is kept if it scored better there than the other on its fewer
    rows (more rows favour it, but nothing tells more): on bundesliga under
    --budget 60, L1 logistic regression (log loss 1.0013 on 3,738 rows, where
    gradient boosting had 1.0220) could not be cross-validated on 11,214 rows,
    where gradient boosting had reached about 0.99, and all families were
    ranked on 3,738 rows: test log loss 1.0008.
    """
    found, sign = plan.found, scorer.sign
    rung = ranking_rung(found.rungs, sign)
    rows, results = found.rungs[rung]
    if rung == len(found.rungs) - 1:
        return rows, results
    lead = _best_on(rows, results, sign)
    log.info("%s: the best on %s rows, where the time kept it; the families are compared on the same rows",
             lead.family, f"{len(rows):,}")
    for above in range(len(found.rungs) - 1, rung, -1):  # the most rows its CV on ends in time
        more, there = found.rungs[above]
        if plan.end is None or found.cost.cv_seconds(lead.family, len(more)) <= plan.left(lead.family):
            (mine,) = [r for r in there if r.family == lead.family]
            _cross_validate(mine, X.iloc[more], y.iloc[more], table, options, compute, scorer, cv, n_classes,
                            encoding)
            return more, there
    last_rows, last = found.rungs[-1]
    top = _best_on(last_rows, last, sign)
    if top is not None and sign * top.cv_mean >= sign * lead.cv_mean:  # better on more rows: the rows favour it, nothing tells more
        log.info("%s: its CV on %s rows would not end within the --budget; %s scored better on %s rows (%.4f "
                 "against %.4f on %s): ranked there", lead.family, f"{len(found.rungs[rung + 1][0]):,}", top.family,
                 f"{len(last_rows):,}", top.cv_mean, lead.cv_mean, f"{len(rows):,}")
        return last_rows, last
    log.info("%s: its CV on %s rows would not end within the --budget; ranked on %s rows", lead.family,
             f"{len(found.rungs[rung + 1][0]):,}", f"{len(rows):,}")
    return rows, results


def ranking_rung(rungs: list[tuple[np.ndarray, list[FamilyResult]]], sign: float) -> int:
    """The rung on which families are ranked: the largest the best of them reached, family against family on the
    largest rung both reached.

    From the last rung down, the best family of a rung that reached no rung
    above it (each family's best goes on while time allows) beat there the
    leader so far, on the same rows, and leads.
    """
    def best(r: int) -> str | None:
        top = _best_on(*rungs[r], sign)
        return None if top is None else top.family

    def reached(family: str, r: int) -> bool:
        return any(res.family == family for res in _scored_on(*rungs[r]))

    rung = len(rungs) - 1
    leader = best(rung)
    for r in range(rung - 1, -1, -1):
        family = best(r)
        if family is not None and family != leader and not reached(family, r + 1):
            leader, rung = family, r
    return rung


def _scored_on(rows: np.ndarray, results: list[FamilyResult]) -> list[FamilyResult]:
    """The results of a rung that were scored on its rows (not a smaller rung's best, not failed)."""
    return [res for res in results if res.rows == len(rows) and not res.error]


def _best_on(rows: np.ndarray, results: list[FamilyResult], sign: float) -> FamilyResult | None:
    """The best result scored on a rung's rows, or None."""
    return max(_scored_on(rows, results), key=lambda res: sign * res.cv_mean, default=None)


def _cross_validate(result: FamilyResult, X, y, table: Table, options: TrainOptions, compute: Compute, scorer,
                    cv, n_classes: int, encoding: dict) -> None:
    """``result``'s candidate cross-validated on ``X``, ``y``: its score, spread, rows and predictions there."""
    started, sign = time.perf_counter(), scorer.sign
    pipe = build_pipeline(table.task, result.family, table.kinds, result.params, options.seed, n_classes, **encoding)
    oof, scores = cross_validate_one(pipe, result.family, result.params, X, y, cv, scorer, table.task, compute)
    log.info("%s: CV %s %.4f on %s rows (%.4f on %s), in %.1fs", result.family, scorer.metric,
             sign * oof.score, f"{len(y):,}", result.cv_mean, f"{result.rows:,}", time.perf_counter() - started)
    result.cv_mean, result.cv_std, result.rows, result.oofs = sign * oof.score, float(scores.std()), len(y), [oof]


def _settle(chosen: Predictions, y: pd.Series, folds: np.ndarray, table: Table, tune_for: str | None):
    """``(threshold, validation metrics)`` of the chosen model's out-of-fold predictions."""
    task, classes = table.task, table.classes
    oof_pred, oof_proba = chosen.pred, chosen.proba
    threshold = None
    if tune_for:
        threshold, _ = metrics.best_threshold(y, oof_proba[:, 1], classes[1], tune_for)
        oof_pred = np.where(oof_proba[:, 1] >= threshold, classes[1], classes[0])
        log.info("decision threshold: %.4f on P(%s=%r)", threshold, table.target.name, classes[1])
    return threshold, metrics.fold_metrics(task, y.to_numpy(), oof_pred, oof_proba, folds, classes)


def next_best(selection: Selection, table: Table) -> Iterator[Selection]:
    """The selection with each runner-up chosen instead, best cross-validated score first.

    For a limit on what the model may cost (``--max-latency-us``): each
    alternative gets its own threshold and validation metrics from its own
    out-of-fold predictions; a runner-up without them (a halving search's
    winner on part of the rows) is passed over. The steps are those before
    any final fit.
    """
    return _runners_up(selection, table, list(selection.steps))


def _runners_up(selection: Selection, table: Table, steps: list) -> Iterator[Selection]:
    for result in selection.ranked[1:]:
        chosen = selection.ensemble.oof if result.family == ENSEMBLE else (result.oofs or [None])[0]
        if chosen is None:
            continue
        threshold, validation = _settle(chosen, selection.oof_y, selection.folds, table, selection.threshold_metric)
        ranked = [result, *(r for r in selection.ranked if r is not result)]
        yield dataclasses.replace(selection, ranked=ranked, threshold=threshold, validation=validation, oof=chosen,
                                  trees={}, steps=list(steps), cut_trees=None)


def _search_on_rungs(X, y, table: Table, options: TrainOptions, compute: Compute, scorer, cv, n_classes: int,
                     encoding: dict, plan: Plan) -> RungSearch:
    """The best-first search across families on growing samples, within the plan's time."""
    task = table.task
    # the families whose model grows with the rows are not searched on samples (see tuning.left_out)
    families, skipped = _leave_out(X, y, table, options, SAMPLE_ROWS)
    found = search_rungs(X, y, task, families, table.kinds, scorer, cv,
                         options.seed, n_classes, compute, search=options.search, trials=options.trials,
                         deadline=plan.end, reserve=plan.reserve, members=MAX_MEMBERS if options.ensemble else 1,
                         **encoding)
    for _, results in found.rungs:
        results += skipped
    for result in found.results:
        _log_result(result, table.metric.name)
    return found


def _tune_in_turn(X, y, table: Table, options: TrainOptions, compute: Compute, scorer, cv, n_classes: int,
                  encoding: dict) -> list[FamilyResult]:
    """Each family's own search on all the rows, one family after the other.

    Unless ``--models`` names them, the families whose model grows with the
    rows (forests) are left out above :data:`LARGE_MEMBER_ROWS` training rows:
    there they cannot join the ensemble, their search took two thirds of the
    default run on diamonds (38 of 50 s, 43k rows) and gradient boosting beat
    them (CV R2 0.9809 against 0.9797 and 0.9801).
    """
    why = (f"left out on {len(y):,} training rows (above {LARGE_MEMBER_ROWS:,}, too large for an ensemble member): "
           "its model grows with the rows; name it in --models to search it")
    families, results = _leave_out(X, y, table, options, LARGE_MEMBER_ROWS, why)
    for result in results:
        _log_result(result, table.metric.name)
    for i, family in enumerate(families, 1):
        log.info("[%d/%d] tuning %s", i, len(families), family)
        result = tune_family(X, y, table.task, family, table.kinds, scorer, cv, options.seed, n_classes, compute,
                             search=options.search, trials=options.trials, **encoding)
        results.append(result)
        _log_result(result, table.metric.name)
    return results


def _leave_out(X, y, table: Table, options: TrainOptions, above: int,
               why: str | None = None) -> tuple[list[str], list[FamilyResult]]:
    """The families to search, and the leaderboard rows of those left out unless ``--models`` names them: the
    families whose model grows with the rows (forests) above ``above`` training rows, and those not worth
    searching on this table (``Family.applies``: target encoding without a many-valued text column, ridge on
    normal scores without a skewed target)."""
    task, n_rows = table.task, len(X)
    families = options.families(task)
    if options.models is not None:
        return families, []
    out = {f: why for f in families if n_rows > above and REGISTRY[f].grows_with_rows}
    if set(table.kinds) <= set(table.texts) and n_rows > TEXT_TREE_ROWS:  # nothing else for trees to read
        out.update({f: f"only free text, which trees read on at most {TEXT_TREE_ROWS:,} rows" for f in families
                    if REGISTRY[f].encoding != "onehot" and f not in out})
    for f in families:
        # free text is not a column of categories to encode by the target: its words are read alike by every family
        reason = None if f in out else REGISTRY[f].why_not(X, y, {n: k for n, k in table.kinds.items()
                                                                  if n not in table.texts})
        if reason is not None:
            out[f] = reason
    return [f for f in families if f not in out], [left_out(task, f, n_rows, reason) for f, reason in out.items()]


def _log_result(result: FamilyResult, metric: str) -> None:
    if result.search == "left out":  # a choice of the default search, said once
        log.info("%-12s %s", result.family, result.error)
    elif result.search == "none":
        log.warning("%s: %s", result.family, result.error)  # a sentence, not a column of the progress
    elif result.error:
        log.warning("%s failed: %s", result.family, result.error)
    else:
        rows = f", {result.rows:,} rows" if result.rows else ""
        log.info("%-12s CV %s %.4f ± %.4f  (%d candidates, %s%s, %.1fs)  %s", result.family, metric, result.cv_mean,
                 result.cv_std, result.n_candidates, result.search, rows, result.search_time,
                 params_text(result.params))


def _ensemble(y: pd.Series, ranked: list[FamilyResult], scorer: metrics.Scorer, folds: np.ndarray,
              classes) -> Ensemble | None:
    """Caruana's ensemble selection over the kept out-of-fold predictions; ``None`` when there is nothing to weigh."""
    pool = [p for r in ranked for p in r.oofs
            if len(y) <= LARGE_MEMBER_ROWS or not (p.family in REGISTRY and REGISTRY[p.family].grows_with_rows)]
    why = (f"{len(y)} training rows, fewer than {ENSEMBLE_MIN_ROWS}" if len(y) < ENSEMBLE_MIN_ROWS
           else "one family scored: nothing to combine its best candidate with" if len(ranked) < 2
           else "fewer than two candidates of a size to combine" if len(pool) < 2 else None)
    if why:
        log.info("ensemble: not tried (%s); the best single model is used", why)
        return None
    started = time.perf_counter()
    counts = ensemble_selection(pool, y, scorer, classes)
    chosen = [i for i in np.argsort(-counts, kind="stable") if counts[i]]
    if len(chosen) < 2:
        log.info("ensemble: selection kept one model only (%s); no ensemble", pool[chosen[0]].family)
        return None
    names = _member_names([pool[i] for i in chosen])
    members = [(name, pool[i], int(counts[i])) for name, i in zip(names, chosen)]
    oof = _average([p for _, p, _ in members], [w for *_, w in members], classes)
    fold_scores = [scorer.from_predictions(y.iloc[rows], oof.pred[rows], None if oof.proba is None else oof.proba[rows])
                   for rows in (folds == k for k in np.unique(folds))]
    seconds = time.perf_counter() - started
    sign = scorer.sign
    result = FamilyResult(
        family=ENSEMBLE, params=_shares(members),
        cv_mean=float(sign * np.mean(fold_scores)), cv_std=float(np.std(fold_scores)), fit_time=float("nan"),
        search_time=seconds, n_candidates=len(pool), search="caruana",
    )
    log.info("%-12s CV %s %.4f ± %.4f  (%d members of %d candidates, %.1fs; optimistic: weighed on the same folds)"
             "  %s", ENSEMBLE, scorer.metric, result.cv_mean, result.cv_std, len(members), len(pool), seconds,
             params_text(result.params))
    return Ensemble(members, oof, result)


def ensemble_selection(pool: list[Predictions], y: pd.Series, scorer: metrics.Scorer, classes,
                       rounds: int = ENSEMBLE_ROUNDS, max_members: int | None = None) -> np.ndarray:
    """How often each candidate of ``pool`` is picked: greedy forward selection with replacement.

    Each round adds the candidate whose addition gives the best score of the
    (equally weighted) average of the picks so far, on the pooled out-of-fold
    predictions (with a tuned threshold, at its best cut-off); once
    ``max_members`` (default :data:`MAX_MEMBERS`) distinct candidates are in,
    only they may be picked again.
    The counts of the best-scoring round are returned. Ties go to the earlier
    candidate, so the same pool always gives the same ensemble.
    """
    max_members = MAX_MEMBERS if max_members is None else max_members
    arrays = [p.pred.astype("float64") if p.proba is None else p.proba.astype("float64") for p in pool]
    total = np.zeros_like(arrays[0])
    counts = np.zeros(len(pool), dtype="int64")
    best_score, best_counts = -np.inf, counts
    for r in range(1, rounds + 1):
        allowed = np.flatnonzero(counts) if np.count_nonzero(counts) >= max_members else range(len(pool))
        scores = [_pooled_score((total + arrays[i]) / r, y, scorer, classes) for i in allowed]
        pick = list(allowed)[int(np.nanargmax(scores))]
        total += arrays[pick]
        counts[pick] += 1
        if max(scores) > best_score:
            best_score, best_counts = max(scores), counts.copy()
    return best_counts


def _pooled_score(average: np.ndarray, y: pd.Series, scorer: metrics.Scorer, classes) -> float:
    if average.ndim == 1:
        return scorer.from_predictions(y, average, None)
    return scorer.from_predictions(y, np.asarray(classes)[np.argmax(average, axis=1)], average)


def _average(members: list[Predictions], weights: list[float], classes) -> Predictions:
    """The weighted average of members' out-of-fold predictions, as the voting estimator computes it."""
    if members[0].proba is None:
        pred = np.average(np.column_stack([p.pred.astype("float64") for p in members]), axis=1, weights=weights)
        return Predictions(ENSEMBLE, {}, np.nan, pred, None)
    proba = np.average(np.stack([p.proba.astype("float64") for p in members]), axis=0, weights=weights)
    return Predictions(ENSEMBLE, {}, np.nan, np.asarray(classes)[np.argmax(proba, axis=1)], proba)


def _shares(members) -> dict[str, float]:
    """Each member's share of the vote, for the leaderboard."""
    total = sum(picks for *_, picks in members)
    return {name: round(picks / total, 4) for name, _, picks in members}


def _member_names(members: list[Predictions]) -> list[str]:
    """The family's name, numbered (``hgb_2``) when several candidates of one family are members."""
    seen: dict[str, int] = {}
    names = []
    for p in members:
        seen[p.family] = seen.get(p.family, 0) + 1
        names.append(p.family if seen[p.family] == 1 else f"{p.family}_{seen[p.family]}")
    return names


def final_model(table: Table, selection: Selection, seed: int, bagged: int = 0):
    """The unfitted final model: the winner's pipeline (``bagged``: :func:`~mlkiln.pipeline.bag`), or the
    ensemble's weighted vote of pipelines (never bagged: :func:`bag_fits`)."""
    classes = table.classes
    n_classes = len(classes) if classes else 2
    if selection.chose_ensemble:
        return build_ensemble(table.task, selection.final_spec(), table.kinds, seed, n_classes,
                              selection.threshold, selection.max_categories, selection.codes, selection.texts,
                              selection.tree_words, selection.dates)
    best = selection.best
    return build_pipeline(table.task, best.family, table.kinds, selection.chosen_params(),
                          seed, n_classes, selection.threshold, selection.max_categories, selection.codes, bagged,
                          selection.texts, selection.tree_words, selection.dates)


def fit_model(X: pd.DataFrame, y: pd.Series, table: Table, selection: Selection, seed: int, compute: Compute,
              folds: int = 3, bagging: str | None = None):
    """Fit the final model on the non-test rows; an ensemble member that fails to fit is left out, with a warning.

    All of them, unless a --budget's time left cannot fit them (see
    :class:`Plan`): then the first rows of :func:`~mlkiln.data.nested_sample`
    (``folds`` as the search's), the rows ``train.py`` draws too. The rows it
    saw are the last of :attr:`Selection.steps`. With ``bagging`` (``"timed"``
    or ``"always"``: :func:`bag_fits`), gradient boosting is then bagged.
    """
    members = [p.family for _, p, _ in selection.ensemble.members] if selection.chose_ensemble else [None]
    rows = len(y) if selection.plan is None else selection.plan.final_rows(
        [f or selection.best.family for f in members])
    if rows < len(y):
        log.warning("final fit on %s of the %s training rows: what the --budget has left", f"{rows:,}", f"{len(y):,}")
        keep = np.sort(nested_sample(y, table.task, seed, folds)[:rows])
        X, y = X.iloc[keep], y.iloc[keep]
    log.info("refitting %s on %s training rows", selection.best.family, f"{len(y):,}")
    started = time.perf_counter()
    plan = selection.plan
    clock = None if plan is None or plan.end is None else (plan.end - plan.post_fit(models=0),
                                                           plan.predicted_rows)
    fitted = _fit_or_drop_members(X, y, table, selection, seed, compute, clock)
    selection.bagged = bag_fits(selection, time.perf_counter() - started, len(y), bagging, metrics.count_trees(fitted))
    if selection.bagged:
        fitted = _bagged_or(fitted, X, y, table, selection, seed, compute)
    selection.steps.append(Step("final fit", len(y), len(members), round(time.perf_counter() - started, 3)))
    vote = _unwrapped(fitted)
    pipes = dict(vote.named_estimators_) if hasattr(vote, "named_estimators_") else {"model": fitted}
    for name, pipe in pipes.items():
        estimator = unbagged(_unwrapped(pipe[-1]))
        if hasattr(estimator, "n_trees_per_iteration_"):  # gradient boosting: the trees early stopping kept
            selection.trees[name] = int(estimator.n_iter_)
    return fitted


#: gradient boosting is bagged (:func:`~mlkiln.pipeline.bag`) when its extra fits, and the steps after them, are
#: estimated to take at most this share of the training so far, or BAG_SECONDS. Each fit takes about as long as
#: the fit on all rows, and each of its trees BAG_SECONDS_PER_TREE to write and predict after it: an ensemble of
#: three gradient boosting models of 262 trees in all (males, 2,790 rows) bagged, the steps after the fit took
#: 5.9 s against 1.7 s, 3.2 ms a tree
BAG_SHARE = 0.4
BAG_SECONDS = 4.0
BAG_SECONDS_PER_TREE = 3e-3
#: ... on at least this many training rows (the rows each fit leaves out are a handful below it), and with --trials
#: (the same model on any machine, so not by the clock) on at most BAG_TRIALS_ROWS
BAG_MIN_ROWS = 50
BAG_TRIALS_ROWS = 50_000


def bag_fits(selection: Selection, seconds: float, n_rows: int, rule: str | None = "timed", trees: int = 0) -> int:
    """How many extra fits on part of the rows to average with the final fit that took ``seconds`` and grew
    ``trees`` (:data:`~mlkiln.pipeline.BAG_FITS`, or 0). Only a single gradient boosting model of a fixed count of
    trees (chosen on the folds), on enough rows for each fit to leave some out, before a --budget's end, and by
    ``rule``: ``"always"`` (on at most :data:`BAG_TRIALS_ROWS` rows), ``"timed"`` where the fits, and writing their
    trees, take at most :data:`BAG_SHARE` of the time so far or :data:`BAG_SECONDS`, None never.

    Not an ensemble: its vote already averages several models. Its gradient boosting members bagged moved test
    scores on 16 public tables by -0.004 to +0.007 (better on 9, worse on 6) for 29-155 % more time
    (benchmarks/RESULTS.md, session 31)."""
    plan, best = selection.plan, selection.best
    if rule is None or selection.chose_ensemble or not REGISTRY[best.family].staged:
        return 0
    if selection.cut_trees is not None or n_rows < BAG_MIN_ROWS:
        return 0
    if selection.chosen_params().get("early_stopping") is not False:
        return 0
    if rule == "always" and n_rows > BAG_TRIALS_ROWS:
        return 0
    # the bagged model is fitted whole (its fit on all rows again, then the others), and its trees written
    extra = (BAG_FITS + 1) * seconds + BAG_FITS * trees * BAG_SECONDS_PER_TREE
    so_far = time.perf_counter() - plan.start if plan is not None else 0.0
    if rule == "timed" and extra > max(BAG_SHARE * so_far, BAG_SECONDS):
        log.info("bagging: %d more fits of %s (about %.1f s with their steps after) would add over %d%% to the "
                 "%.1f s so far; not bagged", BAG_FITS, best.family, extra, round(100 * BAG_SHARE), so_far)
        return 0
    if plan is not None and plan.end is not None and (
            extra + plan.post_fit(1 + BAG_FITS) > plan.end - time.perf_counter()):
        log.info("bagging: %d more fits of %s (about %.1f s) would not end within the --budget; not bagged",
                 BAG_FITS, best.family, extra)
        return 0
    return BAG_FITS


def _bagged_or(fitted, X, y, table: Table, selection: Selection, seed: int, compute: Compute):
    """The final model bagged (:attr:`Selection.bagged` more fits), or ``fitted`` as it is where that fit fails."""
    log.info("bagging %s: %d more fits on %d%% of the rows each, averaged with the fit on all",
             selection.best.family, selection.bagged, round(100 * BAG_ROWS))
    try:
        return fit_final(final_model(table, selection, seed, selection.bagged), X, y, compute)
    except Exception as exc:  # noqa: BLE001 - the model fitted on all rows stands
        log.warning("bagging %s failed (%s); the model fitted once is used", selection.best.family,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        selection.bagged = 0
        return fitted


def fit_within_latency(X: pd.DataFrame, y: pd.Series, table: Table, selection: Selection, options: TrainOptions,
                       compute: Compute):
    """Fit the chosen model; ``(selection, fitted, compiled predictor, one row's latency in microseconds)``.

    The latency is timed on training rows (:func:`mlkiln.compiled.row_latency_us`).
    With ``options.max_latency_us``, a model slower than that is set aside
    and the next best (:func:`next_best`) fitted in its place, until one is
    fast enough; an :class:`InputError` names their times when none is.
    """
    limit, too_slow = options.max_latency_us, []
    bagging = bag_rule = None if not options.bagging else "always" if options.trials else "timed"
    alternatives = next_best(selection, table) if limit is not None else iter(())
    probe = X.head(LATENCY_ROWS)
    while True:
        final = fit_model(X, y, table, selection, options.seed, compute, options.folds, bagging)
        predictor = compile_pipeline(final, table.columns)
        latency = row_latency_us(predictor, probe)
        if limit is None or latency <= limit:
            if too_slow:
                log.warning("--max-latency-us %g: %s chosen (%.1f us a row); set aside: %s", limit,
                            selection.best.family, latency, ", ".join(too_slow))
            return selection, final, predictor, latency
        bagged = selection.bagged
        too_slow.append(f"{selection.best.family}{' bagged' if bagged else ''} ({latency:,.1f} us)")
        log.info("%s%s scores one row in %.1f us, over --max-latency-us %g: fitting %s", selection.best.family,
                 " bagged" if bagged else "", latency, limit, "it alone" if bagged else "the next best")
        if bagged:  # the same model without its extra fits first; the next best without them too (a vote of six
            selection.steps.pop()  # fits that is over the limit is a model too slow to bag again: an impossible
            bagging = bag_rule = None  # limit refitted every family twice, 111 s against 17 s)
            continue
        bagging = bag_rule
        selection = next(alternatives, None)
        if selection is None:
            raise ArgumentError("max_latency_us", limit, "no model scores one row that fast: "
                                + ", ".join(too_slow))


def _fit_or_drop_members(X, y, table: Table, selection: Selection, seed: int, compute: Compute,
                         clock: tuple[float, int] | None = None):
    model = final_model(table, selection, seed)
    try:
        if not selection.chose_ensemble:
            return _fit_by_the_clock(model, X, y, selection, compute, clock)
        return fit_final(model, X, y, compute)
    except Exception:
        if not selection.chose_ensemble:
            raise
        failed = [name for name, pipe in _unwrapped(model).estimators if not _fits(clone(pipe), X, y, compute)]
        if not failed or len(failed) == len(selection.ensemble.members):
            raise
        for name in failed:
            log.warning("ensemble: member %s failed to fit on all training rows; left out", name)
        selection.ensemble.members = [m for m in selection.ensemble.members if m[0] not in failed]
        selection.ensemble.result.params = _shares(selection.ensemble.members)
        return fit_final(final_model(table, selection, seed), X, y, compute)


def _fit_by_the_clock(model, X, y, selection: Selection, compute: Compute, clock: tuple[float, int] | None):
    """Fit the single chosen model; under a --budget (``clock``: the deadline before the model's predictions,
    and the rows they are made for) gradient boosting grows only the trees that end in time, predictions included
    (said, and kept in :attr:`Selection.cut_trees` for the card and ``train.py``)."""
    most = _unwrapped(model[-1]).get_params().get("max_iter")
    plan = selection.plan
    first = None if clock is None else plan.first_trees(selection.best.family, len(X))
    fitted = fit_final(model, X, y, compute, *(clock or ()), first=first)
    grown = _unwrapped(fitted[-1]).get_params().get("max_iter")
    if grown != most:
        selection.cut_trees = grown
        log.warning("final fit: %d of at most %d trees, what the --budget had left", grown, most)
    return fitted


def _unwrapped(model):
    """The model inside a FixedThresholdClassifier (fitted, if it is), else ``model`` itself.

    Not any model's ``estimator``: a forest's is its template tree.
    """
    if isinstance(model, FixedThresholdClassifier):
        return getattr(model, "estimator_", model.estimator)
    return model


def _fits(pipe, X, y, compute: Compute) -> bool:
    try:
        fit_final(pipe, X, y, compute)
    except Exception:  # noqa: BLE001 - the caller names the member that failed
        return False
    return True


def model_info(selection: Selection, final) -> ModelInfo:
    """What the card says about the chosen model: family, estimator, settings, members and trees grown."""
    best = selection.best
    estimator = final[-1] if hasattr(final, "steps") else final
    estimator = unbagged(_unwrapped(estimator))
    members = ()
    if selection.chose_ensemble:
        members = tuple(Member(name, p.family, selection.final_params(p.family, p.params), weight,
                               selection.trees.get(name)) for name, p, weight in selection.ensemble.members)
    families = [m.family for m in members] or [best.family]
    codes = selection.codes if any(REGISTRY[f].encoding == "target" for f in families) else ()  # used by the model
    trees = any(REGISTRY[f].encoding != "onehot" for f in families)  # read the dates' parts
    return ModelInfo(best.family, type(estimator).__name__, selection.chosen_params(),
                     selection.threshold,
                     selection.max_categories, members=members, trees=selection.trees.get("model"),
                     threshold_metric=selection.threshold_metric, codes=codes, bagged=selection.bagged,
                     texts=selection.texts, tree_words=selection.tree_words,
                     dates={name: list(parts) for name, parts in selection.dates.items()} if trees else {})
