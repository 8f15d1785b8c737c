"""Metrics: the full set per split, selection scorers, and decision-threshold tuning.

One place computes every number that the terminal summary, ``card.json`` and
the report show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .options import SELECTION_METRICS

#: a minority class below this share of the rows makes the default metric macro-F1
RARE_CLASS_SHARE = 0.2

#: metrics whose value depends on the decision threshold, so tuning it helps
THRESHOLD_METRICS = ("f1", "f1_macro", "f1_weighted", "balanced_accuracy", "accuracy")


def default_metric(task: str, y: pd.Series) -> tuple[str, str]:
    """Pick the selection metric and say why."""
    if task == "regression":
        return "r2", "R2 is the default for regression"
    why = ("log loss, the default for classification: it scores the predicted probabilities, from which every "
           "label and curve follows, and its cross-validated estimate is steadier than accuracy's or F1's")
    shares = y.value_counts(normalize=True)
    if threshold_metric(task, "log_loss", y):
        why += (f"; class {str(shares.idxmin())!r} is rare ({shares.min():.1%} of rows), so the decision threshold "
                "is tuned for macro-F1")
    return "log_loss", why


#: metrics of the probabilities alone: the labels' cut-off is a choice of its own
PROBABILITY_METRICS = ("log_loss", "roc_auc", "average_precision")

#: a model whose cross-validated log loss is within this share of the class shares' own (a constant prediction),
#: or whose R2 is below it, has learned next to nothing from the columns it was given
BASELINE_MARGIN = 0.01


def no_better_than_baseline(task: str, validation_mean: dict, y: pd.Series) -> str | None:
    """Why the model's cross-validated score is no better than a constant prediction's, or None if it is.

    A table whose signal sits in a column that was set aside (free text, an
    identifier) or whose class codes were read as numbers still trains and
    writes a bundle; this says the model is worth no more than the mean.
    """
    if task == "regression":
        r2 = validation_mean.get("r2")
        if r2 is None or not r2 < BASELINE_MARGIN:
            return None
        return f"the model is no better than predicting the mean: cross-validated R2 {r2:.4f}"
    loss = validation_mean.get("log_loss")
    shares = y.value_counts(normalize=True).to_numpy()
    constant = float(-(shares * np.log(shares)).sum())
    if loss is None or not loss > (1 - BASELINE_MARGIN) * constant:
        return None
    return (f"the model is no better than predicting the class shares: cross-validated log loss {loss:.4f}, "
            f"the shares' own {constant:.4f}")


def one_label(task: str, classes, *labels: np.ndarray) -> str | None:
    """Why the model's labels say nothing, or None: one class for every row of ``labels`` (the out-of-fold and
    the test predictions). Its probabilities may still rank the rows (a log loss a little below the shares'), so
    :func:`no_better_than_baseline` need not fire: 63 riots' four types, every one labelled 'Homicide'."""
    if task != "classification" or len(classes) < 2:
        return None
    seen = pd.unique(np.concatenate([np.asarray(part, dtype=object) for part in labels if part is not None]))
    if len(seen) != 1:
        return None
    return (f"the model labels every row {seen[0]!r} (out-of-fold and test): no other class is ever predicted; "
            "its probabilities may still rank the rows (report), or give it more rows or columns")


def threshold_metric(task: str, metric: str, y: pd.Series) -> str | None:
    """The metric the decision threshold is tuned for, or None: predict the likelier class.

    Only for two classes with a rare one (< :data:`RARE_CLASS_SHARE`): the
    selection metric itself when the cut-off changes it (F1-type, balanced
    accuracy), macro-F1 when it scores the probabilities alone (log loss, the
    AUCs), where a cut-off of 0.5 would seldom predict the rare class.
    """
    if task != "classification":
        return None
    shares = y.value_counts(normalize=True)
    if len(shares) != 2 or shares.min() >= RARE_CLASS_SHARE:
        return None
    if metric in PROBABILITY_METRICS:
        return "f1_macro"
    return metric if metric in THRESHOLD_METRICS and metric != "accuracy" else None


def regression_metrics(y_true, y_pred) -> dict:
    """RMSE, MAE, R2 and MAPE (MAPE is left out when the target has zeros)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    out = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": r2(y_true, y_pred) if len(y_true) > 1 else float("nan"),
        "n": int(len(y_true)),
    }
    out["mape"] = float(skm.mean_absolute_percentage_error(y_true, y_pred)) if np.all(y_true != 0) else None
    return out


def classification_metrics(y_true, y_pred, proba=None, classes=None) -> dict:
    """Accuracy, precision/recall/F1 (micro, macro, weighted, per class), AUCs, log loss.

    For two classes, ``precision``, ``recall`` and ``f1`` are those of the
    positive class (the second of ``classes``), as in the course's formulas.
    Every label metric comes from one count of the rows (:class:`_Counts`),
    with scikit-learn's definitions and ``zero_division=0``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred))
    counts = _Counts(y_true, y_pred, classes)
    out: dict = {"n": int(len(y_true)), "accuracy": counts.accuracy(), "balanced_accuracy": counts.balanced_accuracy()}
    for average in ("micro", "macro", "weighted"):
        p, r, f = counts.averaged(average)
        out[f"precision_{average}"], out[f"recall_{average}"], out[f"f1_{average}"] = p, r, f
    p, r, f = counts.per_class()
    out["per_class"] = {
        str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(counts.true_sum[i])}
        for i, c in enumerate(classes)
    }
    if len(classes) == 2:
        positive = str(classes[1])
        out.update({k: out["per_class"][positive][k] for k in ("precision", "recall", "f1")})
    out["confusion_matrix"] = counts.matrix.tolist()
    out["labels"] = [str(c) for c in classes]
    if proba is not None:
        out.update(probability_metrics(y_true, np.asarray(proba), classes))
    return out


