"""Search strategies, budgets and the thread budget of the tuning step."""

import dataclasses
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from common import cli
from sklearn.model_selection import ParameterGrid
from threadpoolctl import threadpool_info

import mlkiln
from mlkiln import data, tuning
from mlkiln.errors import ArgumentError
from mlkiln.options import FAMILIES
from mlkiln.pipeline import REGISTRY
from mlkiln.pipeline import THREADED_FIT_ROWS
from mlkiln.tuning import Compute, halving_start, search_strategy


def grid_size(family: str) -> int:
    return len(ParameterGrid(REGISTRY[family].space()))


@pytest.fixture(scope="module")
def small(diamonds):
    return diamonds.head(1200)


def test_the_light_list_of_families_is_the_registry():
    from mlkiln.pipeline import family_names

    assert FAMILIES == {task: family_names(task) for task in FAMILIES}
    for family in REGISTRY.values():
        assert set(family.space(random=True)) == set(family.space()), family.name
        assert family.plotted is None or family.plotted in family.space(), family.name
        assert family.cost in ("cheap", "expensive") and family.encoding in ("onehot", "ordinal", "target")


def test_auto_halves_the_expensive_families_only():
    # gradient boosting, which has a portfolio, tries it instead (tests/test_portfolio.py)
    assert [search_strategy(f) for f in FAMILIES["regression"]] == ["grid"] * 4 + ["portfolio"] * 2 + ["halving"] * 3
    assert search_strategy("hgb", "grid") == "grid"


@pytest.fixture(scope="module")
def halving_run(small):
    """ridge and a halving hgb search from 50 rows, every fit counted as long: the run and its log lines."""
    records = []
    handler = logging.Handler(level=logging.INFO)
    handler.emit = records.append
    logger = logging.getLogger("mlkiln")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tuning, "PROGRESS_SECONDS", 0.0)
            patch.setattr(tuning, "HALVING_MIN_ROWS", 50)
            # halving is auto's choice for an expensive family without a portfolio
            patch.setitem(REGISTRY, "hgb", dataclasses.replace(REGISTRY["hgb"], portfolio=()))
            run = mlkiln.train(small, target="price", models=["ridge", "hgb"])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return run, [r.getMessage() for r in records]


def test_halving_keeps_the_candidate_shape_and_picks_from_the_last_round(halving_run):
    card = halving_run[0].card
    candidates = card.cv_results["hgb"]
    assert len(candidates) == grid_size("hgb")
    assert all({"params", "mean", "std", "folds", "n_samples"} <= set(c) for c in candidates)
    last = max(c["n_samples"] for c in candidates)
    assert last > min(c["n_samples"] for c in candidates)
    best = max((c for c in candidates if c["n_samples"] == last), key=lambda c: c["mean"])
    row = next(r for r in card.leaderboard if r.family == "hgb").__dict__
    assert row["params"] == best["params"] and row["search"] == "halving" and row["status"] == "ok"
    assert row["cv_mean"] == pytest.approx(np.mean(best["folds"]))


def test_halving_is_the_full_grid_on_small_tables():
    assert halving_start(3000, 9) == 3000
    assert halving_start(900_000, 9) == 100_000


@pytest.mark.parametrize("search, trials", [("random", 2), ("halving", 3), ("auto", None)])
def test_trials_give_the_same_model_whatever_the_cores(small, search, trials, monkeypatch):
    """The same seed gives the same model, on one core or two: with --trials, and with the default full search."""
    if search == "halving":  # two rounds on 300 rows (three candidates); one round would be the random search again
        monkeypatch.setattr(tuning, "HALVING_MIN_ROWS", 50)
    runs = [mlkiln.train(small.head(300), target="price", models=["ridge", "hgb"], search=search, trials=trials,
                         seed=1, n_jobs=jobs)
            for jobs in (1, 2)]
    assert runs[0].card.model == runs[1].card.model
    assert runs[0].card.cv_results == runs[1].card.cv_results
    sizes = {family: len(c) for family, c in runs[0].card.cv_results.items() if c}
    assert sizes == ({"ridge": trials, "hgb": trials} if trials
                     else {"ridge": grid_size("ridge"), "hgb": len(REGISTRY["hgb"].portfolio)})
    hgb = next(row for row in runs[0].card.leaderboard if row.family == "hgb")
    assert hgb.search == ("halving" if search == "halving" else "random" if trials else "portfolio")
    rows = small.tail(200)
    np.testing.assert_array_equal(runs[0].predict(rows), runs[1].predict(rows))


