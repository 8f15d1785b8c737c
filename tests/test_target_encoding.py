"""``hgb_target``: gradient boosting on text columns encoded by the target, searched where a column has many values."""

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.preprocessing import TargetEncoder

import mlkiln
from mlkiln.pipeline import TARGET_ENCODED_VALUES


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


def test_left_out_without_many_valued_text_unless_named(ensemble_csv):
    data = pd.read_csv(ensemble_csv).head(600)  # diamonds: at most 8 values in a text column
    board = mlkiln.train(data, target="price", models=None, trials=1).leaderboard.set_index("family")
    assert board.loc["hgb_target", "status"] == "left out"
    assert f"{TARGET_ENCODED_VALUES} or more values" in board.loc["hgb_target", "error"]
    named = mlkiln.train(data, target="price", models=["hgb_target"], trials=1)
    assert named.card.model.family == "hgb_target" and named.leaderboard["status"].tolist() == ["ok"]
