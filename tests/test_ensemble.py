"""Ensemble selection and the one table of families: the ensemble's score, its bundle, and a family added by one entry."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from common import ENSEMBLE_ARGS, cli
from sklearn.model_selection import KFold, cross_val_predict, train_test_split
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_limits

import mlkiln
from mlkiln import metrics
from mlkiln.pipeline import REGISTRY, Family, build_pipeline, register
from mlkiln.selection import ENSEMBLE, MAX_MEMBERS, ensemble_selection
from mlkiln.tuning import Predictions


def test_the_ensemble_is_chosen_and_described(ensemble_run):
    card = ensemble_run.card
    board = ensemble_run.leaderboard.set_index("family")
    assert card.model.family == ENSEMBLE and board.loc[ENSEMBLE, "rank"] == 1
    assert board.loc[ENSEMBLE, "cv_mean"] > board.drop(ENSEMBLE)["cv_mean"].max()
    members = card.model.members
    assert 2 <= len(members) <= MAX_MEMBERS and len({m.name for m in members}) == len(members)
    assert [m.weight for m in members] == sorted((m.weight for m in members), reverse=True)
    assert card.model.params == {m.name: round(m.weight / sum(x.weight for x in members), 4) for m in members}
    assert all(m.trees and m.trees < 1000 for m in members if m.family == "hgb")  # early stopping chose them
    assert type(ensemble_run.pipeline).__name__ == card.model.estimator == "VotingRegressor"


def test_ensemble_cv_score_recomputed_independently(ensemble_run, ensemble_csv):
    """Each member's out-of-fold predictions by plain scikit-learn, averaged with the card's weights."""
    card = ensemble_run.card
    model = mlkiln.Model(ensemble_run.pipeline, card)
    frame = pd.read_csv(ensemble_csv)
    X, y = model.prepare(frame), frame["price"].astype(float)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=card.split.test_size, random_state=card.split.seed)
    cv = KFold(card.split.folds, shuffle=True, random_state=card.split.seed)
    k = card.split.folds
    searched = [_searched(m.params, k) for m in card.model.members]
    for m, params in zip(card.model.members, searched):  # each member as its family's search scored it
        assert params in [c["params"] for c in card.cv_results[m.family]], m.name
    with threadpool_limits(1):
        oof = [cross_val_predict(build_pipeline("regression", m.family, card.schema.kinds, params, card.split.seed),
                                 X_train, y_train, cv=cv) for m, params in zip(card.model.members, searched)]
    average = np.average(np.column_stack(oof), axis=1, weights=[m.weight for m in card.model.members])
    scores = [metrics.score("regression", "r2", y_train.iloc[val], average[val]) for _, val in cv.split(X_train)]
    row = next(r for r in card.leaderboard if r.family == ENSEMBLE)
    assert row.cv_mean == pytest.approx(np.mean(scores), rel=1e-6)
    assert card.metrics["validation"]["mean"]["r2"] == pytest.approx(np.mean(scores), rel=1e-6)


def _searched(params: dict, folds: int) -> dict:
    """A member's settings as the folds scored them: the final fit grew a number of trees counted on the folds by
    folds / (folds - 1)."""
    if params.get("early_stopping") is False:
        return {**params, "max_iter": round(params["max_iter"] * (folds - 1) / folds)}
    return params


def test_the_final_fit_grows_the_trees_counted_on_the_folds_with_the_rows(ensemble_run):
    card = ensemble_run.card
    staged = [m for m in card.model.members if m.params.get("early_stopping") is False]
    assert staged, "the fixture's ensemble has a member with trees counted on the folds"
    for m in staged:
        counted = _searched(m.params, card.split.folds)["max_iter"]
        assert m.trees == m.params["max_iter"] == round(counted * card.split.folds / (card.split.folds - 1))


def test_selection_picks_with_replacement_and_ties_to_the_first():
    y = pd.Series([0.0, 1.0, 2.0, 3.0])
    exact = Predictions("a", {}, 1.0, np.array([0, 1, 2, 3], dtype="float32"), None)
    low = Predictions("b", {}, 0.5, np.array([-1, 0, 1, 2], dtype="float32"), None)
    high = Predictions("c", {}, 0.5, np.array([1, 2, 3, 4], dtype="float32"), None)
    scorer = metrics.Scorer("regression", "r2")
    assert ensemble_selection([exact, low, high], y, scorer, None).tolist() == [1, 0, 0]
    # two biased models average to the exact one: both picked, the same number of times
    assert ensemble_selection([low, high], y, scorer, None, rounds=4).tolist() == [1, 1]


def test_no_ensemble_keeps_the_best_single_model(diamonds, tmp_path):
    data = tmp_path / "d.csv"
    diamonds.head(900).to_csv(data, index=False)
    result = cli("train", data, "--target", "price", "--models", "ridge", "hgb", "--trials", "1", "--no-ensemble",
                 "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    card = mlkiln.load(tmp_path / "m").card
    assert card.model.family != ENSEMBLE and not card.tuning.ensemble
    assert ENSEMBLE not in [r.family for r in card.leaderboard]


def test_trials_give_identical_bundles(ensemble_bundle, ensemble_csv, diamonds, tmp_path):
    # the session's ensemble bundle is the first run; the command line gives the second
    result = cli("train", ensemble_csv, *ENSEMBLE_ARGS, "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    a, b = mlkiln.load(ensemble_bundle), mlkiln.load(tmp_path / "b")
    assert a.card.model == b.card.model and a.card.leaderboard[0].family == ENSEMBLE
    np.testing.assert_array_equal(a.predict(diamonds), b.predict(diamonds))
    assert (Path(ensemble_bundle) / "train.py").read_text().split("Made by")[1].split("\n", 1)[1] == \
        (tmp_path / "b" / "train.py").read_text().split("Made by")[1].split("\n", 1)[1]


def test_a_family_is_one_registry_entry(diamonds, tmp_path):
    """A family registered at run time is trained, tuned, ranked, plotted, bundled and loaded: no other edit."""
    register(Family("tree", ("regression",), lambda task, seed, n_classes=2: DecisionTreeRegressor(random_state=seed),
                    grid={"max_depth": [3, 6, 9]}, plotted="max_depth"))
    try:
        run = mlkiln.train(diamonds.head(900), target="price", models=["tree", "ridge"])
        path = run.save(tmp_path / "m")
    finally:
        del REGISTRY["tree"]
    assert [c["params"]["max_depth"] for c in run.card.cv_results["tree"]] == [3, 6, 9]
    assert run.card.tuning.plotted["tree"] == "max_depth"
    assert json.loads((Path(path) / "report.json").read_text())["tuning"]["tree"]["param"] == "max_depth"
    model = mlkiln.load(path)  # the audited skops file
    np.testing.assert_array_equal(model.predict(diamonds), run.predict(diamonds))


def test_forests_are_left_out_where_they_cannot_join_an_ensemble_unless_named(diamonds, monkeypatch):
    from mlkiln import selection

    monkeypatch.setattr(selection, "LARGE_MEMBER_ROWS", 500)  # 720 training rows are "large" here
    board = mlkiln.train(diamonds.head(900), target="price", trials=1).leaderboard.set_index("family")
    assert list(board.loc[["rf", "extra_trees", "hgb_target"], "status"]) == ["left out"] * 3
    assert board.loc["hgb", "status"] == "ok"
    named = mlkiln.train(diamonds.head(900), target="price", models=["ridge", "rf"], trials=1).leaderboard
    assert named.set_index("family").loc["rf", "status"] == "ok"
