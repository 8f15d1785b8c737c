"""The training workflow: load -> understand -> split -> tune -> evaluate -> Run.

:func:`train` is the one entry point; the CLI's ``train`` command is a thin
shell over it. Each step lives in the module named after it; this module only
puts them in order and records what happened in the model card.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__, bundle, metrics, report, train_script
from .data import file_sha256, frame_sha256, read_table, split_train_test
from .errors import MlkilnError
from .pipeline import FAMILIES, MAX_CATEGORIES, build_pipeline
from .schema import (
    as_categories,
    check_target,
    coerce_frame,
    coerce_target,
    column_kind,
    describe_columns,
    infer_task,
    is_missing_text,
    plain_scalar,
    screen_columns,
)
from .tuning import (
    Compute,
    FamilyResult,
    Scorer,
    check_folds,
    check_search,
    fit_final,
    make_cv,
    out_of_fold,
    tune_family,
    unreached,
)

log = logging.getLogger("mlkiln")

TASKS = ("auto", "regression", "classification")


@dataclass
class Run:
    """The result of :func:`train`: the fitted pipeline, its leaderboard and its card.

    ``pipeline`` is a plain scikit-learn Pipeline fitted on all non-test rows.
    ``card`` holds everything ``mlkiln inspect`` shows and ``card.json`` stores.
    ``diagnostics`` holds the report's curves and importances on the test
    split (see :func:`mlkiln.report.diagnostics`); ``save`` writes the report.
    """

    pipeline: object
    card: dict
    diagnostics: dict

    @property
    def metrics(self) -> dict:
        """Metrics per split: ``train``, ``validation`` (CV mean and std) and ``test``."""
        return self.card["metrics"]

    @property
    def leaderboard(self) -> pd.DataFrame:
        """One row per family tried, best cross-validated score first."""
        return leaderboard_frame(self.card["leaderboard"])

    def predict(self, data) -> np.ndarray:
        """Predict for a DataFrame or file, validated against the training schema."""
        from .predict import Model

        return Model(self.pipeline, self.card).predict(data)

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the bundle directory atomically; refuses to replace one unless ``force``."""
        files = bundle.model_files(self.pipeline)
        files[bundle.CARD] = json.dumps(self.card, indent=2, default=_json_default).encode()
        files["train.py"] = train_script.render(self.card).encode()
        files["requirements.txt"] = bundle.requirements_text(self.card["versions"]).encode()
        files.update(report.bundle_files(self.card, self.diagnostics, files, Path(path).name))
        return bundle.write_bundle(path, files, force=force)


