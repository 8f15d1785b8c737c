"""Step 1 of the report: the numbers that need labelled data (curves, a prediction sample, importances)."""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ..card import Card, Evaluation
from ..jsonio import plain
from ..metrics import BLOCK_ROWS, IMPORTANCE_MAX_COLUMNS, Scorer, count_trees, predict_in_blocks

#: points drawn in the regression scatter plots (a seeded sample of the rows)
SCATTER_POINTS = 2000
#: rows and repeats of permutation importance: enough to rank columns, quick on any table
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
#: at most this many rows scored in all (the sample, once plain and once per column and repeat): a wide table
#: gets a smaller sample, never under IMPORTANCE_MIN_ROWS; 200 columns at 2,000 rows would score 2M rows
IMPORTANCE_SCORED = 200_000
IMPORTANCE_MIN_ROWS = 200
#: ...and at most this many rows x trees (:func:`mlkiln.metrics.count_trees`): a large model gets fewer rows, and
#: below IMPORTANCE_MIN_ROWS fewer repeats (not under MIN_REPEATS) instead. The 5,100 trees of a 10-class boosted
#: model on scikit-learn's digits (61 columns) scored 110k rows, 60 s of a 200 s training; now 200 rows x 2 repeats
IMPORTANCE_TREE_ROWS = 100_000_000
#: at most this many values of shuffled copies are scored in one call: 65,536 rows of a 2,000-column table were
#: 1 GB before the pipeline's own copies (the report's phase peaked at 5.7 GB on 200 rows x 2,000 columns)
IMPORTANCE_BLOCK_CELLS = 4_000_000
MIN_REPEATS = 2
#: points kept per ROC / precision-recall curve
CURVE_POINTS = 400


def diagnostics(pipeline, X: pd.DataFrame, y: pd.Series, card: Card, target: pd.Series | None = None,
                predictor=None, predictions: tuple | None = None) -> dict:
    """Curves, a prediction sample, importances and coefficients of ``pipeline`` on ``X``, ``y``.

    Parameters
    ----------
    pipeline : fitted Pipeline
        The model, as stored in the bundle.
    X, y : DataFrame, Series
        Labelled rows the model never trained on: the test split, or evaluation data.
    card : Card
        The model card (task, classes, metric, seed).
    target : Series, optional
        The target of every usable row, for the distribution in the data
        section; default ``y``.
    predictor : compiled.Predictor, optional
        The pipeline compiled: it makes the predictions for the curves, in
        row blocks (see :func:`mlkiln.metrics.predict_in_blocks`).
    predictions : tuple, optional
        ``(predictions, probabilities or None)`` of ``X`` already made (the
        test metrics' own): not made a second time.

    Returns
    -------
    dict
        JSON-ready numbers; see the module docstring, key ``diagnostics``.
    """
    started = time.perf_counter()
    task, seed = card.task, card.split.seed
    classes = list(card.classes) or None
    rng = np.random.default_rng(seed)
    out: dict = {"rows": int(len(y)), "target": _distribution(task, y if target is None else target)}
    # these predictions are small: one thread is ten times faster than OpenMP teams spinning on busy cores
    with threadpool_limits(1):
        pred, proba = predictions or predict_in_blocks(pipeline, X, task, predictor)
        if task == "regression":
            out["regression"] = _regression_numbers(y.to_numpy("float64"), pred, rng)
        else:
            out["classification"] = {"curves": _class_curves(y.to_numpy(), proba, classes)}
        out["permutation_importance"] = _importance(pipeline, X, y, card, rng, predictor)
    out["coefficients"] = _coefficients(pipeline, card)
    out["seconds"] = round(time.perf_counter() - started, 3)
    return plain(out)