def test_trials_on_a_small_table_take_the_grid_of_families_halving_would_search(small, caplog):
    """Halving on a small table is one round: with --trials its candidates are grid values (the middle first), as a
    grid search's, not random draws (the network's alpha 0.157 and 0.726 where its grid is 0.01 and 3)."""
    with caplog.at_level(logging.INFO, logger="mlkiln"):
        run = mlkiln.train(small.head(300), target="price", models=["rf", "mlp"], search="halving", trials=2)
    for family in ("rf", "mlp"):
        row = next(r for r in run.card.leaderboard if r.family == family)
        assert row.search == "grid"
        grid = REGISTRY[family].grid
        tried = [c["params"] for c in run.card.cv_results[family]]
        assert len(tried) == 2 and all(p[name] in values for p in tried for name, values in grid.items())
        assert f"{family}: halving would be one round on all 240 rows here: the grid instead" in caplog.text


def test_budget_stops_cleanly_and_lists_what_was_not_reached(small):
    # the search is best-first: gradient boosting's first batch always runs; on a small table each other family's
    # first batch too, estimated near nothing (_Rungs.near_free), and nothing more
    run = mlkiln.train(small, target="price", models=["linear", "ridge", "hgb"], budget=1e-6)
    board = run.leaderboard.set_index("family")
    assert board.loc["hgb", "status"] == "partial" and board.loc["linear", "status"] == "ok"
    assert board.loc["ridge", "status"] == "partial"
    assert grid_size("ridge") - 2 <= board.loc["ridge", "not_reached"] < grid_size("ridge")
    assert run.metrics["test"]["r2"] > 0.8