def _codes(values: np.ndarray, classes: list) -> np.ndarray:
    """Each value's position in ``classes``, -1 for any other value.

    By hashing (pandas), where scikit-learn's metrics sort the labels on
    every call: 4.2 s against 0.1 s for the full set on 100,000 text labels.
    """
    return pd.Index(classes).get_indexer(values).astype(np.int64, copy=False)


def _ratio(numerator, denominator):
    """``numerator / denominator``, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    numerator, denominator = np.asarray(numerator, dtype="float64"), np.asarray(denominator, dtype="float64")
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)


class _Counts:
    """The counts every label metric is made of, from one pass over the rows.

    As scikit-learn with ``labels=classes``: a class's predictions count
    over every row, its true rows and hits only over rows whose label is a
    class, and the confusion matrix drops rows whose true or predicted label
    is not one. A true label outside ``classes`` (new data) still counts as a
    miss for accuracy and as a class of its own for balanced accuracy.
    """

    def __init__(self, y_true: np.ndarray, y_pred: np.ndarray, classes: list):
        k = len(classes)
        t, p = _codes(y_true, classes), _codes(y_pred, classes)
        both = (t >= 0) & (p >= 0)
        self.matrix = np.bincount(t[both] * k + p[both], minlength=k * k).reshape(k, k)
        self.hits = np.diag(self.matrix)
        self.true_sum = np.bincount(t[t >= 0], minlength=k)
        self.pred_sum = np.bincount(p[p >= 0], minlength=k)
        self.n = len(t)
        # rows whose true or predicted label is no class: compared as values (rare: new data, or no classes given)
        other, unknown_true = ~both, t < 0
        self.other_true = y_true[unknown_true]
        self.other_hits = self.other_true == y_pred[unknown_true]
        self.correct = int(self.hits.sum()) + int(np.count_nonzero(y_true[other] == y_pred[other]))

    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def balanced_accuracy(self) -> float:
        """The mean recall over the true labels present (scikit-learn's, without adjustment)."""
        recalls = list(self.hits[self.true_sum > 0] / self.true_sum[self.true_sum > 0])
        if len(self.other_true):
            recalls += list(pd.Series(self.other_hits).groupby(self.other_true).mean())
        return float(np.mean(recalls)) if recalls else 0.0

    def per_class(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Precision, recall and F1 of each class."""
        return (_ratio(self.hits, self.pred_sum), _ratio(self.hits, self.true_sum),
                _ratio(2 * self.hits, self.pred_sum + self.true_sum))

    def averaged(self, average: str) -> tuple[float, float, float]:
        """Precision, recall and F1 averaged over the classes: ``micro``, ``macro`` or ``weighted``."""
        if average == "micro":  # pooled counts
            hits, pred, true = self.hits.sum(), self.pred_sum.sum(), self.true_sum.sum()
            return float(_ratio(hits, pred)), float(_ratio(hits, true)), float(_ratio(2 * hits, pred + true))
        values = self.per_class()
        if average == "macro":
            return tuple(float(v.mean()) if len(v) else 0.0 for v in values)
        total = self.true_sum.sum()
        return tuple(float(v @ self.true_sum / total) if total else 0.0 for v in values)


def r2(y_true, y_pred) -> float:
    """scikit-learn's ``r2_score`` (1 - residual / total sum of squares; a constant target: 1 if predicted
    exactly, else 0) without its input checks, which took 1.4 ms a call: 3,000 calls on a 1,000-column table's
    importances, and one per fold and candidate in the search."""
    y_true, y_pred = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    residual = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def log_loss(y_true, proba, classes) -> float:
    """The mean negative log-probability of each row's true class (columns of ``proba`` in ``classes`` order).

    scikit-learn's value (probabilities clipped to [1e-15, 1], rows summed to
    one, then its clipping to [eps, 1 - eps]), found by hashing the labels
    instead of sorting them; a label outside ``classes`` is scikit-learn's error.
    """
    clipped = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1)
    # rows summing to 1 in float64: an ensemble's float32 out-of-fold average is off by about 1e-7
    clipped /= clipped.sum(axis=1, keepdims=True)
    codes = _codes(np.asarray(y_true), list(classes))
    if (codes < 0).any() or len(codes) == 0:
        return float(skm.log_loss(y_true, clipped, labels=classes))
    eps = np.finfo(np.float64).eps
    return float(-np.mean(np.log(np.clip(clipped[np.arange(len(codes)), codes], eps, 1 - eps))))


def probability_metrics(y_true, proba, classes) -> dict:
    """Log loss, and ROC AUC and PR AUC (binary), which are absent when only one class is present."""
    out = {}
    for metric in PROBABILITY_METRICS:
        value = probability_metric(metric, y_true, proba, classes)
        if value is not None:
            out[metric] = value
    return out


def probability_metric(metric: str, y_true, proba, classes) -> float | None:
    """One of :data:`PROBABILITY_METRICS`; None for the AUCs when they are undefined.

    ROC AUC needs both classes present (every class, for several);
    average precision is for two classes only.
    """
    y_true, proba, classes = np.asarray(y_true), np.asarray(proba), list(classes)
    if metric == "log_loss":
        return log_loss(y_true, proba, classes)
    present = set(pd.unique(y_true))
    if len(present) < 2 or (len(classes) > 2 and (metric != "roc_auc" or present != set(classes))):
        return None
    if len(classes) > 2:
        return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
    positive = y_true == classes[1]
    if metric == "roc_auc":
        return float(skm.roc_auc_score(positive, proba[:, 1]))
    return float(skm.average_precision_score(positive, proba[:, 1]))


def score(task: str, metric: str, y_true, y_pred, proba=None, classes=None) -> float:
    """The value of one selection metric, as :func:`regression_metrics` / :func:`classification_metrics` give it.

    Only that metric is computed: the search asks for one per fold and
    candidate, and the full set (per-class reports, confusion matrix, AUCs)
    would be most of a small table's search.
    """
    if task == "regression" and metric == "r2" and len(y_true) > 1:
        return r2(y_true, y_pred)
    if task == "regression":
        return regression_metrics(y_true, y_pred)[metric]
    y_true = np.asarray(y_true)
    if metric in PROBABILITY_METRICS:
        labels = list(classes) if classes is not None else sorted(set(y_true))
        value = probability_metric(metric, y_true, proba, labels)
        return float("nan") if value is None else value  # an AUC of one class
    y_pred = np.asarray(y_pred)
    labels = list(classes) if classes is not None else sorted(set(y_true) | set(y_pred))
    counts = _Counts(y_true, y_pred, labels)
    if metric == "accuracy":
        return counts.accuracy()
    if metric == "balanced_accuracy":
        return counts.balanced_accuracy()
    if metric in ("f1_macro", "f1_weighted"):
        return counts.averaged(metric[3:])[2]
    return classification_metrics(y_true, y_pred, proba, classes)[metric]


def best_threshold(y_true, positive_proba, positive, metric: str = "f1_macro") -> tuple[float, float]:
    """The probability cut-off that maximises ``metric`` for a binary problem.

    Every distinct predicted probability is tried at once from cumulative
    counts, so this costs one sort however many thresholds there are.
    Returns ``(threshold, metric value)``.
    """
    is_pos = np.asarray(y_true) == positive
    p = np.asarray(positive_proba, dtype="float64")
    order = np.argsort(-p, kind="mergesort")
    p, is_pos = p[order], is_pos[order]
    # predicting positive for the first k rows, k at the end of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]
    tp = np.cumsum(is_pos)[last].astype("float64")
    fp = (last + 1) - tp
    n_pos, n = is_pos.sum(), len(p)
    fn = n_pos - tp
    tn = (n - n_pos) - fp
    values = _binary_metric(metric, tp, fp, fn, tn)
    best = int(np.nanargmax(values))
    # cut half-way to the next lower score, so nearby unseen scores land on the same side
    lower = p[last[best] + 1] if last[best] + 1 < n else 0.0
    threshold = float((p[last[best]] + lower) / 2.0)
    return threshold, float(values[best])


def _binary_metric(metric, tp, fp, fn, tn):
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        f1_neg = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        n_pos, n_neg = tp + fn, tn + fp
        if metric == "f1":
            return f1_pos
        if metric == "f1_macro":
            return (f1_pos + f1_neg) / 2
        if metric == "f1_weighted":
            return (f1_pos * n_pos + f1_neg * n_neg) / (n_pos + n_neg)
        if metric == "balanced_accuracy":
            return (np.nan_to_num(tp / n_pos) + np.nan_to_num(tn / n_neg)) / 2
        if metric == "accuracy":
            return (tp + tn) / (n_pos + n_neg)
    raise ValueError(f"no threshold form for metric {metric!r}")


class Scorer:
    """A picklable scikit-learn scorer for any of mlkiln's selection metrics.

    With ``tune_threshold`` the fold is scored at its best probability cut-off,
    so families are compared as they will be used: with a tuned threshold.
    Lower-is-better metrics are negated, as scikit-learn expects.
    """

    def __init__(self, task: str, metric: str, classes=None, tune_threshold: bool = False):
        self.task, self.metric, self.classes, self.tune_threshold = task, metric, classes, tune_threshold
        self.sign = 1.0 if SELECTION_METRICS[task][metric] else -1.0

    def __call__(self, estimator, X, y) -> float:
        if self.tune_threshold:
            return self.from_predictions(y, None, estimator.predict_proba(X))
        proba = estimator.predict_proba(X) if self.task == "classification" and self.metric in PROBABILITY_METRICS else None
        return self.from_predictions(y, estimator.predict(X), proba)

    def from_predictions(self, y, pred, proba) -> float:
        """The score (greater is better) of predictions ``pred`` and probabilities ``proba`` of ``y``."""
        if self.tune_threshold:
            return best_threshold(y, proba[:, 1], self.classes[1], self.metric)[1]
        return self.sign * score(self.task, self.metric, y, pred, proba, self.classes)


#: rows predicted at a time for the metrics and the report's curves: a linear model's design matrix for them is
#: about 14 MB, where that of 4M training rows at once was 0.8 GB and the run's memory peak
BLOCK_ROWS = 1 << 16
#: the report shuffles each input column for its permutation importance up to this many columns, past which every
#: shuffled copy of every column is scored through the model (columns x columns values: on 3,013 columns of 1,000
#: rows a bagged gradient boosting model's took more than 8 minutes); a linear model's parts are shuffled at any width
IMPORTANCE_MAX_COLUMNS = 500


def count_trees(model) -> int:
    """The trees a fitted model walks for one row (every class's, every member's); 0 for a linear model.

    What scoring a row costs grows with it: the permutation importances bound
    their rows by it (a row through the 5,100 trees of a 10-class boosted
    model costs about 0.16 ms, through a linear model a few microseconds).
    """
    if hasattr(model, "steps"):  # a Pipeline: its model step
        return count_trees(model.steps[-1][1])
    if hasattr(model, "n_trees_per_iteration_"):  # gradient boosting: one tree per class and iteration
        return int(model.n_iter_) * int(model.n_trees_per_iteration_)
    if hasattr(model, "tree_"):
        return 1
    if hasattr(model, "estimators_"):  # forests, voting ensembles (a forest's estimator_ is its unfitted template)
        return sum(count_trees(member) for member in model.estimators_)
    if hasattr(model, "estimator_"):  # FixedThresholdClassifier: the classifier it cuts
        return count_trees(model.estimator_)
    return 0


def predict_in_blocks(pipe, X: pd.DataFrame, task: str, predictor=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(predictions, class probabilities or None)`` of a fitted ``pipe`` for every row of ``X``, in row blocks.

    Each row's prediction depends on that row alone, so the values are
    ``pipe.predict(X)``'s (and ``predict_proba``'s); only the memory is
    bounded, by :data:`BLOCK_ROWS`. With ``predictor`` (the pipeline compiled,
    :class:`mlkiln.compiled.Predictor`), its ``score`` makes them: the same
    values to rounding, without scikit-learn's per-value encoding of text
    (2.8 s against 6.8 s for 4M diamonds rows).
    """
    preds, probas = [], []
    for start in range(0, max(len(X), 1), BLOCK_ROWS):
        block = X.iloc[start:start + BLOCK_ROWS]
        if predictor is not None:
            pred, proba = predictor.score(block)
        else:
            pred, proba = pipe.predict(block), pipe.predict_proba(block) if task == "classification" else None
        preds.append(pred)
        if task == "classification":
            probas.append(proba)
    return np.concatenate(preds), np.concatenate(probas) if probas else None


