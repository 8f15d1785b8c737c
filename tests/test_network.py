"""The regression network (``mlp``): what it learns, its compiled form, small tables and where it is left out."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import mlkiln
from mlkiln import pipeline


def _relu_forward(network, design: np.ndarray) -> np.ndarray:
    """The network's output written out: ReLU layers, an identity output (the standardised target)."""
    out = design
    for i, (weights, bias) in enumerate(zip(network.coefs_, network.intercepts_)):
        out = out @ weights + bias
        if i < len(network.coefs_) - 1:
            out = np.maximum(out, 0.0)
    return out[:, 0]


@pytest.fixture(scope="module")
def network_run(ensemble_csv):
    data = pd.read_csv(ensemble_csv)
    return data, mlkiln.train(data, target="price", models=["mlp", "linear"], ensemble=False)


def test_learns_what_least_squares_cannot_and_is_computed_as_written(network_run, tmp_path):
    data, run = network_run
    board = run.leaderboard.set_index("family")
    # price grows faster than linearly in carat: the network's CV R2 beats the course's least squares
    assert board.loc["mlp", "cv_mean"] > board.loc["linear", "cv_mean"] + 0.02
    assert run.card.model.family == "mlp"
    X = run.model.prepare(data)
    fitted = run.pipeline.named_steps["model"]
    design = run.pipeline.named_steps["prep"].transform(X)
    target = fitted.transformer_
    by_hand = _relu_forward(fitted.regressor_, np.asarray(design)) * target.scale_[0] + target.mean_[0]
    np.testing.assert_allclose(run.pipeline.predict(X), by_hand, rtol=1e-9)
    # the compiled predictor folds the first layer per column: equal to scikit-learn, a batch and one record
    assert run.model.predictor.compiled
    np.testing.assert_allclose(run.model.predict(data.head(300)), run.pipeline.predict(X.head(300)), rtol=1e-9)
    one = run.model.predict_record(data.drop(columns="price").iloc[7].to_dict())
    assert one["prediction"] == pytest.approx(run.pipeline.predict(X.iloc[7:8])[0], rel=1e-9)
    # the audited model.skops loads it (the solver's state it keeps is on the allow-list)
    loaded = mlkiln.load(run.save(tmp_path / "bundle"))
    np.testing.assert_array_equal(loaded.predict(data.head(50)), run.model.predict(data.head(50)))


def test_a_fit_is_reproducible(network_run):
    data, run = network_run
    X = run.model.prepare(data)
    first, second = (clone(run.pipeline).fit(X, data["price"]) for _ in range(2))
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    assert not np.array_equal(first.predict(X), run.pipeline.predict(X))  # the bundle's saw the training rows only


def test_a_tiny_table_fits_without_holding_rows_out(ensemble_csv):
    data = pd.read_csv(ensemble_csv).head(24)  # 16 training rows: 10 % of a fold's is one row
    run = mlkiln.train(data, target="price", models=["mlp"], ensemble=False)
    assert run.leaderboard["status"].tolist() == ["ok"]
    params = run.card.model.params
    assert params["regressor__early_stopping"] is False and params["regressor__max_iter"] == pipeline.MLP_SMALL_PASSES


def test_left_out_on_many_rows_unless_named(ensemble_csv, monkeypatch):
    monkeypatch.setattr(pipeline, "MLP_MOST_ROWS", 300)
    data = pd.read_csv(ensemble_csv).head(500)  # 400 training rows
    board = mlkiln.train(data, target="price", models=None, trials=1, ensemble=False).leaderboard.set_index("family")
    assert board.loc["mlp", "status"] == "left out" and "more than 300 training rows" in board.loc["mlp", "error"]
    named = mlkiln.train(data, target="price", models=["mlp"], trials=1, ensemble=False)
    assert named.leaderboard["status"].tolist() == ["ok"]
