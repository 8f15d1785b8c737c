"""The training workflow from the Python API, on real example data."""

import numpy as np
import pandas as pd
import pytest

import mlkiln
from mlkiln import tuning
from mlkiln.errors import ArgumentError, InputError, MlkilnError
from mlkiln.pipeline import REGISTRY


def test_regression_run(diamonds_run):
    run = diamonds_run
    assert run.card.task == "regression"
    board = run.leaderboard
    assert set(board["family"]) == {"linear", "hgb", "ensemble"}
    assert board["cv_mean"].is_monotonic_decreasing
    assert run.card.model.family == board["family"].iloc[0]
    test = run.metrics["test"]
    assert test["r2"] > 0.95 and test["n"] == 600
    val = run.metrics["validation"]
    # from the kept float32 out-of-fold predictions: the leaderboard's score to float32's precision
    assert val["folds"] == 3 and val["mean"]["r2"] == pytest.approx(board["cv_mean"].iloc[0], rel=1e-6)
    assert run.metrics["train"]["n"] == 2400


def test_linear_regression_alone_is_the_course_method(diamonds):
    run = mlkiln.train(diamonds, target="price", models=["linear"])
    assert run.card.model.estimator == "LinearRegression"
    assert 0.85 < run.metrics["test"]["r2"] < 0.97


def test_l1_logistic_picks_c_with_best_mean_cv_score(failure_run):
    card = failure_run.card
    candidates = card.cv_results["logistic_l1"]
    grid = sorted(REGISTRY["logistic_l1"].grid["C"])
    sign = 1 if card.metric.greater_is_better else -1  # log loss, the default: lower is better
    best = max(candidates, key=lambda c: sign * c["mean"])
    # strongest penalty first, until PATH_PATIENCE values in a row scored below the best
    fitted = [c["params"]["C"] for c in candidates]
    assert fitted == grid[:len(fitted)]
    assert len(fitted) == len(grid) or fitted.index(best["params"]["C"]) == len(fitted) - 1 - tuning.PATH_PATIENCE
    row = next(r.__dict__ for r in card.leaderboard if r.family == "logistic_l1")
    assert row["params"]["C"] == best["params"]["C"]
    assert row["cv_mean"] == pytest.approx(np.mean(best["folds"]))


def test_machine_failure_default_is_not_always_no_failure(failure_run):
    card = failure_run.card
    # log loss picks the model; the threshold is tuned for macro-F1, because failures are rare
    assert card.metric.name == "log_loss" and "rare (3.4% of rows)" in card.metric.why
    assert card.model.threshold_metric == "f1_macro"
    assert set(card.excluded) == {"UDI", "Product ID", "TWF", "HDF", "PWF", "OSF"}
    assert card.dropped_by_user == ("RNF",)
    assert card.data.rows == 10_000 and card.split.n_test == 2_000
    assert [sum(row) for row in card.metrics["test"]["confusion_matrix"]] == [1_932, 68]  # stratified: 339 * 0.2
    test = card.metrics["test"]
    assert test["per_class"]["1"]["recall"] > 0.5
    assert test["f1_macro"] > 0.75
    assert 0.0 < card.model.threshold < 0.5
    # tuned on the folds' probabilities at their number of trees: the final fit grows that many, not more
    for member in card.model.members or [card.model]:
        if member.params.get("early_stopping") is False:
            assert member.params in [c["params"] for c in card.cv_results[member.family]]


def test_threshold_is_applied_by_predict(failure_run, failure_csv):
    frame = pd.read_csv(failure_csv).head(500)
    X = mlkiln.Model(failure_run.pipeline, failure_run.card).prepare(frame)
    proba = failure_run.pipeline.predict_proba(X)
    pred = failure_run.predict(frame)
    expected = np.where(proba[:, 1] >= failure_run.card.model.threshold, 1, 0)
    assert (pred == expected).all()