#: training metrics only show how closely the model fits its own rows: above this many rows a seeded sample
#: of them measures that to the third decimal, where predicting 4M rows through 1,000 trees took as long as the
#: final fit (the test metrics always use every test row)
TRAIN_METRIC_ROWS = 200_000


def train_metric_sample(n_rows: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded sample of :data:`TRAIN_METRIC_ROWS` of ``n_rows`` rows; None: use them all."""
    if n_rows <= TRAIN_METRIC_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, TRAIN_METRIC_ROWS, replace=False))


def evaluate(pipe, X: pd.DataFrame, y: pd.Series, task: str, classes, predictor=None) -> dict:
    """Every metric of a fitted ``pipe`` on one labelled table, from predictions made in row blocks.

    ``predictor``, the pipeline compiled, makes them faster (see :func:`predict_in_blocks`).
    """
    return of_predictions(y, *predict_in_blocks(pipe, X, task, predictor), task, classes)


def of_predictions(y: pd.Series, pred: np.ndarray, proba: np.ndarray | None, task: str, classes) -> dict:
    """Every metric of predictions ``pred`` (and class probabilities ``proba``) of ``y``."""
    if task == "regression":
        return regression_metrics(y, pred)
    return classification_metrics(y, pred, proba, classes)


def fold_metrics(task: str, y: np.ndarray, pred: np.ndarray, proba, fold_of: np.ndarray, classes) -> dict:
    """Mean and std over the validation folds of every scalar metric of out-of-fold predictions."""
    per_fold = []
    for k in np.unique(fold_of):
        rows = fold_of == k
        if task == "regression":
            per_fold.append(regression_metrics(y[rows], pred[rows].astype("float64")))
        else:
            per_fold.append(classification_metrics(y[rows], pred[rows], proba[rows], classes))
    keys = [k for k, v in per_fold[0].items() if isinstance(v, (int, float)) and v is not None and k != "n"]
    table = {k: [f[k] for f in per_fold if f.get(k) is not None] for k in keys}
    return {
        "mean": {k: float(np.mean(v)) for k, v in table.items() if v},
        "std": {k: float(np.std(v)) for k, v in table.items() if v},
        "folds": len(per_fold),
        "n": int(len(y)),
    }
