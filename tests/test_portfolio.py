"""The portfolio search: a family's ordered configurations, tried best-first within --trials and --budget."""

import pytest
import numpy as np
from common import cli
from sklearn.base import clone
from sklearn.model_selection import KFold, train_test_split
from threadpoolctl import threadpool_limits
from sklearn.linear_model import Ridge

import mlkiln
from mlkiln.options import FAMILIES, SEARCHES
from mlkiln.pipeline import REGISTRY, Family, bag_member, build_pipeline, register
from mlkiln.tuning import candidates_for, search_strategy

HGB = REGISTRY["hgb"].portfolio


def configuration(params: dict) -> dict:
    """A searched candidate's portfolio entry: its parameters less the number of trees the folds chose."""
    return {k: v for k, v in params.items() if k not in ("max_iter", "early_stopping")}


@pytest.fixture(scope="module")
def small(diamonds):
    return diamonds.head(600)


def test_auto_tries_the_portfolio_of_the_families_that_have_one():
    assert "portfolio" in SEARCHES and len(HGB) >= 2
    for family in FAMILIES["regression"]:
        has = bool(REGISTRY[family].portfolio)
        assert search_strategy(family) == ("portfolio" if has else
                                           "halving" if REGISTRY[family].cost == "expensive" else "grid")
    assert search_strategy("hgb") == "portfolio"
    # grid, random and halving still mean themselves; a portfolio asked of a family without one is auto's choice
    assert [search_strategy("hgb", s) for s in ("grid", "random", "halving")] == ["grid", "random", "halving"]
    assert search_strategy("ridge", "portfolio") == "grid"


def test_trials_take_the_first_configurations_in_order_the_same_every_time():
    every = candidates_for("regression", "hgb", "portfolio", 0, 5000)
    assert [{k.removeprefix("model__"): v for k, v in c.items()} for c in every] == list(HGB)
    first = candidates_for("regression", "hgb", "portfolio", 0, 5000, trials=2)
    assert first == every[:2]
    assert candidates_for("regression", "hgb", "portfolio", 7, 5000, trials=2) == first  # the seed draws nothing
    # a one-parameter grid from its middle out: ridge's alpha 1 (of 1e-3 .. 1e3), then 10 and 0.1; not a draw
    ridge = [c["model__alpha"] for c in candidates_for("regression", "ridge", "grid", 0, 5000, trials=3)]
    assert ridge == [1.0, 10.0, 0.1]
    assert candidates_for("regression", "ridge", "grid", 7, 5000, trials=1) == [{"model__alpha": 1.0}]


def test_cli_trials_search_the_first_configurations_and_the_same_seed_gives_the_same_model(small, tmp_path):
    data = tmp_path / "d.csv"
    small.to_csv(data, index=False)
    result = cli("train", data, "--target", "price", "--models", "hgb", "--search", "portfolio", "--trials", "2",
                 "--seed", "3", "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert "2 candidates, portfolio" in result.stderr
    card = mlkiln.load(tmp_path / "m").card
    # each with the number of trees the folds chose, which the final fit grows
    searched = [c["params"] for c in card.cv_results["hgb"]]
    assert [configuration(p) for p in searched] == [configuration(h) for h in HGB[:2]]
    # at most the count a configuration fixes where the folds do not choose it
    assert all(p["early_stopping"] is False and 1 <= p["max_iter"] <= h.get("max_iter", 1000)
               for p, h in zip(searched, HGB))
    assert card.model.trees == card.model.params["max_iter"]
    again = mlkiln.train(small, target="price", models=["hgb"], trials=2, seed=3)  # auto: the portfolio too
    assert again.card.cv_results == card.cv_results and again.card.model == card.model


def test_a_budget_tries_the_portfolio_best_first(small):
    # nothing fits in no time: only the first batch runs, one candidate on one core, the portfolio's first
    run = mlkiln.train(small, target="price", models=["hgb"], budget=1e-6, n_jobs=1)
    [row] = run.card.leaderboard
    assert row.search == "portfolio" and row.status == "partial"
    assert [configuration(c["params"]) for c in run.card.cv_results["hgb"]] == [configuration(HGB[0])]
    assert configuration(run.card.model.params) == configuration(HGB[0])


def test_the_folds_choose_one_number_of_trees_the_best_on_their_mean_loss(small):
    """Recomputed with plain scikit-learn: the CV score at the chosen count, and no neighbouring count better."""
    run = mlkiln.train(small, target="price", models=["hgb"], trials=1, seed=2)
    card = run.card
    [searched] = card.cv_results["hgb"]
    count = searched["params"]["max_iter"]
    X, y = mlkiln.Model(run.pipeline, card).prepare(small), small["price"].astype(float)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=card.split.test_size, random_state=card.split.seed)
    folds = list(KFold(card.split.folds, shuffle=True, random_state=card.split.seed).split(X_train))

    def fold_errors(trees):  # each fold's mean squared error and R2 with ``trees`` trees, fitted without stopping
        pipe = build_pipeline("regression", "hgb", card.schema.kinds, {**searched["params"], "max_iter": trees},
                              card.split.seed)
        out = []
        for fit, val in folds:
            pred = clone(pipe).fit(X_train.iloc[fit], y_train.iloc[fit]).predict(X_train.iloc[val])
            truth = y_train.iloc[val].to_numpy()
            out.append((np.mean((truth - pred) ** 2), 1 - np.sum((truth - pred) ** 2) / np.sum((truth - truth.mean()) ** 2)))
        return np.array(out)

    with threadpool_limits(1):
        at, fewer, more = fold_errors(count), fold_errors(count - 1), fold_errors(count + 1)
    assert searched["mean"] == pytest.approx(at[:, 1].mean(), rel=1e-9)  # the card's CV R2: these very fits
    assert at[:, 0].mean() <= fewer[:, 0].mean() and at[:, 0].mean() <= more[:, 0].mean()
    # the final fit, on all the rows where each fold had (k - 1) / k of them, grows k / (k - 1) times that many
    grown = round(count * card.split.folds / (card.split.folds - 1))
    assert card.model.params["max_iter"] == card.model.trees == grown > count
    bagged = run.pipeline.named_steps["model"].named_estimators_  # --trials bags it: each fit grows as many
    fits = [bagged["refit"], *bagged["bagged"].estimators_]
    assert [bag_member(fit).n_iter_ for fit in fits] == [grown] * (1 + card.model.bagged)


@pytest.fixture
def portfolio_family():
    register(Family("ridge_portfolio", ("regression",), lambda task, seed, n_classes=2: Ridge(), encoding="onehot",
                    grid={"alpha": [1.0]}, portfolio=({"alpha": 30.0}, {"alpha": 0.3}, {"alpha": 3.0})))
    yield "ridge_portfolio"
    del REGISTRY["ridge_portfolio"]


def test_a_registered_family_with_a_portfolio_is_searched_through_it(small, portfolio_family):
    run = mlkiln.train(small, target="price", models=[portfolio_family], trials=2)
    assert [c["params"] for c in run.card.cv_results[portfolio_family]] == [{"alpha": 30.0}, {"alpha": 0.3}]
    [row] = run.card.leaderboard
    assert row.search == "portfolio" and row.params == {"alpha": 0.3}  # the weaker penalty fits diamonds better
    # the sampled search (any --budget) reads the same list
    budgeted = mlkiln.train(small, target="price", models=[portfolio_family], budget=600)
    assert [c["params"] for c in budgeted.card.cv_results[portfolio_family]] == [
        {"alpha": 30.0}, {"alpha": 0.3}, {"alpha": 3.0}]
