"""The training workflow: load -> understand -> split -> select -> fit the final model -> evaluate -> card.

:func:`train` is the one entry point; the CLI's ``train`` command is a thin
shell over it. It only orders the steps: each is a function in the module
named after it, and this module records what they found in the model card.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import bundle, drift, leakage, metrics, report, train_script, workers
from .card import Card, DataInfo, LeaderboardRow, NotStarted, Schema, SearchStep, Split, TuningInfo
from .cluster import check_dask
from .data import check_folds, load_frame, row_hashes, split_train_test
from .errors import ArgumentError, InputError
from .options import TrainOptions
from .pipeline import REGISTRY
from .predict import Model
from .selection import Selection, fit_within_latency, model_info, select
from .tuning import Compute, FamilyResult
from .understand import Table, understand

log = logging.getLogger("mlkiln")

LEADERBOARD_COLUMNS = [f.name for f in dataclasses.fields(LeaderboardRow)]
#: a test split smaller than this gets a warning: two rows gave a test R2 of -0.74 without a word
FEW_TEST_ROWS = 30
#: a test share this large is named when the training rows it leaves are too few for the folds
LARGE_TEST_SHARE = 0.5


@dataclass
class Run:
    """The result of :func:`train`: the fitted model, its leaderboard and its card.

    ``model`` is a :class:`~mlkiln.predict.Model`: a plain scikit-learn
    Pipeline fitted on all non-test rows, with its :class:`~mlkiln.card.Card`.
    ``diagnostics`` holds the report's curves and importances on the test
    split (see :func:`mlkiln.report.diagnostics`); ``save`` writes the report.
    """

    model: Model
    diagnostics: dict

    @property
    def pipeline(self):
        return self.model.pipeline

    @property
    def card(self) -> Card:
        return self.model.card

    @property
    def metrics(self) -> dict:
        """Metrics per split: ``train``, ``validation`` (CV mean and std) and ``test``."""
        return self.card.metrics

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per family tried, best cross-validated score first."""
        return pd.DataFrame([row.__dict__ for row in self.card.leaderboard], columns=LEADERBOARD_COLUMNS)

    def predict(self, data) -> np.ndarray:
        """Predict for a DataFrame or file, validated against the training schema."""
        return self.model.predict(data)

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the bundle directory atomically; refuses to replace one unless ``force``."""
        files = bundle.model_files(self.pipeline)
        files[bundle.CARD] = self.card.to_json()
        files["train.py"] = train_script.render(self.card).encode()
        files["requirements.txt"] = bundle.requirements_text(self.card.versions).encode()
        files.update(report.bundle_files(self.card, self.diagnostics, files, Path(path).name))
        return bundle.write_bundle(path, files, force=force)


def _check_training_rows(table: Table, y_trainval, options: TrainOptions) -> None:
    """The folds' checks of the training rows; a test share that left too few of them is named by its flag."""
    try:
        check_folds(table.task, y_trainval, options.folds)
    except InputError as exc:
        if options.test_size < LARGE_TEST_SHARE:
            raise
        raise ArgumentError("test_size", options.test_size, f"leaves {len(y_trainval):,} of the {len(table.y):,} rows "
                            f"for training: {exc}") from None