def test_thread_budget_one_thread_per_worker_all_cores_for_one_fit():
    compute = Compute(n_jobs=2)
    with compute.parallel():
        assert {p["num_threads"] for p in threadpool_info()} == {1}
    compute.cores = 2  # as on a two-core machine (each test worker is given one core)
    with compute.single(THREADED_FIT_ROWS):
        assert {p["num_threads"] for p in threadpool_info()} == {2}
    with compute.single(THREADED_FIT_ROWS - 1):  # a small fit: OpenMP's synchronisation costs more than it saves
        assert {p["num_threads"] for p in threadpool_info()} == {1}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"search": "bayes"}, "search='bayes': must be one of"),
        ({"budget": 0}, "budget=0: must be a positive number"),
        ({"trials": 0}, "trials=0: must be a whole number, at least 1"),
        ({"n_jobs": 0}, "n_jobs=0: must be a whole number, at least 1"),
    ],
)
def test_bad_search_options_raise_our_error(small, kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        mlkiln.train(small, target="price", **kwargs)


def test_cli_search_options(tmp_path, diamonds):
    data = tmp_path / "d.csv"
    diamonds.head(800).to_csv(data, index=False)
    result = cli("train", data, "--target", "price", "--models", "ridge", "rf", "--search", "random",
                     "--trials", "2", "--budget", "600", "--jobs", "1", "-o", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert "2 candidates, random" in result.stderr
    bad = cli("train", data, "--target", "price", "--search", "bayes", "-o", tmp_path / "n")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_grid_winner_reuses_its_cross_validation_predictions(small, monkeypatch):
    from mlkiln import selection

    def refit(*args, **kwargs):
        raise AssertionError("the winner was fitted again for its out-of-fold predictions")

    monkeypatch.setattr(selection, "cross_validate_one", refit)
    run = mlkiln.train(small, target="price", models=["ridge", "lasso"], ensemble=False)
    family, params = run.card.model.family, run.card.model.params
    best = next(c for c in run.card.cv_results[family] if c["params"] == params)
    assert run.metrics["validation"]["folds"] == 3
    # the kept predictions are float32: the same score to float32's precision
    assert run.metrics["validation"]["mean"]["r2"] == pytest.approx(np.mean(best["folds"]), rel=1e-6)


def test_a_failing_candidate_scores_nan_and_the_others_still_compete(small):
    # alpha=-1 makes Ridge refuse to fit; the search goes on with the valid candidates
    from mlkiln.tuning import Compute, Scorer, cross_validate_candidates, make_cv
    from mlkiln.pipeline import build_pipeline
    from mlkiln.schema import column_kind

    X, y = small.drop(columns="price"), small["price"].astype(float)
    X = X.astype({c: "category" for c in ("cut", "color", "clarity")})
    kinds = {c: column_kind(X[c]) for c in X.columns}
    pipe = build_pipeline("regression", "ridge", kinds)
    candidates = [{"model__alpha": -1.0}, {"model__alpha": 1.0}]
    with Compute(n_jobs=1) as compute:
        results, reached, oof = cross_validate_candidates(pipe, candidates, X, y, make_cv("regression", 3, 0),
                                                          Scorer("regression", "r2"), "regression", compute)
    assert reached == 2 and np.isnan(results["mean_test_score"][0]) and results["mean_test_score"][1] > 0.8
    [kept] = oof  # the failed candidate has no predictions to keep
    assert kept.params == {"alpha": 1.0} and len(kept.pred) == len(y) and kept.pred.dtype == np.float32
    assert kept.score == pytest.approx(results["mean_test_score"][1])


def test_encoders_count_categories_only_when_a_text_column_has_too_many(diamonds):
    from mlkiln.pipeline import MAX_CATEGORIES, build_pipeline
    from mlkiln.schema import column_kind

    few = mlkiln.train(diamonds.head(600), target="price", models=["ridge"])
    assert few.card.model.max_categories is None
    many = diamonds.head(600).assign(code=[f"c{i % 150}" for i in range(600)])
    capped = mlkiln.train(many, target="price", models=["ridge"], keep=["code"])
    assert capped.card.model.max_categories == MAX_CATEGORIES
    assert "code_infrequent_sklearn" in capped.pipeline[:-1].get_feature_names_out()
    # uncapped encoders give the capped ones' output when no column has too many values
    X, y = diamonds.head(1000).drop(columns="price"), diamonds.head(1000)["price"]
    kinds = {c: column_kind(X[c]) for c in X.columns}
    for family in ("ridge", "hgb"):
        outputs = [build_pipeline("regression", family, kinds, max_categories=cap).fit(X, y).predict(X)
                   for cap in (None, MAX_CATEGORIES)]
        np.testing.assert_array_equal(*outputs)


def test_long_searches_log_their_progress(halving_run):
    lines = halving_run[1]
    n_ridge = grid_size("ridge") * 3
    assert f"ridge: 1/{n_ridge} fits done" in "\n".join(lines)
    assert any(line.startswith(f"ridge: {n_ridge - 1}/{n_ridge} fits done") and "left" in line for line in lines)
    assert not any(f"{n_ridge}/{n_ridge}" in line for line in lines)  # the family's result line says that
    rounds = [line for line in lines if line.startswith("hgb: halving round")]
    n_hgb = grid_size("hgb")
    assert rounds and rounds[0].startswith(f"hgb: halving round 1, {n_hgb} candidates on ")
    assert len(rounds) >= 2 and "round 2" in rounds[1]


def test_short_searches_log_no_progress(small, caplog):
    with caplog.at_level("INFO", logger="mlkiln"):
        mlkiln.train(small, target="price", models=["ridge"])
    assert not any("fits done" in r.getMessage() for r in caplog.records)


def test_a_final_fit_that_does_not_converge_is_said_once_in_our_words(caplog):
    """scikit-learn's ConvergenceWarning (its file and line) became one mlkiln warning; other warnings pass."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = pd.Series(np.where(X["a"] + rng.normal(size=300) > 0, "yes", "no"))
    pipe = make_pipeline(StandardScaler(), LogisticRegression(solver="saga", max_iter=1, tol=1e-12))
    with warnings.catch_warnings(record=True) as shown, caplog.at_level(logging.WARNING, logger="mlkiln"):
        warnings.simplefilter("always")
        fitted = tuning.fit_final(pipe, X, y, Compute(n_jobs=1))
    assert fitted[-1].n_iter_[0] == 1
    assert not [w for w in shown if "converge" in str(w.message)]
    assert sum("iteration limit" in r.getMessage() for r in caplog.records) == 1


def _diamonds_task(diamonds, rows: int, target: str):
    """The first ``rows`` diamonds as ``(X, y, kinds)``, ``cut`` as classes or ``price`` as numbers."""
    from mlkiln.schema import column_kind

    table = diamonds.head(rows)
    X, y = table.drop(columns=target), table[target].astype(str if target == "cut" else float)
    X = X.astype({c: "category" for c in ("cut", "color", "clarity") if c in X})
    return X, y, {c: column_kind(X[c]) for c in X.columns}


def _search(pipe, candidates, X, y, task: str, metric: str, n_jobs: int = 2):
    """``tuning.cross_validate_candidates`` with seeded 3-fold CV on its own :class:`Compute`."""
    cv, scorer = tuning.make_cv(task, 3, 0), tuning.Scorer(task, metric)
    with Compute(n_jobs=n_jobs) as compute:
        return tuning.cross_validate_candidates(pipe, candidates, X, y, cv, scorer, task, compute)


@pytest.mark.parametrize("family", ["hgb", "logistic_l2"])
def test_folds_preprocessed_once_give_the_candidates_the_same_scores_and_predictions(diamonds, monkeypatch, family):
    # the candidates share each fold's fitted preprocessor; fitting it inside every candidate's pipeline
    # (the path taken when the folds are too large to keep) must give the very same numbers
    from mlkiln.pipeline import build_pipeline

    X, y, kinds = _diamonds_task(diamonds, 600, "cut")
    X = X.assign(carat=X["carat"].mask(np.arange(len(X)) % 7 == 0))  # missing: imputed for one-hot, left to trees
    pipe = build_pipeline("classification", family, kinds, n_classes=y.nunique())
    candidates = tuning.candidates_for("classification", family, "random", 0, len(y), 3)
    cv, scorer = tuning.make_cv("classification", 3, 0), tuning.Scorer("classification", "log_loss")

    def search(prepared_bytes):
        monkeypatch.setattr(tuning, "PREPARED_BYTES", prepared_bytes)
        with Compute(n_jobs=1) as compute:
            results = tuning.cross_validate_candidates(pipe, candidates, X, y, cv, scorer, "classification", compute)
            splits = list(cv.split(X, y))
            folds = compute.prepared.get(pipe, candidates, X, y, splits)
            shared = folds is not None and compute.prepared.get(pipe, candidates, X, y, splits) is folds
            return results, shared

    (shared_res, _, shared_oofs), shared = search(tuning.PREPARED_BYTES)
    (own_res, _, own_oofs), not_shared = search(0)
    assert shared and not not_shared
    for k in range(3):
        np.testing.assert_array_equal(shared_res[f"split{k}_test_score"], own_res[f"split{k}_test_score"])
    assert np.isfinite(shared_res["mean_test_score"]).all()
    assert [p.params for p in shared_oofs] == [p.params for p in own_oofs] and len(own_oofs) == 3
    for a, b in zip(shared_oofs, own_oofs):
        np.testing.assert_array_equal(a.pred, b.pred)
        np.testing.assert_array_equal(a.proba, b.proba)


def test_saga_fits_follow_c_from_the_strongest_penalty_and_score_as_fitted_from_zero(diamonds, monkeypatch):
    # several classes: L1 logistic regression is saga, and each fold fits the values of C in turn, warm;
    # the scores stay each candidate's own (given in descending C, reported in that order)
    from mlkiln.pipeline import build_pipeline

    X, y, kinds = _diamonds_task(diamonds, 900, "cut")
    pipe = build_pipeline("classification", "logistic_l1", kinds, n_classes=y.nunique())
    candidates = [{"model__C": c} for c in (10.0, 0.01, 1.0, 0.1)]
    assert tuning._warm_path(pipe.named_steps["model"], [{"C": c} for c in (10.0, 0.01, 1.0, 0.1)]) == [1, 3, 2, 0]

    warm, _, warm_oofs = _search(pipe, candidates, X, y, "classification", "log_loss")
    monkeypatch.setattr(tuning, "_warm_path", lambda model, params: None)
    cold, _, cold_oofs = _search(pipe, candidates, X, y, "classification", "log_loss")
    assert warm["params"] == cold["params"] == candidates
    np.testing.assert_allclose(warm["mean_test_score"], cold["mean_test_score"], atol=2e-3)
    assert np.argmax(warm["mean_test_score"]) == np.argmax(cold["mean_test_score"])
    assert [p.params for p in warm_oofs] == [p.params for p in cold_oofs]
    # two classes: liblinear cannot start warm, and the course's model is fitted from zero as before
    binary = build_pipeline("classification", "logistic_l1", kinds, n_classes=2)
    assert tuning._warm_path(binary.named_steps["model"], [{"C": 1.0}, {"C": 10.0}]) is None


def test_lasso_fits_follow_alpha_from_the_strongest_penalty_and_score_as_fitted_from_zero(diamonds, monkeypatch):
    from mlkiln.pipeline import build_pipeline
    from mlkiln.tuning import _prepared_path

    X, y, kinds = _diamonds_task(diamonds, 2000, "price")
    pipe = build_pipeline("regression", "lasso", kinds)
    candidates = [{"model__alpha": a} for a in (0.01, 10.0, 1.0)]
    assert tuning._warm_path(pipe.named_steps["model"], [{"alpha": a} for a in (0.01, 10.0, 1.0)]) == [1, 2, 0]

    warm, _, _ = _search(pipe, candidates, X, y, "regression", "r2")
    # folds too large to keep for every candidate: each is preprocessed where its path runs, with the same numbers
    paths = []
    monkeypatch.setattr(tuning, "PREPARED_BYTES", 0)
    monkeypatch.setattr(tuning, "_prepared_path", lambda *args: paths.append(1) or _prepared_path(*args))
    unkept, _, _ = _search(pipe, candidates, X, y, "regression", "r2")
    assert len(paths) == 3
    for k in range(3):
        np.testing.assert_array_equal(warm[f"split{k}_test_score"], unkept[f"split{k}_test_score"])
    # a lone candidate (a sampled search's last rung) starts from ten, a hundred and a thousand times its alpha
    assert tuning._warm_up([{"alpha": 0.01}]) == [{"alpha": pytest.approx(a)} for a in (10.0, 1.0, 0.1)]
    assert tuning._warm_up([{"C": 2.0}]) == [{"C": pytest.approx(c)} for c in (0.002, 0.02, 0.2)]
    lone, _, _ = _search(pipe, candidates[:1], X, y, "regression", "r2")
    monkeypatch.setattr(tuning, "_warm_path", lambda model, params: None)
    cold, _, _ = _search(pipe, candidates, X, y, "regression", "r2")
    np.testing.assert_allclose(warm["mean_test_score"], cold["mean_test_score"], rtol=1e-4)
    np.testing.assert_allclose(lone["mean_test_score"][0], cold["mean_test_score"][0], rtol=1e-4)
    assert len(set(np.round(cold["mean_test_score"], 4))) == 3  # three different scores, each back in its place
    # ridge (a closed form) is fitted from zero
    ridge = build_pipeline("regression", "ridge", kinds).named_steps["model"]
    assert tuning._warm_path(ridge, [{"alpha": 1.0}, {"alpha": 10.0}]) is None


def test_a_staged_candidate_with_a_failed_fold_fails_on_every_fold():
    """The folds that fitted hold models, not predictions: scored as predictions they ended the whole search."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = pd.DataFrame({"x": np.arange(60.0)})
    model = HistGradientBoostingRegressor(max_iter=5).fit(X, np.arange(60.0), X_val=X, y_val=np.arange(60.0))
    folds = [(model, None, 0.5), (None, "ValueError: bad fold", 0.25)]
    candidate, outputs = tuning._at_stage_count({"model__learning_rate": 0.1}, folds, X, [], None, "regression")
    assert candidate == {"model__learning_rate": 0.1}
    assert outputs == [(None, "ValueError: bad fold", 0.5), (None, "ValueError: bad fold", 0.25)]


def test_a_rarely_missing_number_does_not_slow_saga(diamonds):
    # the missing-value indicators are 0/1 like the one-hot columns: standardised, an indicator of 2 gaps in 900
    # rows is 21 in those rows, and saga's step (one over the largest squared row norm) shrinks with it
    from mlkiln.pipeline import build_pipeline

    X, y, kinds = _diamonds_task(diamonds, 900, "cut")
    X.loc[X.index[[3, 400]], "carat"] = np.nan
    pipe = build_pipeline("classification", "logistic_l1", kinds, params={"C": 1.0}, n_classes=y.nunique()).fit(X, y)
    design = pipe.named_steps["prep"].transform(X)
    flag = list(pipe.named_steps["prep"].get_feature_names_out()).index("missingindicator_carat")
    assert sorted(np.unique(design[:, flag])) == [0.0, 1.0]
    scaled = build_pipeline("classification", "logistic_l1", kinds, params={"C": 1.0}, n_classes=y.nunique())
    prep = scaled.named_steps["prep"]
    (_, numeric, names), _, categorical = prep.transformers
    numeric.steps[0][1].set_params(add_indicator=True)  # as before: the indicator standardised with the numbers
    prep.set_params(transformers=[("numeric", numeric, names), categorical])
    scaled.fit(X, y)
    assert scaled.named_steps["model"].n_iter_[0] > 1.5 * pipe.named_steps["model"].n_iter_[0]  # 664 and 301 epochs


def test_a_warm_path_stops_past_its_best_and_keeps_the_scores_of_the_full_path(diamonds, monkeypatch):
    # saga's weakest penalties are its slowest fits: past the folds' best C the path stops after PATH_PATIENCE
    # lower scores in a row; the candidates it fitted score exactly as on the whole path, and the rest are left
    # out of the family's leaderboard row, not scored NaN as failures
    from mlkiln.pipeline import _C_GRID, build_pipeline

    X, y, kinds = _diamonds_task(diamonds, 900, "cut")
    pipe = build_pipeline("classification", "logistic_l1", kinds, n_classes=y.nunique())
    candidates = [{"model__C": c} for c in reversed(_C_GRID)]  # weakest first: the path reorders them
    stopped, _, stopped_oofs = _search(pipe, candidates, X, y, "classification", "log_loss")
    monkeypatch.setattr(tuning, "PATH_PATIENCE", len(candidates))
    whole, _, whole_oofs = _search(pipe, candidates, X, y, "classification", "log_loss")
    passed = stopped["passed"]
    assert passed.any() and not whole["passed"].any() and stopped["first_failure"] is None
    fitted = np.flatnonzero(~passed)
    np.testing.assert_array_equal(stopped["mean_test_score"][fitted], whole["mean_test_score"][fitted])
    assert np.isnan(stopped["mean_test_score"][passed]).all()
    # the stop: the weakest penalties, each scoring below the best on the whole path too
    best = int(np.nanargmax(whole["mean_test_score"]))
    assert np.nanargmax(stopped["mean_test_score"]) == best
    assert all(_C_GRID[::-1][i] > _C_GRID[::-1][best] for i in np.flatnonzero(passed))
    assert (whole["mean_test_score"][passed] < whole["mean_test_score"][best]).all()
    assert stopped_oofs[0].params == whole_oofs[0].params  # the best's predictions, for the ensemble and threshold
    np.testing.assert_array_equal(stopped_oofs[0].proba, whole_oofs[0].proba)
    assert all(p.params["C"] <= _C_GRID[::-1][best] * 10 for p in stopped_oofs)
    monkeypatch.undo()
    scorer = tuning.Scorer("classification", "log_loss")
    with Compute(n_jobs=2) as compute:
        result = tuning.tune_family(X, y, "classification", "logistic_l1", kinds, scorer,
                                    tuning.make_cv("classification", 3, 0), 0, y.nunique(), compute, search="grid")
    assert result.n_candidates == len(fitted) == len(result.candidates) < len(_C_GRID)


def test_a_measurement_forced_into_classes_is_told_to_use_regression():
    # fractional labels are read as text: a measurement given --task classification is one class per row
    from mlkiln.errors import InputError

    y = pd.Series([f"{v:.3f}" for v in np.linspace(0.1, 0.9, 12)])
    with pytest.raises(InputError, match=r"it has 12 distinct values in 12 rows\), use --task regression"):
        data.check_folds("classification", y, 3, spare=1)
    with pytest.raises(InputError) as caught:  # a rare class of a real label: no such advice
        data.check_folds("classification", pd.Series(["a"] * 10 + ["b"]), 3, spare=1)
    assert "--task regression" not in str(caught.value)
    with pytest.raises(InputError) as caught:  # text classes, each in one row (a test split of most rows)
        data.check_folds("classification", pd.Series(["Adelie", "Gentoo", "Chinstrap"]), 3)
    assert "--task regression" not in str(caught.value)


def test_the_target_encoder_s_own_folds_say_nothing_of_a_rare_class():
    """hgb_target's encoder splits the rows in 5 folds of its own: a class of 4 rows made scikit-learn warn on
    the terminal, even with -q."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"town": [f"t{i % 30}" for i in range(240)], "x": rng.normal(size=240),
                          "y": ["a"] * 118 + ["b"] * 118 + ["c"] * 4})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mlkiln.train(frame, target="y", models=["hgb_target"], trials=1)
    assert run.card.model.family == "hgb_target"
    assert not [w for w in caught if "least populated class" in str(w.message)]


def test_a_warm_path_goes_past_the_penalties_that_leave_every_coefficient_zero():
    # the strongest L1 penalties fit the intercept alone, and their scores differ by saga's noise: on this split of
    # iris they fell 1.1176, 1.1181, 1.1182, and the path stopped there, its best "model" the class shares
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    run = mlkiln.train(frame, target="target", seed=3, models=["logistic_l1"])
    scored = run.card.cv_results["logistic_l1"]
    assert len(scored) > 3 and run.card.model.params["C"] > 0.01, scored
    assert run.card.leaderboard[0].cv_mean < 0.2  # the class shares' log loss is 1.10


def test_lasso_penalises_in_the_target_s_units_so_its_search_ignores_them(diamonds):
    # the same table with the price in dollars and in billions of dollars: the same relative alpha is chosen and
    # scores the same; with alphas fixed in absolute terms (0.01 to 100) every coefficient of the second was zero
    frame = diamonds.head(1500)
    runs = [mlkiln.train(frame.assign(price=frame["price"] * scale), target="price", models=["lasso"], seed=0)
            for scale in (1.0, 1e-9)]
    (dollars, billions) = (run.leaderboard.iloc[0] for run in runs)
    assert billions["cv_mean"] == pytest.approx(dollars["cv_mean"], abs=1e-6) and dollars["cv_mean"] > 0.85
    assert billions["params"]["alpha"] == pytest.approx(dollars["params"]["alpha"] * 1e-9, rel=1e-9)


def test_lasso_works_on_the_gram_matrix_of_a_narrow_design_and_fits_the_same(diamonds):
    """Coordinate descent on X'X (``precompute``) where the one-hot design is at most GRAM_MAX_COLUMNS wide: the
    same fit, without a pass over the rows at each step; a wider design keeps the passes (its Gram matrix grows with
    the square of the width)."""
    from sklearn.base import clone

    from mlkiln.pipeline import GRAM_MAX_COLUMNS, build_pipeline, onehot_width

    X, y = diamonds.drop(columns="price").head(5000), diamonds["price"].head(5000)
    kinds = {name: "categorical" if name in ("cut", "color", "clarity") else "numeric" for name in X}
    assert onehot_width(kinds) == 2 * 6 + 3 * 101 <= GRAM_MAX_COLUMNS
    gram = build_pipeline("regression", "lasso", kinds, {"alpha": 1.0})
    assert gram.named_steps["model"].precompute is True
    rows = clone(gram).set_params(model__precompute=False)
    gram.fit(X, y), rows.fit(X, y)
    np.testing.assert_allclose(gram.predict(X), rows.predict(X), rtol=1e-6, atol=1e-3)
    wide = {**kinds, **{f"t{i}": "categorical" for i in range(2)}}  # 5 text columns of up to 101 one-hot columns
    assert onehot_width(wide) > GRAM_MAX_COLUMNS
    assert build_pipeline("regression", "lasso", wide).named_steps["model"].precompute is False
    assert onehot_width(wide, None) == onehot_width(wide)  # uncapped: none has more than MAX_CATEGORIES values
    # other one-hot families have no such setting; a given setting wins
    assert "precompute" not in build_pipeline("regression", "ridge", kinds).named_steps["model"].get_params()
    assert build_pipeline("regression", "lasso", kinds, {"precompute": False}).named_steps["model"].precompute is False


def test_every_family_s_random_space_draws_in_the_target_s_units():
    """lasso's alpha, drawn in the target's units, came from a distribution built wrongly: `--search random` and
    `--budget`'s neighbours (their median) failed on every regression table with an internal error."""
    for family in REGISTRY.values():
        for task in family.tasks:
            drawn = tuning.candidates_for(task, family.name, "random", seed=0, n_rows=5000, trials=20, unit=37.0)
            assert len(drawn) >= 1, family.name
            for name in family.target_units:
                low, high = (37.0 * v for v in family.space(random=True).get(name).support())
                assert all(low <= c[f"model__{name}"] <= high for c in drawn), (family.name, name)
    alpha = REGISTRY["lasso"].space(random=True, unit=37.0)["alpha"]
    assert alpha.median() == pytest.approx(37.0 * REGISTRY["lasso"].space(random=True)["alpha"].median())


def test_a_random_search_that_draws_a_candidate_twice_chooses_its_best():
    """extra_trees' random space is small: a candidate drawn twice was kept once, and choosing the best then
    failed ("2 is not in list") where the best was its first draw (scikit-learn's diabetes table)."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    run = mlkiln.train(frame, target="target", models=["extra_trees", "lasso"], search="random", seed=0)
    for family in ("extra_trees", "lasso"):
        candidates = run.card.cv_results[family]
        row = next(r for r in run.card.leaderboard if r.family == family)
        assert row.cv_mean == max(c["mean"] for c in candidates)
        assert len({repr(sorted(c["params"].items())) for c in candidates}) == len(candidates)
