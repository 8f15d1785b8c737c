"""Families searched only where the table calls for them: ``hgb_target`` (gradient boosting on text columns
encoded by the target, where a text column has many values) and ``ridge_log`` (ridge on log(target), where the
target is positive and skewed)."""

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import log_loss
from sklearn.preprocessing import TargetEncoder

import mlkiln
from mlkiln.pipeline import LOG_TARGET_SKEW, TARGET_ENCODED_VALUES


def test_searched_on_many_valued_text_and_learns_the_teams(league_run, league_csv):
    board = league_run.leaderboard.set_index("family")
    assert board.loc["hgb_target", "status"] == "ok"
    # better than the class shares alone: the encoded team names carry the signal
    y = pd.read_csv(league_csv)["result"]
    prior = log_loss(y, np.tile(y.value_counts(normalize=True).sort_index().to_numpy(), (len(y), 1)))
    assert board.loc["hgb_target", "cv_mean"] < prior - 0.05


def test_the_bundle_encodes_by_target_and_scores_compiled(league_bundle, league_csv):
    model = mlkiln.load(league_bundle)  # the audited skops file: TargetEncoder and its folds are allowed
    pipes = (list(model.pipeline.estimators_) if model.card.model.family == "ensemble"
             else [model.pipeline])
    encoders = [p.named_steps["prep"].named_transformers_["categorical"] for p in pipes]
    if "hgb_target" in {m.family for m in model.card.model.members} | {model.card.model.family}:
        assert any(isinstance(e, TargetEncoder) for e in encoders)
    assert model.predictor.compiled
    X = model.prepare(pd.read_csv(league_csv).head(300))
    np.testing.assert_allclose(model.predictor.score(X)[1], model.pipeline.predict_proba(X), rtol=1e-9, atol=0)


def test_left_out_where_the_table_does_not_call_for_them_unless_named(ensemble_csv):
    data = pd.read_csv(ensemble_csv).head(600)  # diamonds: at most 8 values in a text column
    assert data["depth"].skew() < LOG_TARGET_SKEW < data["price"].skew() and data["price"].min() > 0
    board = mlkiln.train(data, target="price", models=None, trials=1).leaderboard.set_index("family")
    assert board.loc["hgb_target", "status"] == "left out"
    assert f"{TARGET_ENCODED_VALUES} or more values" in board.loc["hgb_target", "error"]
    assert board.loc["ridge_log", "status"] == "ok"  # prices: positive, skewed
    symmetric = mlkiln.train(data, target="depth", models=["ridge", "ridge_log"], trials=1)
    assert symmetric.leaderboard.set_index("family").loc["ridge_log", "status"] == "ok"  # named: searched anyway
    unnamed = mlkiln.train(data.drop(columns="price"), target="depth", trials=1, models=None)
    assert "not strictly positive with skewness" in unnamed.leaderboard.set_index("family").loc["ridge_log", "error"]
    named = mlkiln.train(data, target="price", models=["hgb_target"], trials=1)
    assert named.card.model.family == "hgb_target" and named.leaderboard["status"].tolist() == ["ok"]


def test_ridge_log_fits_the_log_and_predicts_its_exp(ensemble_csv):
    data = pd.read_csv(ensemble_csv)
    run = mlkiln.train(data, target="price", models=["ridge_log"], trials=1)
    X, y = run.model.prepare(data), data["price"]
    refit = clone(run.pipeline).fit(X, y)
    prep = refit.named_steps["prep"]
    alpha = refit.named_steps["model"].regressor.alpha
    inner = Ridge(alpha=alpha).fit(prep.transform(X), np.log(y))  # independently: least squares on the log
    np.testing.assert_allclose(refit.predict(X), np.exp(inner.predict(prep.transform(X))), rtol=1e-9)
    assert run.card.model.family == "ridge_log"
    # the compiled predictor (exp of the folded linear model) equals scikit-learn
    np.testing.assert_allclose(run.model.predict(data.head(200)), run.pipeline.predict(X.head(200)), rtol=1e-9)
    assert run.model.predictor.compiled