def train(
    data,
    target: str,
    *,
    task: str = "auto",
    metric: str | None = None,
    models: list[str] | None = None,
    folds: int = 3,
    test_size: float = 0.2,
    seed: int = 0,
    drop: list[str] | tuple = (),
    keep: list[str] | tuple = (),
    n_jobs: int | None = None,
    search: str = "auto",
    budget: float | None = None,
    trials: int | None = None,
    cluster: str | None = None,
    ensemble: bool = True,
    max_latency_us: float | None = None,
    bagging: bool = True,
    source: str | None = None,
    started: float | None = None,
) -> Run:
    """Train, tune and evaluate models for ``target`` in ``data``; return the best as a :class:`Run`.

    Parameters
    ----------
    data : path or DataFrame
        A CSV or Parquet file, or a DataFrame.
    target : str
        The column to predict.
    task : {"auto", "regression", "classification"}
        ``auto`` decides from the target: many distinct numbers -> regression.
    metric : str, optional
        Selection metric; default R2 (regression) and log loss (classification;
        with two classes and a rare one the decision threshold is then tuned
        for macro-F1).
    models : list of str, optional
        Families to try (see ``mlkiln.options.FAMILIES``); default all.
    folds : int
        k of the k-fold cross-validation that picks hyperparameters and family.
    test_size : float
        Share of rows held out, once, for the final test score.
    seed : int
        Seeds the split, the folds and every estimator: same data, same model.
    drop, keep : list of str
        Columns never to use / to use even when flagged as identifier, constant or leakage.
    n_jobs : int, optional
        Cores to use: CV fits run as that many one-thread workers, the final
        refit on that many threads (no oversubscription); default all cores.
    search : {"auto", "grid", "random", "halving", "portfolio"}
        Search strategy per family; ``auto`` tries a family's portfolio (hgb:
        configurations strong across many tables, best first) where it has
        one, uses successive halving for the other expensive families (rf,
        extra_trees) on tables large enough for two rounds, and the full grid
        otherwise.
    budget : float, optional
        Wall-clock seconds for the whole of training, from reading the data
        to the card: the search runs best-first across families on samples of
        the rows, starts no candidate it estimates cannot finish in time, and
        keeps time for the final fit (on fewer rows if all cannot fit); see
        :func:`mlkiln.selection.select`. Candidates not started are listed.
    trials : int, optional
        At most this many candidates per family: a budget that, unlike
        ``budget``, gives the same model on any machine.
    cluster : str, optional
        Run the CV fits on a Dask cluster: ``tcp://HOST:8786`` or ``"local"``;
        default ``$MLKILN_DASK_SCHEDULER``, else this machine.
    ensemble : bool
        Also weigh an ensemble of the best candidates of all families
        (Caruana's ensemble selection on their out-of-fold predictions); it is
        chosen only when its cross-validated score beats the best single model.
    max_latency_us : float, optional
        Choose only a model (or ensemble) that scores one row alone within
        this many microseconds, timed on the fitted, compiled model; when the
        best is slower, the next best is fitted instead (the card's
        ``latency_us`` says what the chosen one takes).
    bagging : bool
        Where the chosen model is a single gradient boosting model whose trees
        were counted on the folds, average it with 5 more fits, each weighing
        a random 80 % of the rows (bagging, as AutoGluon averages its fold
        models): a plain scikit-learn vote (:func:`mlkiln.pipeline.bag`). Only
        where that is quick, by :func:`mlkiln.selection.bag_fits`'s rule (by
        the rows alone under ``trials``); ``max_latency_us`` sets it aside first.
    source : str, optional
        How the card names in-memory data (default ``"DataFrame"``).
    started : float, optional
        The ``time.perf_counter()`` that ``budget`` counts from: by default
        this call; ``mlkiln train`` passes its own start, so that its imports count.
    """
    started = time.perf_counter() if started is None else started
    if isinstance(target, int) and not isinstance(target, bool):  # a frame's integer column name, as load_frame names it
        target = str(target)
    if not isinstance(target, str):
        raise ArgumentError("target", target, "must be the name of one column")
    address = check_dask(cluster)  # the option as given: the environment's scheduler is named as such
    options = TrainOptions(task=task, metric=metric, models=models, folds=folds, test_size=test_size, seed=seed,
                           drop=drop, keep=keep, n_jobs=n_jobs, search=search, budget=budget, trials=trials,
                           cluster=cluster, ensemble=ensemble, max_latency_us=max_latency_us,
                           bagging=bagging)
    if address is None:  # the CV workers start while the data is read and screened
        workers.start(workers.local_cores(options.n_jobs))
    frame, data_info = load_frame(data, source)
    table = understand(frame, target, options)
    del frame
    X_trainval, X_test, y_trainval, y_test = split_train_test(
        table.X, table.y, test_size=options.test_size, seed=options.seed, stratify=table.task == "classification")
    _check_training_rows(table, y_trainval, options)
    log.info("split: %d rows for training and validation (%d-fold CV), %d for test", len(y_trainval), options.folds,
             len(y_test))
    if len(y_test) < FEW_TEST_ROWS:
        log.warning("the test split holds %d rows: its metrics are mostly noise (a larger --test-size, or more rows, "
                    "measures the model)", len(y_test))
    copies = leakage.copied_rows(row_hashes(X_trainval, y_trainval), row_hashes(X_test, y_test))
    if copies:
        log.warning("%s", copies.message)
    with Compute(options.n_jobs, options.cluster) as compute:
        selection = select(X_trainval, y_trainval, table, options, compute, started)
        selection, final, predictor, latency = fit_within_latency(X_trainval, y_trainval, table, selection, options,
                                                                  compute)
    alarm = leakage.ceiling_alarm(
        table.task, selection.validation["mean"], final, X_trainval, y_trainval, seed=options.seed,
        trees=metrics.count_trees(final),
        class_counts=y_trainval.value_counts().to_dict() if table.task == "classification" else None)
    if alarm:
        log.warning("%s", alarm.message)
    evidence = (tuple(leak.to_dict() for leak in table.leaks) + ((copies.to_dict(),) if copies else ())
                + ((alarm.to_dict(),) if alarm else ()))
    sample = metrics.train_metric_sample(len(y_trainval), options.seed)
    X_fit, y_fit = (X_trainval, y_trainval) if sample is None else (X_trainval.iloc[sample], y_trainval.iloc[sample])
    test_predictions = metrics.predict_in_blocks(final, X_test, table.task, predictor)  # the report's too
    _say_if_weak(table, selection, y_trainval, test_predictions[0])
    split_metrics = {
        "train": metrics.evaluate(final, X_fit, y_fit, table.task, table.classes, predictor),
        "validation": selection.validation,
        "test": metrics.of_predictions(y_test, *test_predictions, table.task, table.classes),
    }
    # new rows are scored by the final model: its predictions on the test rows are the reference they should match
    seen, source = (test_predictions, "test") if len(y_test) >= drift.PREDICTION_MIN_ROWS else (
        (selection.oof.pred, selection.oof.proba), "out-of-fold")
    profile = drift.training_profile(X_trainval, table.kinds, seen[1] if table.classes else seen[0], table.task,
                                     table.classes, selection.threshold, options.seed, source, fresh=X_test)
    card = make_card(table, selection, split_metrics, options, compute, final, data_info, profile, evidence,
                     len(y_trainval), len(y_test), time.perf_counter() - started, latency,
                     None if sample is None else len(sample))
    # the report's curves need the test predictions, which exist only here
    return Run(Model(final, card), report.diagnostics(final, X_test, y_test, card, target=table.y, predictor=predictor,
                                                      predictions=test_predictions))


