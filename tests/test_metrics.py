"""Metrics: the course's worked example, threshold tuning, and agreement with first principles."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mlkiln.metrics import best_threshold, classification_metrics, regression_metrics


def _course_example():
    # TP=50, FP=10, FN=5 for the positive class, plus 100 true negatives
    y_true = np.array([1] * 50 + [0] * 10 + [1] * 5 + [0] * 100)
    y_pred = np.array([1] * 50 + [1] * 10 + [0] * 5 + [0] * 100)
    return y_true, y_pred


def test_course_example_precision_recall_f1():
    y_true, y_pred = _course_example()
    m = classification_metrics(y_true, y_pred, classes=[0, 1])
    assert round(m["precision"], 3) == 0.833
    assert round(m["recall"], 3) == 0.909
    assert round(m["f1"], 3) == 0.870
    assert m["confusion_matrix"] == [[100, 10], [5, 50]]


def test_micro_average_pools_counts_over_classes():
    # three classes; micro-averaging pools TP/FP/FN, which for one label per row equals accuracy
    y_true = np.array(["a", "a", "b", "b", "c", "c", "c"])
    y_pred = np.array(["a", "b", "b", "b", "c", "a", "c"])
    m = classification_metrics(y_true, y_pred)
    assert m["precision_micro"] == pytest.approx(5 / 7)
    assert m["f1_micro"] == pytest.approx(m["accuracy"])
    assert m["per_class"]["a"]["precision"] == pytest.approx(1 / 2)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["f1_macro"] == pytest.approx(np.mean([m["per_class"][c]["f1"] for c in "abc"]))


def test_regression_metrics_from_definitions():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.5, 2.0, 3.0, 9.0])
    m = regression_metrics(y, p)
    err = p - y
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert m["r2"] == pytest.approx(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2))
    assert m["mape"] == pytest.approx(np.mean(np.abs(err) / y))


def test_mape_left_out_when_target_has_zeros():
    assert regression_metrics([0.0, 1.0], [0.5, 1.0])["mape"] is None


@pytest.mark.parametrize("metric", ["f1", "f1_macro"])
def test_best_threshold_matches_brute_force(metric):
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.1).astype(int)
    score = np.clip(0.3 * y + rng.random(500) * 0.8, 0, 1).round(2)  # ties on purpose
    threshold, value = best_threshold(y, score, 1, metric)
    average = "binary" if metric == "f1" else "macro"
    brute = max(f1_score(y, (score >= t).astype(int), average=average) for t in np.unique(score))
    assert value == pytest.approx(brute)
    assert f1_score(y, (score >= threshold).astype(int), average=average) == pytest.approx(brute)


def _sklearn_metrics(y_true, y_pred, proba, classes):
    """The oracle: scikit-learn's own functions, one call per number."""
    from sklearn import metrics as skm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"accuracy": skm.accuracy_score(y_true, y_pred),
               "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
               "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=classes).tolist()}
        for average in ("micro", "macro", "weighted", None):
            p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=classes, average=average,
                                                             zero_division=0)
            if average is None:
                out["per_class"] = {str(c): {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
                                    for i, c in enumerate(classes)}
            else:
                out.update({f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f})
        if proba is not None:
            clipped = np.clip(proba, 1e-15, 1)  # mlkiln's stated clipping, then scikit-learn's log loss
            out["log_loss"] = skm.log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=classes)
            if len(classes) == 2:
                out["roc_auc"] = skm.roc_auc_score(y_true == classes[1], proba[:, 1])
                out["average_precision"] = skm.average_precision_score(y_true == classes[1], proba[:, 1])
            elif set(y_true) == set(classes):  # one-vs-rest needs every class present
                out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
    return out


@pytest.mark.parametrize("case", ["binary-int", "binary-text", "three-text", "bool", "absent-class", "unseen-label"])
def test_label_metrics_equal_sklearn(case):
    """Every label metric and the log loss equal scikit-learn's on random labels, edge cases included."""
    rng = np.random.default_rng(len(case))
    n = 400
    labels = {"binary-int": [0, 1], "binary-text": ["no", "yes"], "three-text": ["a", "b", "c"],
              "bool": [False, True], "absent-class": ["a", "b", "c", "d"], "unseen-label": ["a", "b", "c"]}[case]
    drawn = labels[:3] if case == "absent-class" else labels  # class "d" is never true nor predicted
    y_true = np.array(rng.choice(np.array(drawn, dtype=object), n), dtype=object)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.choice(np.array(drawn, dtype=object), n))
    if case == "unseen-label":  # new data can hold a label the model never learned
        y_true[:25] = "z"
    if isinstance(labels[0], (bool, int)):
        y_true, y_pred = y_true.astype(type(labels[0])), y_pred.astype(type(labels[0]))
    proba = rng.dirichlet(np.ones(len(labels)), n)
    proba[:3] = np.eye(len(labels))[-1]  # a zero probability for the true class: clipped, not infinite
    if case == "unseen-label":  # evaluation refuses such rows before probabilities are scored
        proba = None
    ours = classification_metrics(y_true, y_pred, proba, labels)
    oracle = _sklearn_metrics(y_true, y_pred, proba, labels)
    assert set(ours) - {"n", "labels", "precision", "recall", "f1"} == set(oracle)
    for key, value in oracle.items():
        if key == "per_class":
            for c, row in value.items():
                assert ours["per_class"][c] == pytest.approx(row), (case, c)
        elif key == "confusion_matrix":
            assert ours[key] == value
        else:
            assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-15), (case, key)


def test_r2_is_scikit_learns_without_its_checks():
    from sklearn.metrics import r2_score

    from mlkiln.metrics import r2

    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 1e6):
        truth = rng.normal(size=50) * scale
        for pred in (truth + rng.normal(size=50) * scale, np.full(50, truth.mean()), -truth):
            assert r2(truth, pred) == pytest.approx(r2_score(truth, pred), abs=1e-12)
    assert r2([2.0, 2.0], [2.0, 2.0]) == r2_score([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert r2([2.0, 2.0], [2.0, 3.0]) == r2_score([2.0, 2.0], [2.0, 3.0]) == 0.0
