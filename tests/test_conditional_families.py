"""Families searched only where the table calls for them: ``hgb_target`` (gradient boosting on text columns
encoded by the target, where a text column has many values) and ``ridge_log`` (ridge on log(target), where the
target is skewed)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.preprocessing import TargetEncoder

import mlkiln
from mlkiln.pipeline import (CODE_ROWS_PER_VALUE, CODE_VALUES, SKEWED_TARGET, TARGET_ENCODED_VALUES, build_pipeline,
                             code_columns)


def test_searched_on_many_valued_text_and_learns_the_teams(league_run, league_csv):
    board = league_run.leaderboard.set_index("family")
    assert board.loc["hgb_target", "status"] == "ok"
    # better than the class shares alone: the encoded team names carry the signal
    y = pd.read_csv(league_csv)["result"]
    prior = log_loss(y, np.tile(y.value_counts(normalize=True).sort_index().to_numpy(), (len(y), 1)))
    assert board.loc["hgb_target", "cv_mean"] < prior - 0.05


def test_number_ids_are_encoded_by_the_target_too(league_run, league_csv):
    # the referees' ids are whole numbers of 60 values, 20+ rows each, their target means far from smooth in the
    # number: encoded by the target beside the number; the round (34 values) is not
    assert league_run.card.model.codes == ("referee",)
    data = pd.read_csv(league_csv)
    y = data["result"]
    kinds = {"home": "categorical", "away": "categorical", "round": "numeric", "referee": "numeric"}
    assert code_columns(data, y, kinds) == ("referee",)
    assert code_columns(data.assign(referee=data["referee"] + 0.5), y, kinds) == ()  # not whole numbers
    assert code_columns(data.head(CODE_VALUES * CODE_ROWS_PER_VALUE - 1), y, kinds) == ()  # too few rows per value
    pipe = build_pipeline("classification", "hgb_target", kinds, n_classes=3, codes=("referee",))
    blocks = {name: columns for name, _, columns in pipe.named_steps["prep"].transformers}
    assert blocks["numeric"] == ["round", "referee"] and blocks["codes"] == ["referee"]
    # the referees' leaning, reachable through their target means: the encoded family scores better than without
    X, y = data.drop(columns="result"), data["result"]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = [cross_val_score(build_pipeline("classification", "hgb_target", kinds, n_classes=3, codes=codes,
                                             params={"max_iter": 60, "early_stopping": False, "learning_rate": 0.05}),
                              X, y, cv=cv, scoring="neg_log_loss").mean() for codes in ((), ("referee",))]
    assert scores[1] > scores[0] + 0.005


def test_a_whole_number_smooth_in_its_value_stays_a_number():
    # an age of 73 values whose effect is a curve, beside a shop id of 80 values whose effect is random
    rng = np.random.default_rng(3)
    age, shop = rng.integers(18, 91, 4000), rng.integers(0, 80, 4000)
    effect = rng.normal(size=80)
    y = pd.Series(0.002 * (age - 50.0) ** 2 + effect[shop] + rng.normal(size=4000))
    X = pd.DataFrame({"age": age, "shop": 5000 + shop})
    assert code_columns(X, y, {"age": "numeric", "shop": "numeric"}) == ("shop",)
    # the same for classes: above the median or not
    assert code_columns(X, y > y.median(), {"age": "numeric", "shop": "numeric"}) == ("shop",)


def test_a_mostly_missing_number_is_binned_on_its_values():
    # 90 % missing, its effect a smooth wave of the value: binned with the missing rows, its values had 1.5 of the
    # 16 bins, the wave looked like noise around them, and the column passed as a code (movies' budget)
    rng = np.random.default_rng(4)
    value, present = rng.integers(0, 100, 40_000).astype(float), rng.random(40_000) < 0.1
    y = pd.Series(np.where(present, np.sin(value / 100 * 4 * np.pi), 0.0) + rng.normal(scale=0.5, size=40_000))
    assert code_columns(pd.DataFrame({"budget": np.where(present, value, np.nan)}), y, {"budget": "numeric"}) == ()
    # the same values as a shop id, its effect random per value: a code, missing rows or not
    effect = rng.normal(size=100)
    y = pd.Series(np.where(present, effect[value.astype(int)], 0.0) + rng.normal(scale=0.5, size=40_000))
    assert code_columns(pd.DataFrame({"shop": np.where(present, value, np.nan)}), y, {"shop": "numeric"}) == ("shop",)


def test_the_bundle_encodes_by_target_and_scores_compiled(league_bundle, league_csv):
    model = mlkiln.load(league_bundle)  # the audited skops file: TargetEncoder and its folds are allowed
    pipes = (list(model.pipeline.estimators_) if model.card.model.family == "ensemble"
             else [model.pipeline])
    encoders = [p.named_steps["prep"].named_transformers_["categorical"] for p in pipes]
    if "hgb_target" in {m.family for m in model.card.model.members} | {model.card.model.family}:
        assert any(isinstance(e, TargetEncoder) for e in encoders)
        # the numbered referees, encoded by the model's target-encoding family: said in the report and its JSON
        assert json.loads((Path(league_bundle) / "report.json").read_text())["summary"]["codes"] == ["referee"]
        assert "look like ids or codes" in (Path(league_bundle) / "report.html").read_text()
    assert model.predictor.compiled
    X = model.prepare(pd.read_csv(league_csv).head(300))
    np.testing.assert_allclose(model.predictor.score(X)[1], model.pipeline.predict_proba(X), rtol=1e-9, atol=0)


def test_left_out_where_the_table_does_not_call_for_them_unless_named(ensemble_csv):
    data = pd.read_csv(ensemble_csv).head(600)  # diamonds: at most 8 values in a text column
    assert abs(data["depth"].skew()) < SKEWED_TARGET < data["price"].skew()
    board = mlkiln.train(data, target="price", models=None, trials=1).leaderboard.set_index("family")
    assert board.loc["hgb_target", "status"] == "left out"
    assert f"{TARGET_ENCODED_VALUES} or more values" in board.loc["hgb_target", "error"]
    assert board.loc["ridge_normal", "status"] == "ok"  # prices: skewed
    symmetric = mlkiln.train(data, target="depth", models=["ridge", "ridge_normal"], trials=1)
    assert symmetric.leaderboard.set_index("family").loc["ridge_normal", "status"] == "ok"  # named: searched anyway
    unnamed = mlkiln.train(data.drop(columns="price"), target="depth", trials=1, models=None)
    assert "skewness is within" in unnamed.leaderboard.set_index("family").loc["ridge_normal", "error"]
    named = mlkiln.train(data, target="price", models=["hgb_target"], trials=1)
    assert named.card.model.family == "hgb_target" and named.leaderboard["status"].tolist() == ["ok"]


def test_ridge_normal_fits_the_normal_scores_and_stays_within_the_target(ensemble_csv):
    data = pd.read_csv(ensemble_csv)
    run = mlkiln.train(data, target="price", models=["ridge_normal"], trials=1)
    assert run.card.model.family == "ridge_normal"
    X, y = run.model.prepare(data), data["price"]
    refit = clone(run.pipeline).fit(X, y)
    prep, alpha = refit.named_steps["prep"], refit.named_steps["model"].regressor.alpha
    # independently: the normal scores of the target through its empirical CDF, least squares on them, back
    ranks = np.interp(y, np.sort(y), np.linspace(0, 1, len(y)))
    scores = norm.ppf(np.clip(ranks, 1e-7, 1 - 1e-7))
    inner = Ridge(alpha=alpha).fit(prep.transform(X), scores)
    ours = norm.cdf(inner.predict(prep.transform(X)))
    back = np.interp(ours, np.linspace(0, 1, len(y)), np.sort(y))
    assert np.corrcoef(refit.predict(X), back)[0, 1] > 0.999
    # bounded by the training target, where a linear model of log(price) is not
    far = X.head(50).assign(carat=X["carat"].max() * 3, x=X["x"].max() * 3)
    assert refit.predict(far).max() <= y.max() and run.model.predict(far).max() <= y.max()
    # the compiled predictor (the folded linear model mapped back through the scores) equals scikit-learn
    np.testing.assert_allclose(run.model.predict(data.head(200)), run.pipeline.predict(X.head(200)), rtol=1e-9)
    assert run.model.predictor.compiled
    one = run.model.predict_record(data.drop(columns="price").iloc[0].to_dict())
    assert one["prediction"] == pytest.approx(run.pipeline.predict(X.head(1))[0], rel=1e-9)