#: a regression target of whole numbers with at most this many distinct values may be class codes
CLASS_CODES = 1000
#: the reasons for setting a column aside that leave no signal in it
NO_SIGNAL = ("constant", "nearly empty")


def _say_if_weak(table: Table, selection: Selection, y: pd.Series, test_labels: np.ndarray) -> None:
    """Warn where the model is no better than a constant, or labels every row one class."""
    weak = metrics.no_better_than_baseline(table.task, selection.validation["mean"], y)
    if weak:
        log.warning("%s", weak + _weak_model_hint(table))
    same = metrics.one_label(table.task, table.classes, getattr(selection.oof, "pred", None), test_labels)
    if same:
        log.warning("%s", same)


def _weak_model_hint(table: Table) -> str:
    """What may have kept the model from learning: columns set aside, or class codes read as numbers."""
    hints = []
    # a constant or nearly empty column holds no signal to set aside (sweep 11 listed five constant ones)
    aside = [(name, why) for name, why in table.excluded.items() if not why.startswith(NO_SIGNAL)]
    if aside:
        shown = [f"'{name}' ({why.split(':')[0]})" for name, why in aside[:5]]
        hints.append(f"the columns set aside may hold the signal: {', '.join(shown)}")
    y = table.y
    # codes: a few values, each of several rows (not 215 values of 442 rows)
    if (table.task == "regression" and y.nunique() <= min(CLASS_CODES, len(y) // 5)
            and bool((y == np.round(y)).all())):
        hints.append(f"its {y.nunique()} whole-number values may be class codes: train with --task classification")
    return "".join(f"; {hint}" for hint in hints)


def make_card(table: Table, selection: Selection, split_metrics: dict, options: TrainOptions, compute: Compute,
              final, data_info: dict, profile: dict, evidence: tuple[dict, ...], n_train: int, n_test: int,
              seconds: float, latency_us: float | None = None, train_metric_rows: int | None = None) -> Card:
    """The card of a finished run: what was decided, how it scored, and what it needs to load.

    ``latency_us``: one row's scoring time; ``train_metric_rows``: the training metrics' sample, if not every row.
    """
    card = Card(
        task=table.task,
        target=table.target.name,
        metric=table.metric,
        model=model_info(selection, final),
        leaderboard=_leaderboard_rows(selection),
        cv_results={r.family: r.candidates for r in selection.results},
        metrics=split_metrics,
        schema=Schema(table.columns, table.target),
        excluded=table.excluded,
        dropped_by_user=options.drop,
        data=DataInfo(**data_info, rows_used=int(len(table.y)), rows_dropped_missing_target=int(table.rows_dropped)),
        split=Split(options.test_size, options.seed, options.folds, n_train, n_test, table.task == "classification"),
        tuning=TuningInfo(options.search, options.budget, options.trials, compute.cores, bool(compute.cluster),
                          options.ensemble, {r.family: REGISTRY[r.family].plotted for r in selection.results
                                             if r.family in REGISTRY and REGISTRY[r.family].plotted},
                          *_search_record(selection), max_latency_us=options.max_latency_us),
        versions=bundle.package_versions(),
        train_seconds=round(seconds, 3),
        latency_us=latency_us,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        profile=profile,
        leakage=evidence,
        evaluation=report.evaluation_info(n_train, n_test, options.seed, train_metric_rows, table.X.shape[1],
                                          metrics.count_trees(final)),
    )
    return Card.from_dict(card.to_dict())  # numpy values become the plain ones card.json will hold


def _search_record(selection: Selection) -> tuple[tuple[SearchStep, ...], tuple[NotStarted, ...]]:
    """The rows each search step saw and the candidates the budget did not start, for the card."""
    steps = tuple(SearchStep(s.name, s.rows, s.candidates, s.seconds) for s in selection.steps)
    return steps, tuple(NotStarted(**skipped) for skipped in selection.not_started)


def _leaderboard_rows(selection: Selection) -> tuple[LeaderboardRow, ...]:
    order = {r.family: i + 1 for i, r in enumerate(selection.ranked)}
    results = sorted(selection.results, key=lambda r: order.get(r.family, len(selection.results) + 1))
    return tuple(_leaderboard_row(r, order.get(r.family)) for r in results)


def _leaderboard_row(r: FamilyResult, rank: int | None) -> LeaderboardRow:
    ok = not r.error
    return LeaderboardRow(
        rank=rank, family=r.family, cv_mean=r.cv_mean if ok else None, cv_std=r.cv_std if ok else None,
        fit_time_s=round(r.fit_time, 4) if ok else None, search_time_s=round(r.search_time, 3),
        candidates=r.n_candidates, params=r.params, error=r.error, search=r.search, status=r.status,
        not_reached=r.not_reached,
    )
