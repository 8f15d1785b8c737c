"""The portfolio search: a family's ordered configurations, tried best-first within --trials and --budget."""

import pytest
from common import cli
from sklearn.linear_model import Ridge

import mlkiln
from mlkiln.options import FAMILIES, SEARCHES
from mlkiln.pipeline import REGISTRY, Family, register
from mlkiln.tuning import candidates_for, search_strategy

HGB = REGISTRY["hgb"].portfolio


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


def test_cli_trials_search_the_first_configurations_and_the_same_seed_gives_the_same_model(small, tmp_path):
    data = tmp_path / "d.csv"
    small.to_csv(data, index=False)
    result = cli("train", data, "--target", "price", "--models", "hgb", "--search", "portfolio", "--trials", "2",
                 "--seed", "3", "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert "2 candidates, portfolio" in result.stderr
    card = mlkiln.load(tmp_path / "m").card
    assert [c["params"] for c in card.cv_results["hgb"]] == list(HGB[:2])
    again = mlkiln.train(small, target="price", models=["hgb"], trials=2, seed=3)  # auto: the portfolio too
    assert again.card.cv_results == card.cv_results and again.card.model == card.model


def test_a_budget_tries_the_portfolio_best_first(small):
    # nothing fits in no time: only the first batch runs, one candidate on one core, the portfolio's first
    run = mlkiln.train(small, target="price", models=["hgb"], budget=1e-6, n_jobs=1)
    [row] = run.card.leaderboard
    assert row.search == "portfolio" and row.status == "partial"
    assert [c["params"] for c in run.card.cv_results["hgb"]] == [HGB[0]]
    assert run.card.model.params == HGB[0]


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