def importance_plan(n_rows: int, n_columns: int, trees: int = 0) -> tuple[int, int]:
    """``(rows, repeats)`` of the permutation importance: :data:`IMPORTANCE_ROWS` rows, each column shuffled
    :data:`IMPORTANCE_REPEATS` times; fewer for a wide table or a large model (``trees``)."""
    scored = min(IMPORTANCE_SCORED, IMPORTANCE_TREE_ROWS // max(trees, 1))
    repeats = IMPORTANCE_REPEATS
    while repeats > MIN_REPEATS and scored // (1 + n_columns * repeats) < IMPORTANCE_MIN_ROWS:
        repeats -= 1
    rows = max(IMPORTANCE_MIN_ROWS, min(IMPORTANCE_ROWS, scored // (1 + n_columns * repeats)))
    return min(n_rows, rows), repeats


def evaluation_info(n_train: int, n_test: int, seed: int, train_rows: int | None = None,
                    n_columns: int = 0, trees: int = 0) -> Evaluation:
    """What the card says about the rows behind the metrics and the report: all of them, and the seeded samples.

    ``train_rows``: the training metrics' seeded sample, when they did not use
    all ``n_train`` rows (see :data:`mlkiln.metrics.TRAIN_METRIC_ROWS`);
    ``n_columns``, ``trees``: the model's input columns and trees, which bound the importance's sample.
    """
    train = "every row" if train_rows is None else f"a seeded sample of {train_rows:,} of the {n_train:,} rows"
    return Evaluation(
        metrics=f"test: every row; train: {train}; predicted in blocks of {BLOCK_ROWS:,} rows",
        rows={"train": n_train if train_rows is None else train_rows, "test": n_test,
              "importance": importance_plan(n_test, n_columns, trees)[0], "scatter": min(n_test, SCATTER_POINTS)},
        seed=seed,
    )


def _distribution(task: str, target: pd.Series) -> dict:
    if task == "classification":
        counts = target.value_counts().sort_index()
        return {"counts": {str(k): int(v) for k, v in counts.items()}}
    values = target.to_numpy("float64")
    counts, edges = _histogram(values, values.min(), values.max())
    return {"edges": edges, "counts": counts, "mean": values.mean(), "median": np.median(values),
            "min": values.min(), "max": values.max()}


def _histogram(values: np.ndarray, low: float, high: float, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """NumPy's histogram over ``[low, high]``; values that (nearly) all equal one number get one unit-wide range
    around it, where NumPy refuses a range too narrow for ``bins`` distinct edges (residuals -0.75 and
    -0.75 + 4e-16)."""
    if not high - low > 1e3 * np.spacing(max(abs(low), abs(high), 1.0)):
        low, high = (low + high) / 2 - 0.5, (low + high) / 2 + 0.5
    return np.histogram(values, bins=bins, range=(low, high))


def _regression_numbers(actual: np.ndarray, predicted: np.ndarray, rng) -> dict:
    predicted = np.asarray(predicted, dtype="float64")
    residuals = actual - predicted
    take = np.sort(rng.choice(len(actual), min(len(actual), SCATTER_POINTS), replace=False))
    # the central 99 % of the residuals: a few outliers would squeeze the rest into one bar
    low, high = np.quantile(residuals, [0.005, 0.995])
    counts, edges = _histogram(residuals, low, high)
    return {
        "sample": {"actual": actual[take], "predicted": predicted[take]},
        "residuals": {"edges": edges, "counts": counts, "outside": int(len(residuals) - counts.sum()),
                      "mean": residuals.mean(), "std": residuals.std()},
    }


def _class_curves(y: np.ndarray, proba: np.ndarray, classes: list) -> list[dict]:
    """ROC, precision-recall and calibration one-vs-rest, for the positive class or each class."""
    shown = [1] if len(classes) == 2 else range(len(classes))
    curves = []
    for i in shown:
        positive, p = y == classes[i], proba[:, i]
        if positive.all() or not positive.any():
            continue  # a class absent from these rows has no curve
        fpr, tpr, _ = skm.roc_curve(positive, p)
        precision, recall, _ = skm.precision_recall_curve(positive, p)
        decile = np.minimum((p * 10).astype(int), 9)
        bins = [b for b in range(10) if (decile == b).any()]
        curves.append({
            "class": str(classes[i]),
            "roc": {**_thin(fpr=fpr, tpr=tpr), "auc": skm.roc_auc_score(positive, p)},
            "pr": {**_thin(recall=recall, precision=precision), "average_precision": skm.average_precision_score(positive, p)},
            "calibration": {
                "mean_predicted": [p[decile == b].mean() for b in bins],
                "fraction_positive": [positive[decile == b].mean() for b in bins],
                "count": [int((decile == b).sum()) for b in bins],
            },
        })
    return curves


def _thin(**arrays: np.ndarray) -> dict:
    """At most :data:`CURVE_POINTS` points of a curve, both ends kept."""
    n = len(next(iter(arrays.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return {name: values[keep] for name, values in arrays.items()}


def _importance(pipeline, X: pd.DataFrame, y: pd.Series, card: Card, rng, predictor=None) -> dict:
    """Drop in the selection metric when one input column is shuffled, on a sample of the rows.

    scikit-learn's permutation importance (``baseline - shuffled`` score, each
    column shuffled :data:`IMPORTANCE_REPEATS` times, see :func:`importance_plan`), with the shuffled
    copies scored together, by ``predictor`` when the pipeline is compiled:
    a tree ensemble's cost is per call and per tree, so 31 calls of 2,000 rows
    took 3 s of the machine-failure example's 19 s training.
    """
    metric = card.metric.name
    additive = predictor is not None and predictor.additive
    if not additive and X.shape[1] > IMPORTANCE_MAX_COLUMNS:
        return {"metric": metric, "rows": 0, "repeats": 0, "features": [],
                "skipped": f"{X.shape[1]:,} input columns: shuffling each of more than {IMPORTANCE_MAX_COLUMNS} "
                           "through this model costs minutes"}
    n_rows, repeats = importance_plan(len(X), X.shape[1], count_trees(pipeline))
    if len(X) > n_rows:
        take = np.sort(rng.choice(len(X), n_rows, replace=False))
        X, y = X.iloc[take], y.iloc[take]
    # the stored pipeline already applies the tuned threshold, so the plain metric is the right one
    scorer = Scorer(card.task, metric, list(card.classes) or None)
    shuffle = np.random.default_rng(card.split.seed)
    terms = predictor.terms(X) if additive else None
    scores = _additive_scores(predictor, terms, X, y, scorer, shuffle, repeats) if terms else _copies_scores(
        pipeline, X, y, card.task, scorer, shuffle, repeats, predictor)
    drops = scores[0] - np.reshape(scores[1:], (X.shape[1], repeats))
    means, stds = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-means, kind="stable")
    return {
        "metric": metric, "rows": int(len(X)), "repeats": repeats,
        "features": [{"feature": str(X.columns[i]), "mean": means[i], "std": stds[i]} for i in order],
    }


def _additive_scores(predictor, terms, X, y, scorer, shuffle, repeats) -> list[float]:
    """The scores of ``X`` and of each shuffled copy of a linear model: its raw outputs less the column's part,
    plus that part shuffled. The same permutations as :func:`_shuffled_copies`, in the same order; scoring
    every copy of 1,000 columns took 8 s of a 2,000-row table's report."""
    raw, parts = terms
    scores = [scorer.from_predictions(y, *predictor.finish(raw))]
    for column in X.columns:
        part = parts.get(column)
        for _ in range(repeats):
            order = shuffle.permutation(len(X))
            changed = raw if part is None else raw - part + part[order]
            scores.append(scorer.from_predictions(y, *predictor.finish(changed)))
    return scores


def _copies_scores(pipeline, X, y, task, scorer, shuffle, repeats, predictor) -> list[float]:
    """The scores of ``X`` and of each of its shuffled copies, the copies scored together in blocks."""
    copies = _shuffled_copies(X, shuffle, repeats)
    n = len(X)
    per_call = max(1, min(BLOCK_ROWS // max(n, 1), IMPORTANCE_BLOCK_CELLS // max(n * X.shape[1], 1)))
    scores = []
    # at most BLOCK_ROWS rows, and IMPORTANCE_BLOCK_CELLS values, of copies exist at a time
    while batch := list(itertools.islice(copies, per_call)):
        pred, proba = predict_in_blocks(pipeline, pd.concat(batch, ignore_index=True), task, predictor)
        for k in range(len(batch)):
            rows = slice(k * n, (k + 1) * n)
            scores.append(scorer.from_predictions(y, pred[rows], None if proba is None else proba[rows]))
    return scores


def _shuffled_copies(X: pd.DataFrame, shuffle: np.random.Generator, repeats: int) -> Iterator[pd.DataFrame]:
    """``X``, then ``X`` with each column shuffled in turn, ``repeats`` times each."""
    yield X
    for column in X.columns:
        values = X[column].to_numpy()
        for _ in range(repeats):
            copy = X.copy()
            copy[column] = values[shuffle.permutation(len(X))]
            yield copy


def _feature_names(prep: Pipeline) -> np.ndarray:
    """The names of the features ``prep`` (a pipeline before its model) makes. Where two are the same, a word of free
    text that is also a column's name or a word of two text columns, each word is named by its column ("note:
    year"): scikit-learn refuses names that are not unique, and the report failed the whole run after its search
    (sweep 11: movielens, whose titles hold the word "year", under --budget 45)."""
    try:
        return prep.get_feature_names_out()
    except ValueError:
        pass
    steps, prefixes = [], {}
    for name, step in prep.steps:
        if isinstance(step, ColumnTransformer):
            step = copy.copy(step)  # the fitted parts shared, the model's own transformer left as it is
            step.verbose_feature_names_out = True
            prefixes = {f"{part}__": (f"{columns[0]}: " if part.startswith("words") else "")
                        for part, _, columns in step.transformers_}
        steps.append((name, step))
    names = Pipeline(steps).get_feature_names_out()
    return np.array([next((prefixes[p] + n[len(p):] for p in prefixes if n.startswith(p)), n) for n in names])


def _coefficients(pipeline, card: Card) -> dict | None:
    """Signed coefficients of a linear model on its scaled, one-hot features, largest first (none for an ensemble)."""
    if not hasattr(pipeline, "steps"):
        return None
    estimator = pipeline[-1]
    estimator = getattr(estimator, "estimator_", estimator)  # FixedThresholdClassifier wraps the fitted model
    scores = hasattr(estimator, "regressor_")  # ridge_normal: coefficients of the target's normal scores
    estimator = getattr(estimator, "regressor_", estimator)
    if not hasattr(estimator, "coef_"):
        return None
    coef = np.atleast_2d(estimator.coef_)
    names = _feature_names(pipeline[:-1])
    classes = [str(c) for c in card.classes]
    target = f"normal scores of {card.target}" if scores else card.target
    outputs = [target] if card.task == "regression" else (classes[1:] if coef.shape[0] == 1 else classes)
    order = np.argsort(-np.abs(coef).max(axis=0), kind="stable")
    return {"outputs": outputs, "features": [{"feature": str(names[j]), "values": coef[:, j]} for j in order]}

