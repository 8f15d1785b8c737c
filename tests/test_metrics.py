"""Metrics: the course's worked example, threshold tuning, and agreement with first principles."""

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