def test_drop_and_keep(failure_csv):
    run = mlkiln.train(failure_csv, target="Machine failure", models=["logistic_l2"],
                       drop=["Type"], keep=["TWF"])
    used = [c.name for c in run.card.columns]
    assert "Type" not in used and "TWF" in used and "HDF" not in used


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "nope"}, "target column 'nope' not found"),
        ({"target": "price", "task": "clustering"}, "task='clustering': must be one of"),
        ({"target": "price", "models": ["svm"]}, r"models=\['svm'\]: unknown: svm"),
        ({"target": "price", "models": ["logistic_l1"]}, "not regression families: logistic_l1"),
        ({"target": "price", "task": "regression", "models": ["logistic_l1", "ridge"]},
         r"logistic_l1 is a classification family, and the task is regression; choose from .*or let the task be inferred \(auto\)"),
        ({"target": "price", "task": "regression", "models": ["logistic_l1", "svm"]}, r"unknown: svm; choose"),
        ({"target": "price", "metric": "accuracy"}, "metric='accuracy': is not a regression metric"),
        ({"target": "cut", "metric": "f1"}, "metric='f1': needs two classes; use log_loss"),
        ({"target": "price", "folds": 1}, "folds=1: must be a whole number, at least 2"),
        ({"target": "price", "test_size": 1.5}, "test_size=1.5: must be a share of the rows, between 0 and 1"),
        ({"target": "price", "drop": ["price"]}, "cannot drop the target column 'price'"),
        ({"target": "price", "keep": ["carat", "price"]}, "'price' is the target, not a feature to keep"),
    ],
)
def test_bad_arguments_raise_our_error(diamonds, kwargs, message):
    with pytest.raises(InputError, match=message):
        mlkiln.train(diamonds.head(200), **kwargs)


def test_mape_is_refused_for_a_target_of_zeros_and_roc_auc_selects_among_several_classes(diamonds):
    zeros = diamonds.head(300).assign(price=lambda d: d["price"].where(d.index % 3 != 0, 0))
    with pytest.raises(ArgumentError, match=r"metric='mape': is undefined for a target of zeros \(100 of 300 rows\)"):
        mlkiln.train(zeros, target="price", metric="mape", models=["ridge"])
    run = mlkiln.train(diamonds.head(600), target="cut", metric="roc_auc", models=["logistic_l2"], trials=2)
    assert run.card.metric.name == "roc_auc" and len(run.model.classes) == 5
    board = run.leaderboard.set_index("family")
    assert 0.5 < board.loc["logistic_l2", "cv_mean"] <= 1.0  # one class against the rest, averaged


def test_arguments_are_checked_before_the_data_is_read(tmp_path):
    """A bad argument is named even when the data path does not exist: no data is read first."""
    with pytest.raises(ArgumentError, match="folds=1") as info:
        mlkiln.train(tmp_path / "missing.csv", target="y", folds=1)
    assert isinstance(info.value, ValueError) and info.value.param == "folds"


def test_single_class_target_is_refused():
    frame = pd.DataFrame({"x": range(50), "y": ["a"] * 50})
    with pytest.raises(MlkilnError, match="one value .* in every row"):
        mlkiln.train(frame, target="y")


def test_missing_target_rows_are_dropped(diamonds):
    frame = diamonds.head(600).copy()
    frame.loc[:9, "price"] = np.nan
    run = mlkiln.train(frame, target="price", models=["linear"])
    assert run.card.data.rows_dropped_missing_target == 10
    assert run.card.split.n_train + run.card.split.n_test == 590


def test_a_weak_model_s_hint_names_only_set_aside_columns_that_can_hold_a_signal():
    from types import SimpleNamespace

    from mlkiln.workflow import _weak_model_hint

    excluded = {"a": "constant: one value in every row", "b": "nearly empty: 3 value(s) in 1,000 rows, ...",
                "id": "identifier-like: distinct integers, one per row", "leak": "target leakage: ..."}
    table = SimpleNamespace(excluded=excluded, y=pd.Series(["x", "y"] * 50), task="classification")
    assert _weak_model_hint(table) == "; the columns set aside may hold the signal: 'id' (identifier-like), 'leak' " \
                                      "(target leakage)"
    table.excluded = {k: excluded[k] for k in ("a", "b")}
    assert _weak_model_hint(table) == ""