def leaderboard_frame(rows: list[dict]) -> pd.DataFrame:
    """The card's leaderboard as a table."""
    return pd.DataFrame(rows, columns=["rank", "family", "cv_mean", "cv_std", "fit_time_s", "search_time_s", "candidates", "params", "error", "search", "status", "not_reached"])


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
    source: str | None = None,
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
        Selection metric; default R2 (regression), accuracy for balanced classes
        and macro-F1 when a class is rare.
    models : list of str, optional
        Families to try (see ``mlkiln.pipeline.FAMILIES``); default all.
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
    search : {"auto", "grid", "random", "halving"}
        Search strategy per family; ``auto`` uses successive halving for the
        expensive families (hgb, rf) and the full grid for the others.
    budget : float, optional
        Wall-clock seconds for tuning; when spent, tuning stops between
        candidates and keeps the best so far (unreached ones are listed).
    trials : int, optional
        At most this many candidates per family: a budget that, unlike
        ``budget``, gives the same model on any machine.
    cluster : str, optional
        Run the CV fits on a Dask cluster: ``tcp://HOST:8786`` or ``"local"``;
        default ``$MLKILN_DASK_SCHEDULER``, else this machine.
    source : str, optional
        How the card names in-memory data (default ``"DataFrame"``).
    """
    started = time.perf_counter()
    if task not in TASKS:
        raise MlkilnError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    check_search(search, budget, trials)
    compute = Compute(n_jobs, cluster)
    frame, data_info = _load(data, source)
    check_target(frame, target)
    for name in [*drop, *keep]:
        if name not in frame.columns:
            check_target(frame, name)
    if target in drop:
        raise MlkilnError(f"cannot --drop the target column {target!r}")

    raw_target = frame[target]
    if raw_target.isna().all():
        raise MlkilnError(f"target column {target!r} has no values")
    if task == "auto":
        task = infer_task(raw_target)
        log.info("task: %s (inferred from %r; override with --task)", task, target)
    y = coerce_target(raw_target, task)
    if len(y) == 0:
        raise MlkilnError(f"target column {target!r} has no numeric values; use --task classification")
    dropped_rows = len(frame) - len(y)
    if dropped_rows:
        log.warning("dropping %d row(s) whose target %r is missing or unreadable", dropped_rows, target)
    frame = frame.loc[y.index]

    features = [c for c in frame.columns if c != target and c not in drop]
    kinds = {name: column_kind(frame[name]) for name in features}
    X = coerce_frame(frame, kinds)
    _warn_unreadable(frame, X, kinds)
    classes = None
    if task == "classification":
        classes = sorted(y.unique().tolist())
        if len(classes) < 2:
            raise MlkilnError(f"target {target!r} has a single class ({classes[0]!r}); there is nothing to learn")

    excluded = {name: why for name, why in screen_columns(X, y, task, kinds, seed).items() if name not in keep}
    for name, why in excluded.items():
        log.warning("excluding column %r: %s (use --keep to override)", name, why)
    kinds = {name: kind for name, kind in kinds.items() if name not in excluded}
    if not kinds:
        raise MlkilnError("no usable feature columns are left; see the exclusions above, or use --keep")
    text = [name for name, kind in kinds.items() if kind == "categorical"]
    X = as_categories(X[list(kinds)], kinds)

    if task == "classification":
        counts = y.value_counts()
        if counts.min() < folds + 1:
            raise MlkilnError(
                f"class {plain_scalar(counts.idxmin())!r} has only {counts.min()} row(s); each class needs at least "
                f"{folds + 1} (one for the test split, {folds} for {folds}-fold CV): add rows, drop that class, or use fewer --folds"
            )
    metric, why = _choose_metric(task, metric, y)
    log.info("selection metric: %s", why)
    families = _choose_families(task, models)
    X_trainval, X_test, y_trainval, y_test = split_train_test(
        X, y, test_size=test_size, seed=seed, stratify=task == "classification"
    )
    check_folds(task, y_trainval, folds)
    log.info("split: %d rows for training and validation (%d-fold CV), %d for test", len(y_trainval), folds, len(y_test))

    max_categories = MAX_CATEGORIES if any(X_trainval[name].nunique() > MAX_CATEGORIES for name in text) else None
    tune_threshold = metrics.needs_threshold(task, metric, y)
    if tune_threshold:
        log.info("decision threshold: tuned on the validation folds for %s (never on test)", metric)
    scorer = Scorer(task, metric, classes, tune_threshold)
    cv = make_cv(task, folds, seed)
    n_classes = len(classes) if classes else 2
    results = []
    deadline = None if budget is None else time.perf_counter() + budget
    with compute:
        for i, family in enumerate(families, 1):
            if deadline is not None and time.perf_counter() > deadline and any(not r.error for r in results):
                results.append(unreached(task, family))
                log.warning("%-12s not reached within --budget %gs", family, budget)
                continue
            log.info("[%d/%d] tuning %s", i, len(families), family)
            result = tune_family(X_trainval, y_trainval, task, family, kinds, scorer, cv, seed, n_classes, compute,
                                 search=search, trials=trials, deadline=deadline, max_categories=max_categories)
            results.append(result)
            if result.error:
                log.warning("%-12s failed: %s", family, result.error)
            else:
                log.info(
                    "%-12s CV %s %.4f ± %.4f  (%d candidates, %s, %.1fs)  %s",
                    family, metric, result.cv_mean, result.cv_std, result.n_candidates, result.search,
                    result.search_time, _params_text(result.params),
                )
        ranked = sorted((r for r in results if not r.error), key=lambda r: -scorer.sign * r.cv_mean)
        if not ranked:
            raise MlkilnError("every model family failed to fit; check the data (see warnings above)")
        best = ranked[0]

        if best.oof is None:  # halving kept no predictions of the winner on full folds
            pipe = build_pipeline(task, best.family, kinds, best.params, seed, n_classes, max_categories=max_categories)
            best.oof = out_of_fold(X_trainval, y_trainval, pipe, cv, task, compute)
        oof_pred, oof_proba, fold_of = best.oof
    threshold = None
    if tune_threshold:
        threshold, _ = metrics.best_threshold(y_trainval, oof_proba[:, 1], classes[1], metric)
        oof_pred = np.where(oof_proba[:, 1] >= threshold, classes[1], classes[0])
        log.info("decision threshold: %.4f on P(%s=%r)", threshold, target, classes[1])
    validation = _fold_metrics(task, y_trainval.to_numpy(), oof_pred, oof_proba, fold_of, classes)

    log.info("refitting %s on all %d training rows", best.family, len(y_trainval))
    final = fit_final(build_pipeline(task, best.family, kinds, best.params, seed, n_classes, threshold, max_categories),
                      X_trainval, y_trainval, compute)
    split_metrics = {
        "train": evaluate_pipeline(final, X_trainval, y_trainval, task, classes),
        "validation": validation,
        "test": evaluate_pipeline(final, X_test, y_test, task, classes),
    }

    card = {
        "mlkiln_version": __version__,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "task": task,
        "target": str(target),
        "metric": {"name": metric, "why": why, "greater_is_better": metrics.SELECTION_METRICS[task][metric]},
        "model": {
            "family": best.family,
            "estimator": type(build_pipeline(task, best.family, kinds, seed=seed, n_classes=n_classes)[-1]).__name__,
            "params": best.params,
            "threshold": threshold,
            "max_categories": max_categories,
            "c_meaning": "scikit-learn C: inverse of the regularisation strength (course's penalty weight = 1/C)",
        },
        "leaderboard": _leaderboard_rows(results, ranked),
        "cv_results": {r.family: r.candidates for r in results},
        "metrics": split_metrics,
        "schema": {
            "columns": describe_columns(frame, kinds),
            "target": {"name": str(target), "dtype": str(raw_target.dtype), **({"classes": classes} if classes else {})},
        },
        "excluded": excluded,
        "dropped_by_user": [str(c) for c in drop],
        "data": {**data_info, "rows_used": int(len(y)), "rows_dropped_missing_target": int(dropped_rows)},
        "split": {
            "test_size": test_size, "seed": seed, "folds": folds,
            "n_train": int(len(y_trainval)), "n_test": int(len(y_test)), "stratified": task == "classification",
        },
        "tuning": {"search": search, "budget_s": budget, "trials": trials, "cores": compute.cores, "dask": bool(compute.cluster)},
        "versions": bundle.package_versions(),
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    card = json.loads(json.dumps(card, default=_json_default))
    # the report's curves need the test predictions, which exist only here
    return Run(final, card, report.diagnostics(final, X_test, y_test, card, target=y))


def evaluate_pipeline(pipe, X: pd.DataFrame, y: pd.Series, task: str, classes) -> dict:
    """Every metric of ``pipe`` on one labelled table."""
    pred = pipe.predict(X)
    if task == "regression":
        return metrics.regression_metrics(y, pred)
    return metrics.classification_metrics(y, pred, pipe.predict_proba(X), classes)


def _load(data, source: str | None) -> tuple[pd.DataFrame, dict]:
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
        info = {"source": source or "DataFrame", "sha256": frame_sha256(frame)}
    elif isinstance(data, (str, os.PathLike)):
        frame = read_table(data)
        info = {"source": source or str(Path(data).name), "sha256": file_sha256(data),
                "read_options": frame.attrs.get("read_options", {})}
    else:
        raise MlkilnError(f"data must be a file path or a pandas DataFrame, got {type(data).__name__}")
    names = [str(c) for c in frame.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MlkilnError(f"duplicate column name(s): {', '.join(map(repr, duplicates))}; rename them")
    frame.columns = names
    if len(frame) == 0:
        raise MlkilnError("the table has no rows")
    info.update(rows=int(len(frame)), columns=int(frame.shape[1]))
    return frame, info


def _warn_unreadable(frame: pd.DataFrame, X: pd.DataFrame, kinds: dict[str, str]) -> None:
    for name, kind in kinds.items():
        if kind == "categorical":
            continue
        lost = int((X[name].isna() & ~is_missing_text(frame[name])).sum())
        if lost:
            log.warning("column %r: %d value(s) are not %s and are treated as missing", name, lost, "finite numbers" if kind == "numeric" else "dates")


def _choose_metric(task: str, metric: str | None, y: pd.Series) -> tuple[str, str]:
    if metric is None:
        return metrics.default_metric(task, y)
    allowed = metrics.SELECTION_METRICS[task]
    if metric not in allowed:
        raise MlkilnError(f"--metric {metric!r} is not a {task} metric; choose from {', '.join(allowed)}")
    if metric in ("f1", "roc_auc", "average_precision") and task == "classification" and y.nunique() != 2:
        raise MlkilnError(f"--metric {metric} needs two classes; use f1_macro or accuracy")
    return metric, f"{metric} (chosen with --metric)"


def _choose_families(task: str, models: list[str] | None) -> list[str]:
    if not models:
        return list(FAMILIES[task])
    unknown = [m for m in models if m not in FAMILIES[task]]
    if unknown:
        raise MlkilnError(f"unknown {task} model(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FAMILIES[task])}")
    return list(dict.fromkeys(models))


def _fold_metrics(task, y, pred, proba, fold_of, classes) -> dict:
    """Mean and std over the validation folds of every scalar metric."""
    per_fold = []
    for k in np.unique(fold_of):
        rows = fold_of == k
        if task == "regression":
            per_fold.append(metrics.regression_metrics(y[rows], pred[rows].astype("float64")))
        else:
            per_fold.append(metrics.classification_metrics(y[rows], pred[rows], proba[rows], classes))
    keys = [k for k, v in per_fold[0].items() if isinstance(v, (int, float)) and v is not None and k != "n"]
    table = {k: [f[k] for f in per_fold if f.get(k) is not None] for k in keys}
    return {
        "mean": {k: float(np.mean(v)) for k, v in table.items() if v},
        "std": {k: float(np.std(v)) for k, v in table.items() if v},
        "folds": len(per_fold),
        "n": int(len(y)),
    }


def _leaderboard_rows(results: list[FamilyResult], ranked: list[FamilyResult]) -> list[dict]:
    order = {r.family: i + 1 for i, r in enumerate(ranked)}
    rows = []
    for r in sorted(results, key=lambda r: order.get(r.family, len(results) + 1)):
        rows.append({
            "rank": order.get(r.family), "family": r.family,
            "cv_mean": None if r.error else r.cv_mean, "cv_std": None if r.error else r.cv_std,
            "fit_time_s": None if r.error else round(r.fit_time, 4), "search_time_s": round(r.search_time, 3),
            "candidates": r.n_candidates, "params": r.params, "error": r.error,
            "search": r.search, "status": r.status, "not_reached": r.not_reached,
        })
    return rows


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "(no hyperparameters)"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
