"""The anytime search under --budget, and the sampled search of large tables (issue 12 item 7, issue 13 item 2)."""

import subprocess
import sys
import time

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score

import mlkiln
from mlkiln import tuning
from mlkiln.examples import EXAMPLES, load_example
from mlkiln.data import nested_sample
from mlkiln.metrics import Scorer
from mlkiln.pipeline import HGB_DEFAULTS, REFIT_MOST_TREES, REGISTRY, refit_most_stages
from mlkiln.selection import ranking_rung
from mlkiln.tuning import CostModel, rung_sizes

#: what a budgeted run may take beyond its budget on this shared 2-core machine: starting the CV workers (about
#: 3 s), the steps after the final fit (about 3 s here), and a loaded machine's slack; a full search of these
#: families on these rows takes over a minute, so the bound still tells a budget kept from one ignored
SLACK_S = 20.0


@pytest.fixture(scope="module")
def failure():
    example = EXAMPLES["machine-failure"]
    return load_example("machine-failure").drop(columns=list(example.drop)), example.target


@pytest.fixture(scope="module")
def budget_run(failure):
    frame, target = failure
    started = time.perf_counter()
    run = mlkiln.train(frame, target=target, budget=2.0, seed=0)
    return run, time.perf_counter() - started


def test_a_tiny_budget_still_beats_the_majority_class_and_ends_in_time(budget_run, failure):
    run, seconds = budget_run
    assert seconds <= 2.0 * 1.1 + SLACK_S
    frame, target = failure
    y = frame[target]  # the test split is stratified: the majority class's macro-F1 there is the same to 1e-3
    majority = f1_score(y, DummyClassifier().fit(frame, y).predict(frame), average="macro")
    assert run.metrics["test"]["f1_macro"] > majority + 0.2
    assert run.metrics["test"]["roc_auc"] > 0.8
    assert run.card.model.family == "hgb"  # the strong, cheap opener: what a tiny budget gets


def test_a_candidate_estimated_not_to_finish_is_not_started(budget_run):
    run, _ = budget_run
    skipped = run.card.tuning.not_started
    assert skipped and all(s.estimated_s > s.left_s for s in skipped)
    scored = {(family, repr(sorted(c["params"].items())), c["n_samples"])
              for family, candidates in run.card.cv_results.items() for c in candidates}
    assert not any((s.family, repr(sorted(s.params.items())), s.rows) in scored for s in skipped)
    board = run.leaderboard.set_index("family")
    for family in {s.family for s in skipped}:
        assert board.loc[family, "not_reached"] > 0 and board.loc[family, "status"] in ("partial", "not reached")


def test_the_cost_model_scales_with_rows_and_prefers_the_largest_fits():
    cost = CostModel(folds=3, cores=2)
    cost.observe("hgb", [0.5, 0.4, 0.45], 1000)  # small fits: fixed costs weigh most
    assert cost.fit_seconds("hgb", 4000) == pytest.approx(2.0)
    cost.observe("hgb", [1.0, 1.2, 0.9], 6000)
    assert cost.fit_seconds("hgb", 4000) == pytest.approx(0.8)
    # 3 folds of 2/3 of the rows, two at a time: two rounds of fits
    assert cost.cv_seconds("hgb", 6000) == pytest.approx(1.2 * 0.8 * 2)
    assert cost.cv_seconds("ridge", 1000) > 0  # never fitted: its cost class's prior



def test_a_family_not_fitted_yet_takes_the_rate_of_its_estimator_on_other_encodings():
    """hgb_target is hgb's estimator on target-encoded text: once hgb is measured, its prior no longer applies
    (on bundesliga under --budget 30 the prior kept it from starting)."""
    cost = CostModel(folds=3, cores=2, n_classes=3)
    prior = cost.fit_seconds("hgb_target", 6000)
    cost.observe("hgb", [0.3, 0.35, 0.4], 6000)
    assert cost.fit_seconds("hgb_target", 6000) == cost.fit_seconds("hgb", 6000) == pytest.approx(0.4)
    assert prior > 10 * cost.fit_seconds("hgb_target", 6000)
    assert cost.fit_seconds("rf", 6000) == CostModel(folds=3, cores=2, n_classes=3).fit_seconds("rf", 6000)

def test_the_cost_model_extrapolates_faster_growth_that_two_fits_measured():
    cost = CostModel(folds=3, cores=2)
    cost.observe("logistic_l1", [0.12], 11_111)  # liblinear's L1 fits on the machine-failure rows (session 23)
    cost.observe("logistic_l1", [0.42], 22_222)
    power = np.log(0.42 / 0.12) / np.log(2)
    assert 1.7 < power < 1.9
    # measured: 9.9 s on 112,678 rows, where in proportion to the rows it would be 2.1 s
    assert cost.fit_seconds("logistic_l1", 112_678) == pytest.approx(0.42 * (112_678 / 22_222) ** power)
    assert cost.fit_seconds("logistic_l1", 11_111) == pytest.approx(0.21)  # up to the fits measured: in proportion
    cost.observe("hgb", [0.5], 1_000)  # fixed costs: slower per row on fewer rows, never taken below proportion
    cost.observe("hgb", [1.0], 6_000)
    assert cost.fit_seconds("hgb", 12_000) == pytest.approx(2.0)
    cost.observe("rf", [1.0], 1_000)  # noise, faster than the square: bounded
    cost.observe("rf", [50.0], 2_000)
    assert cost.fit_seconds("rf", 4_000) == pytest.approx(50.0 * 4)


def test_nested_samples_are_stratified_and_every_class_splits():
    y = pd.Series(["a"] * 900 + ["b"] * 90 + ["c"] * 10)
    order = nested_sample(y, "classification", seed=3, folds=3)
    assert sorted(order) == list(range(1000))
    assert set(y.iloc[order[:9]]) == {"a", "b", "c"}  # every class's first rows come first
    counts = y.iloc[order[:500]].value_counts()
    assert abs(counts["a"] - 450) <= 3 and abs(counts["b"] - 45) <= 3 and counts["c"] >= 3
    np.testing.assert_array_equal(order, nested_sample(y, "classification", seed=3, folds=3))
    assert rung_sizes(5_000_000) == [11_111, 33_333, 100_000] and rung_sizes(8000) == [8000]
    # at least the folds times the classes (here 3 x 40,000), on each rung
    assert rung_sizes(5_000_000, least=3 * 60) == [11_111, 33_333, 100_000]
    assert rung_sizes(10**6, least=120_000) == [120_000] and rung_sizes(90_000, least=15_000) == [30_000, 90_000]


@pytest.fixture(scope="module")
def small_rungs():
    """Thresholds small enough that 1,200 training rows are searched on rungs of 100, 300 and 900 rows."""
    patch = pytest.MonkeyPatch()
    patch.setattr(tuning, "SAMPLE_ROWS", 900)
    patch.setattr(tuning, "RUNG_MIN_ROWS", 100)
    yield
    patch.undo()


@pytest.fixture(scope="module")
def sampled_runs(small_rungs, diamonds):
    return [mlkiln.train(diamonds.head(1500), target="price", models=["ridge", "hgb", "extra_trees"], trials=2)
            for _ in range(2)]


def test_the_sampled_search_records_the_rows_each_step_saw(sampled_runs):
    card = sampled_runs[0].card
    steps = [(s.step, s.rows, s.candidates) for s in card.tuning.steps]
    # each rung: the best third of the last (here 2 of 6, then 1) and each family's best (3 families)
    assert steps[0] == ("rung 1", 100, 6) and steps[1][:2] == ("rung 2", 300) and 3 <= steps[1][2] <= 4
    assert steps[2:] == [("rung 3", 900, 3), ("final fit", 1200, len(card.model.members) or 1)]
    searched = {family: candidates for family, candidates in card.cv_results.items() if candidates}
    assert set(searched) == {"ridge", "hgb", "extra_trees"}
    for family, candidates in searched.items():  # every family's best reached the last rung
        assert max(c["n_samples"] for c in candidates) == 900, family
    reached = sorted(c["n_samples"] for candidates in searched.values() for c in candidates)
    assert reached == sorted([100] * (6 - steps[1][2]) + [300] * (steps[1][2] - 3) + [900] * 3)
    assert card.leaderboard[0].family == card.model.family
    for member in card.model.members or [card.model]:  # each the best of its family on the last rung
        best = max((c for c in card.cv_results[member.family] if c["n_samples"] == 900), key=lambda c: c["mean"])
        # with its final fit's settings: gradient boosting stops early on all 1,200 rows, up to more trees
        assert member.params == REGISTRY[member.family].refit_params(best["params"], 3, 1200)


def test_a_sampled_search_s_final_fit_stops_early_on_its_own_rows_up_to_more_trees(sampled_runs):
    """The final fit of a sampled search stops early on 10 % of all the rows; more rows want more trees, so it may
    grow up to refit_most_stages(rows): 4,000 up to 250,000 rows, then rows x trees bounded, the former 1,000 from
    a million rows on."""
    assert refit_most_stages(1_200) == refit_most_stages(250_000) == REFIT_MOST_TREES == 4000
    assert refit_most_stages(261_876) == 3818 and refit_most_stages(500_000) == 2000
    assert refit_most_stages(10**6) == refit_most_stages(5 * 10**6) == HGB_DEFAULTS["max_iter"] == 1000
    hgb = REGISTRY["hgb"]
    assert hgb.refit_params({"learning_rate": 0.1}, 3, 261_876) == {"learning_rate": 0.1, "max_iter": 3818}
    counted = {"learning_rate": 0.1, "early_stopping": False, "max_iter": 200}  # counted on the folds: grown 3/2
    assert hgb.refit_params(counted, 3, 261_876) == {**counted, "max_iter": 300}
    assert REGISTRY["ridge"].refit_params({"alpha": 1.0}, 3, 261_876) == {"alpha": 1.0}
    run = sampled_runs[0]
    card = run.card
    fitted = {card.model.family: (card.model.params, card.model.trees)} if not card.model.members else {
        m.name: (m.params, m.trees) for m in card.model.members}
    stopped = [(params, trees) for params, trees in fitted.values() if params.get("early_stopping", True) is not False
               and "max_iter" in params]
    for params, trees in stopped:  # the card says what the final fit may grow, and it stopped itself before it
        assert params["max_iter"] == REFIT_MOST_TREES and 0 < trees < REFIT_MOST_TREES
    assert stopped or not any(f.startswith("hgb") for f in fitted)


def test_trials_give_identical_bundles_on_two_runs(sampled_runs, tmp_path, diamonds):
    first, second = sampled_runs
    assert first.card.model == second.card.model and first.card.cv_results == second.card.cv_results
    X = diamonds.tail(300).drop(columns="price")
    np.testing.assert_array_equal(first.predict(X), second.predict(X))
    a, b = first.save(tmp_path / "a"), second.save(tmp_path / "b")
    # the saved models predict alike (their pickles may differ in which equal strings are shared: the
    # ensemble's members are fitted in worker processes)
    loaded = [joblib.load(path / "model.joblib") for path in (a, b)]
    rows = first.model.prepare(X)
    np.testing.assert_array_equal(loaded[0].predict(rows), loaded[1].predict(rows))
    assert (a / "train.py").read_text().split('"""', 2)[2] == (b / "train.py").read_text().split('"""', 2)[2]


def _rebuilt_alike(run, data: str, tmp_path) -> None:
    """The bundle's train.py, run where ``import mlkiln`` fails, predicts as the run's model."""
    bundle = run.save(tmp_path / "b")
    out = tmp_path / "repro.joblib"
    subprocess.run([sys.executable, "-c", "import runpy, sys; sys.modules['mlkiln'] = None\n"
                    f"sys.argv = ['train.py', {data!r}, '-o', {str(out)!r}]\n"
                    f"runpy.run_path({str(bundle / 'train.py')!r}, run_name='__main__')"],
                   check=True, timeout=300, capture_output=True)
    X = run.model.prepare(pd.read_csv(data))
    np.testing.assert_array_equal(joblib.load(out).predict(X), run.pipeline.predict(X))


def test_a_final_fit_on_the_budget_s_sample_is_rebuilt_by_train_py(monkeypatch, diamonds_csv, tmp_path):
    # rungs of 266, 800 and 2,400 rows: no time for more than the first, nor for a final fit on all rows
    monkeypatch.setattr(tuning, "RUNG_MIN_ROWS", 300)
    monkeypatch.setattr(tuning, "SAMPLE_ROWS", 100_000)
    run = mlkiln.train(diamonds_csv, target="price", models=["hgb", "ridge"], budget=1e-6)
    steps = {s.step: s.rows for s in run.card.tuning.steps}
    assert steps == {"rung 1": 266, "final fit": 266} and run.card.split.n_train == 2400
    _rebuilt_alike(run, diamonds_csv, tmp_path)


def test_on_a_sampled_table_an_ensemble_must_beat_the_best_model_by_more_than_its_spread(sampled_runs):
    from mlkiln.selection import LARGE_ENSEMBLE_SPREADS

    card = sampled_runs[0].card
    board = sampled_runs[0].leaderboard.set_index("family")
    single = board.drop(index="ensemble", errors="ignore").sort_values("cv_mean", ascending=False).iloc[0]
    if card.model.family == "ensemble":
        assert board.loc["ensemble", "cv_mean"] - single["cv_mean"] > LARGE_ENSEMBLE_SPREADS * single["cv_std"]
    else:  # weighed and set aside, or never weighed: the best single model is the one fitted
        assert card.model.family == single.name and "ensemble" not in board.index


def test_a_run_over_its_budget_says_so(tmp_path, diamonds):
    """A budget below what any run needs (reading, one fit, metrics, report, bundle) is kept as far as it can
    be, and the command says by how much it went over."""
    data = tmp_path / "d.csv"
    diamonds.head(800).to_csv(data, index=False)
    done = subprocess.run([sys.executable, "-m", "mlkiln", "train", str(data), "--target", "price", "--budget", "0.01",
                           "-o", str(tmp_path / "m"), "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "over --budget 0.01s" in done.stderr
    calm = subprocess.run([sys.executable, "-m", "mlkiln", "train", str(data), "--target", "price", "--budget", "600",
                           "--models", "linear", "-o", str(tmp_path / "n"), "-q"], capture_output=True, text=True,
                          timeout=300)
    assert calm.returncode == 0 and "over --budget" not in calm.stderr, calm.stderr


def test_a_tree_per_class_is_foreseen_and_does_not_open_a_budget_it_cannot_fit(monkeypatch):
    monkeypatch.setattr(tuning, "SAMPLE_ROWS", 100_000)  # not small_rungs' thresholds: one rung of all the rows
    monkeypatch.setattr(tuning, "RUNG_MIN_ROWS", 10_000)
    two, many = CostModel(3, 2, n_classes=2), CostModel(3, 2, n_classes=120)
    assert many.fit_seconds("hgb", 1000) == pytest.approx(120 * two.fit_seconds("hgb", 1000))
    assert many.fit_seconds("rf", 1000) == two.fit_seconds("rf", 1000)  # one forest serves every class
    many.observe("hgb", [2.0, 1.5, 1.8], 1000)
    assert many.fit_seconds("hgb", 1000) == pytest.approx(2.0)  # measured, the prior no longer counts
    # 120 classes: gradient boosting (about 20 s a fit here) is estimated past a 5 s budget, so a linear model opens
    rng = np.random.default_rng(0)
    labels = np.repeat([f"c{i:03d}" for i in range(120)], 10)
    frame = pd.DataFrame({"a": rng.normal(size=1200) + np.repeat(np.arange(120), 10), "b": rng.normal(size=1200),
                          "y": labels})
    board = mlkiln.train(frame, target="y", budget=5, models=["logistic_l2", "hgb"]).leaderboard.set_index("family")
    assert board.loc["hgb", "status"] == "not reached" and board.loc["logistic_l2", "status"] in ("ok", "partial")


def test_a_wide_table_is_foreseen_and_does_not_open_a_budget_it_cannot_fit(monkeypatch):
    monkeypatch.setattr(tuning, "SAMPLE_ROWS", 100_000)
    monkeypatch.setattr(tuning, "RUNG_MIN_ROWS", 10_000)
    narrow, wide = CostModel(3, 2, n_columns=9), CostModel(3, 2, n_columns=1000)
    assert narrow.fit_seconds("hgb", 1000) == CostModel(3, 2).fit_seconds("hgb", 1000)
    assert wide.fit_seconds("hgb", 1000) == pytest.approx(100 * narrow.fit_seconds("hgb", 1000))
    assert wide.fit_seconds("ridge", 1000) == pytest.approx(100 * narrow.fit_seconds("ridge", 1000))
    wide.observe("hgb", [0.5, 0.4, 0.6], 1000)
    assert wide.fit_seconds("hgb", 1000) == pytest.approx(0.6)  # measured, the prior no longer counts
    # 400 columns: gradient boosting is estimated past a 5 s budget, so a linear model opens and is chosen
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1500, 400)), columns=[f"x{i}" for i in range(400)])
    frame["y"] = frame.iloc[:, :20].sum(axis=1) + rng.normal(size=1500)
    run = mlkiln.train(frame, target="y", budget=5, models=["ridge", "hgb"])
    board = run.leaderboard.set_index("family")
    assert board.loc["hgb", "status"] == "not reached" and board.loc["ridge", "status"] in ("ok", "partial")
    assert run.metrics["test"]["r2"] > 0.9


def test_every_rung_holds_each_class_in_every_fold(small_rungs):
    # 60 classes x 3 folds: a rung of 100 rows could not hold them (it failed with an IndexError)
    rng = np.random.default_rng(0)
    y = np.repeat([f"c{k}" for k in range(60)], 20)
    frame = pd.DataFrame({"x": rng.normal(size=1200) + np.repeat(np.arange(60), 20) / 10, "y": y})
    assert tuning.rung_sizes(1200, least=3 * 60) == [300, 900]
    run = mlkiln.train(frame, target="y", models=["logistic_l2"], trials=1)
    rungs = [s for s in run.card.tuning.steps if s.step.startswith("rung")]
    assert rungs[0].rows >= 180 and run.model.predict_proba(frame.head(5)).shape == (5, 60)


def test_a_one_parameter_grid_starts_in_its_middle_on_the_rungs():
    # a budget that reaches only the first batch of C = 0.001, 0.0032 got a model of the class shares
    from mlkiln.pipeline import _C_GRID

    grid = [{"model__C": c} for c in _C_GRID]
    plan = tuning._middle_first(grid)
    assert [c["model__C"] for c in plan[:3]] == [_C_GRID[5], _C_GRID[6], _C_GRID[4]]
    assert sorted(c["model__C"] for c in plan) == _C_GRID and plan[-1]["model__C"] == _C_GRID[0]
    two = [{"a": a, "b": b} for a in (1, 2, 3) for b in (1, 2)]
    assert tuning._middle_first(two) == two


def test_a_final_fit_grows_more_trees_only_where_many_fit_and_early_stopping_did_not_end_it():
    from types import SimpleNamespace

    model = SimpleNamespace(max_iter=100, n_iter_=100)  # a gradient boosting model's two attributes read
    assert tuning._more_trees(model, 1000, 10.0, 0.1) == 100
    assert tuning._more_trees(model, 150, 10.0, 0.1) == 50  # never past the settings' most
    assert tuning._more_trees(model, 1000, 0.95, 0.1) == 0  # 9 trees: fewer than a tenth of those grown
    model.n_iter_ = 80  # early stopping ended the fit
    assert tuning._more_trees(model, 1000, 10.0, 0.1) == 0


def _pipelines(frame: pd.DataFrame, target: str, task: str, threshold=None, trees=300):
    """Two unfitted gradient boosting pipelines of ``frame``'s columns: ``trees`` trees without early stopping."""
    from mlkiln.pipeline import build_pipeline

    X = frame.drop(columns=[target])
    kinds = {c: "numeric" if pd.api.types.is_numeric_dtype(X[c]) else "categorical" for c in X}
    X = X[sorted(X, key=lambda c: kinds[c] == "categorical")].astype(
        {c: "category" for c in X if kinds[c] == "categorical"})
    kinds = {c: kinds[c] for c in X}
    params = {"early_stopping": False, "max_iter": trees, "max_leaf_nodes": 15}
    return X, frame[target], [build_pipeline(task, "hgb", kinds, params, 0, 2, threshold) for _ in range(2)]


def test_a_final_fit_grows_the_trees_that_end_in_time_and_equals_one_fit_of_them(diamonds, failure, monkeypatch):
    X, y, (clocked, whole) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter() + 600)  # time for all: as one fit
    np.testing.assert_array_equal(clocked.predict(X), tuning.least_squares.fit(whole, X, y).predict(X))
    assert clocked[-1].n_iter_ == clocked[-1].max_iter == 300 and not clocked[-1].warm_start
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 0.0)
    X, y, (clocked, once) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter())  # no time after the first trees
    assert clocked[-1].n_iter_ == clocked[-1].max_iter == tuning.FIRST_TREES
    once.set_params(model__max_iter=tuning.FIRST_TREES)
    np.testing.assert_array_equal(clocked.predict(X), once.fit(X, y).predict(X))
    # a probe of a few trees first: cheap ones go on to FIRST_TREES even with no time left; slow ones do not
    monkeypatch.setattr(tuning, "FIRST_TREES_GRACE", 60.0)  # "cheap": the first trees within 60 s past the clock
    X, y, (clocked, once) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter(), first=tuning.PROBE_TREES)
    assert clocked[-1].n_iter_ == clocked[-1].max_iter == tuning.FIRST_TREES
    np.testing.assert_array_equal(clocked.predict(X), once.set_params(model__max_iter=100).fit(X, y).predict(X))
    monkeypatch.setattr(tuning, "FIRST_TREES_GRACE", 0.0)
    X, y, (clocked, once) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter(), first=tuning.PROBE_TREES)
    assert clocked[-1].n_iter_ == clocked[-1].max_iter == tuning.PROBE_TREES
    np.testing.assert_array_equal(clocked.predict(X), once.set_params(model__max_iter=10).fit(X, y).predict(X))
    # time left after a warm start's trees grows more, in as many parts as it takes: still one fit's trees
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 0.05)  # the first warm start: a few trees
    parts, more_trees = [], tuning._more_trees
    monkeypatch.setattr(tuning, "_more_trees", lambda model, most, seconds, per_tree: parts.append(model.n_iter_) or (
        min(37, most - model.n_iter_)))
    X, y, (clocked, once) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter())
    assert len(parts) >= 3 and parts[-1] == clocked[-1].n_iter_ == clocked[-1].max_iter == 300
    np.testing.assert_array_equal(clocked.predict(X), once.fit(X, y).predict(X))
    monkeypatch.setattr(tuning, "_more_trees", more_trees)
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 0.0)
    # the rows predicted after the fit cost time per tree: a billion of them leave no time for more trees
    X, y, (clocked, _) = _pipelines(diamonds, "price", "regression")
    tuning.grow_until(clocked, X, y, until=time.perf_counter() + 60, predicted=10**9)
    assert clocked[-1].n_iter_ == clocked[-1].max_iter == tuning.FIRST_TREES
    # a tuned threshold wraps the model: the wrapper is left as its own fit leaves it
    frame, target = failure
    X, y, (clocked, once) = _pipelines(frame, target, "classification", threshold=0.3)
    tuning.grow_until(clocked, X, y, until=time.perf_counter())
    once.set_params(model__estimator__max_iter=tuning.FIRST_TREES)
    once.fit(X, y)
    assert clocked[-1].estimator.max_iter == clocked[-1].estimator_.n_iter_ == tuning.FIRST_TREES
    np.testing.assert_array_equal(clocked.predict_proba(X), once.predict_proba(X))
    np.testing.assert_array_equal(clocked.predict(X), once.predict(X))
    assert clocked[-1].n_features_in_ == once[-1].n_features_in_ == X.shape[1]


def test_trees_the_clock_stopped_are_in_the_card_and_train_py_grows_as_many(monkeypatch, diamonds_csv, tmp_path):
    monkeypatch.setattr(tuning, "RUNG_MIN_ROWS", 300)
    monkeypatch.setattr(tuning, "SAMPLE_ROWS", 100_000)
    monkeypatch.setattr(tuning, "FIRST_TREES", 7)  # a first part that early stopping does not end
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 0.0)
    run = mlkiln.train(diamonds_csv, target="price", models=["hgb"], budget=1e-6)
    assert run.card.model.params["max_iter"] == run.card.model.trees == 7
    _rebuilt_alike(run, diamonds_csv, tmp_path)


def test_the_budget_counts_from_the_start_it_is_given(diamonds):
    """``mlkiln train`` passes its own start, so that its imports count against --budget."""
    frame = diamonds.head(1500)
    run = mlkiln.train(frame, target="price", budget=30, started=time.perf_counter() - 29.9, seed=0)
    assert run.card.tuning.not_started  # the budget was spent before the call: the least search
    assert run.card.train_seconds >= 29.9
    fresh = mlkiln.train(frame, target="price", budget=30, seed=0)
    assert fresh.card.train_seconds < 29.9


def test_a_spent_budget_still_tries_each_family_that_costs_next_to_nothing():
    """60 rows under a budget spent before the search: one family opens, and every other, estimated near nothing,
    still gets a first candidate (only L1 logistic regression was scored before)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(60, random_state=1)
    run = mlkiln.train(frame, target="target", budget=1.0, started=time.perf_counter() - 1.0, seed=0)
    board = run.leaderboard.set_index("family")
    families = ["logistic_l1", "logistic_l2", "hgb", "rf", "extra_trees"]
    assert list(board.loc[families, "status"].isin(["ok", "partial"])) == [True] * 5, board[["status"]]
    assert run.metrics["test"]["balanced_accuracy"] > 0.8


def test_a_family_not_measured_yet_opens_with_one_candidate_unless_more_fit_well_within_the_time(failure):
    """Before a family's first fit its cost is a prior: several candidates start together only where they fit in
    the time left at PRIOR_SAFETY times their estimate; once measured, the estimate itself decides."""
    frame, target = failure
    X, y = frame.drop(columns=[target]).head(3000), frame[target].head(3000)
    kinds = {name: ("categorical" if X[name].dtype == object else "numeric") for name in X.columns}
    with tuning.Compute(n_jobs=2) as compute:
        compute.cores = 2  # two candidates a batch at most (the suite gives each of its workers one core)
        rungs = tuning._Rungs(X, y, "classification", ["hgb"], kinds, Scorer("classification", "log_loss", [0, 1]),
                              tuning.make_cv("classification", 3, 0), 0, 2, compute, "auto", None,
                              time.perf_counter() + 60, None, None)
        two = rungs.cost.cv_seconds("hgb", 3000, 2)
        assert rungs.batch("hgb", [0, 1, 2], 3000, 1.4 * two) == [0]  # within the estimate, not within 1.5 times it
        assert rungs.batch("hgb", [0, 1, 2], 3000, tuning.PRIOR_SAFETY * two) == [0, 1]
        rungs.cost.observe("hgb", [0.01, 0.01, 0.01], 2000)  # measured: the estimate is the time
        measured = rungs.cost.cv_seconds("hgb", 3000, 2)
        assert rungs.batch("hgb", [0, 1, 2], 3000, measured) == [0, 1]
        assert rungs.batch("hgb", [0, 1, 2], 3000, 0.9 * measured) == [0]


def test_a_logistic_regression_under_a_budget_is_fitted_once_as_without_one(failure):
    """LogisticRegression has warm_start and max_iter as gradient boosting does, but its iterations are a solver's:
    under --budget its final fit went through the trees-by-the-clock path, was cut to 100 iterations, and failed
    on the array n_iter_ (flights' 16 carriers: internal error, no bundle)."""
    from mlkiln.pipeline import build_pipeline

    frame, target = failure
    X, y = frame.drop(columns=[target]).select_dtypes("number").head(2000), frame[target].head(2000)
    kinds = dict.fromkeys(X.columns, "numeric")
    slow = {"C": 1e4, "solver": "saga", "tol": 1e-9, "max_iter": 300, "random_state": 0}  # past 100 iterations
    pipes = [build_pipeline("classification", "logistic_l2", kinds, params=slow) for _ in range(2)]
    assert not tuning._staged(pipes[0]) and tuning._staged(build_pipeline("classification", "hgb", kinds))
    with tuning.Compute(n_jobs=1) as compute:
        tuning.fit_final(pipes[0], X, y, compute, until=time.perf_counter() + 60, predicted=1000)
        tuning.fit_final(pipes[1], X, y, compute)
    assert pipes[0][-1].n_iter_[0] > 100  # the solver's own count, not the first trees'
    np.testing.assert_array_equal(pipes[0].predict_proba(X), pipes[1].predict_proba(X))


def _rung_results(*rungs):
    """RungSearch rungs from ``{family: (score, rows)}`` per rung (rows: a family below the rung stopped there)."""
    out = []
    for n, scores in rungs:
        out.append((np.arange(n), [tuning.FamilyResult(f, {}, score, 0.01, 0.1, 1.0, 1, rows=rows)
                                   for f, (score, rows) in scores.items()]))
    return out


def test_families_are_ranked_on_the_largest_rung_the_best_of_them_reached():
    # gradient boosting best on rung 1 and stopped there for time; L1 logistic regression went on to rung 3
    stopped = _rung_results((3_703, {"hgb": (-0.0755, 3_703), "logistic_l1": (-0.0990, 3_703)}),
                            (11_111, {"hgb": (-0.0755, 3_703), "logistic_l1": (-0.0985, 11_111)}),
                            (33_333, {"hgb": (-0.0755, 3_703), "logistic_l1": (-0.0982, 33_333)}))
    assert ranking_rung(stopped, 1.0) == 0
    # a family best on a small rung that went on and lost on a larger one: the larger rung decides
    lost = _rung_results((3_000, {"ridge": (0.84, 3_000), "hgb": (0.83, 3_000)}),
                         (9_000, {"ridge": (0.85, 9_000), "hgb": (0.88, 9_000)}),
                         (27_000, {"ridge": (0.85, 27_000), "hgb": (0.90, 27_000)}))
    assert ranking_rung(lost, 1.0) == 2
    # the leader of the last rung stays ahead of a family behind it wherever both were scored
    behind = _rung_results((3_000, {"ridge": (0.80, 3_000), "hgb": (0.83, 3_000)}),
                           (9_000, {"ridge": (0.80, 3_000), "hgb": (0.88, 9_000)}))
    assert ranking_rung(behind, 1.0) == 1
    # the smaller rung's leader stopped on rung 2 of 3 and beat there the last rung's leader
    middle = _rung_results((3_000, {"a": (0.80, 3_000), "b": (0.70, 3_000), "c": (0.75, 3_000)}),
                           (9_000, {"a": (0.80, 3_000), "b": (0.71, 9_000), "c": (0.78, 9_000)}),
                           (27_000, {"a": (0.80, 3_000), "b": (0.72, 27_000), "c": (0.78, 9_000)}))
    assert ranking_rung(middle, 1.0) == 0  # c beat b on rung 2, then a beat c on rung 1, where c was too


def test_a_family_best_on_a_smaller_rung_is_scored_on_more_rows_before_ranking(diamonds):
    """The leader on a smaller rung, which the time kept there, is cross-validated on the last rung's rows too,
    and leads if it is better there (its score recomputed here with scikit-learn's cross_val_predict on the same
    folds); one that is worse there stays behind."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_predict

    from mlkiln.options import TrainOptions
    from mlkiln.pipeline import build_pipeline
    from mlkiln.selection import Plan, _compared_on
    from mlkiln.understand import understand

    options = TrainOptions()
    table = understand(diamonds.head(3000), "price", options)
    X, y = table.X, table.y
    cv, scorer = tuning.make_cv("regression", 3, 0), Scorer("regression", "r2")
    hgb = {"learning_rate": 0.1, "max_leaf_nodes": 15, "max_iter": 100, "early_stopping": False}

    def ranked(params):
        rungs = _rung_results((1000, {"ridge": (0.85, 1000), "hgb": (0.95, 1000)}),
                              (len(y), {"ridge": (0.90, len(y)), "hgb": (0.95, 1000)}))
        rungs[1][1][1].params = params
        plan = Plan(time.perf_counter(), None, len(y), len(y),
                    found=tuning.RungSearch(rungs, [], [], CostModel(3, 1)))
        with tuning.Compute(n_jobs=1) as compute:
            rows, results = _compared_on(X, y, table, options, compute, scorer, cv, 2, {"max_categories": None}, plan)
        assert len(rows) == len(y)
        return sorted(results, key=lambda r: -r.cv_mean)

    board = ranked(hgb)
    assert [r.family for r in board] == ["hgb", "ridge"] and board[0].rows == len(y) and board[0].oofs
    pipe = build_pipeline("regression", "hgb", table.kinds, params=hgb, seed=0)
    folds = tuning.fold_of(cv, X, y)
    oof = cross_val_predict(pipe, X, y, cv=cv)
    expected = np.mean([r2_score(y[folds == k], oof[folds == k]) for k in range(3)])
    assert board[0].cv_mean == pytest.approx(expected, abs=1e-9) and expected > 0.9
    weak = {**hgb, "max_iter": 2}  # two trees: far below ridge on the same rows, whatever it scored before
    board = ranked(weak)
    assert [r.family for r in board] == ["ridge", "hgb"] and board[1].cv_mean < 0.9



def test_a_leader_on_a_smaller_rung_that_cannot_be_scored_on_more_rows_in_time_beats_only_a_worse_one(diamonds):
    """Out of time for the CV on more rows: the last rung's leader is kept where it scored better there than the
    other did on its fewer rows (bundesliga under --budget 60 was ranked on 3,738 rows, and L1 logistic
    regression chosen, where gradient boosting was better on 11,214); else the families are ranked on the
    smaller rung, as the leader there is better even on fewer rows."""
    from mlkiln.options import TrainOptions
    from mlkiln.selection import Plan, _compared_on
    from mlkiln.understand import understand

    options = TrainOptions()
    table = understand(diamonds.head(3000), "price", options)
    X, y = table.X, table.y
    cv, scorer = tuning.make_cv("regression", 3, 0), Scorer("regression", "r2")

    def rows_ranked_on(ridge_on_all_rows):
        rungs = _rung_results((1000, {"ridge": (0.85, 1000), "hgb": (0.95, 1000)}),
                              (len(y), {"ridge": (ridge_on_all_rows, len(y)), "hgb": (0.95, 1000)}))
        now = time.perf_counter()
        plan = Plan(now - 10, now, len(y), len(y), found=tuning.RungSearch(rungs, [], [], CostModel(3, 1)))
        with tuning.Compute(n_jobs=1) as compute:
            rows, results = _compared_on(X, y, table, options, compute, scorer, cv, 2, {"max_categories": None}, plan)
        assert all(not r.oofs or r.rows == len(rows) for r in results)  # nothing cross-validated again
        return len(rows)

    assert rows_ranked_on(0.96) == len(y)  # ridge on all rows beat hgb's 0.95 on 1,000
    assert rows_ranked_on(0.90) == 1000  # hgb better even on fewer rows

def test_the_final_fit_times_a_few_trees_first_where_its_first_hundred_might_not_end_in_time():
    """A search's gradient boosting fits may stop early at n_iter_no_change trees: their rate says little of the
    final fit's first 100 (Tuna, 5 classes: 5.4 s said, 9.9 s taken)."""
    from mlkiln.selection import Plan

    cost = CostModel(3, 2)
    cost.observe("hgb", [0.5], 2_436)  # the search's fits: 0.5 s on 2,436 rows
    found = tuning.RungSearch([(np.arange(3_654), [])], [], [], cost)
    now = time.perf_counter()
    spent = Plan(now - 10, now + 8, 10_964, 13_705, found=found)  # 8 s left, less the steps after the fit
    assert spent.first_trees("hgb", 10_964) == tuning.PROBE_TREES
    ample = Plan(now - 10, now + 60, 10_964, 13_705, found=found)
    assert ample.first_trees("hgb", 10_964) is None  # FIRST_TREES
    assert Plan(now, None, 10_964, 13_705, found=found).first_trees("hgb", 10_964) is None


def test_an_ensemble_of_many_boosted_trees_keeps_back_the_time_its_bundle_takes():
    """skops wrote txhousing's ensemble of 1,883 boosted trees in 3.3 s, past what the steps after the fit keep."""
    from mlkiln.selection import BUNDLE_SECONDS_PER_TREE, BUNDLE_TREES_RESERVED, Plan

    def member(family, params):
        return (family, tuning.Predictions(family, params, 0.0, np.zeros(3), None), 1)

    members = [member("hgb", {"max_iter": 486}), member("hgb_target", {"max_iter": 903}),
               member("hgb", {"max_iter": 494}), member("ridge", {"alpha": 1.0})]
    cost = CostModel(3, 2)
    cost.observe("hgb", [0.5], 3_000)
    cost.observe("hgb_target", [0.5], 3_000)
    cost.observe("ridge", [0.01], 3_000)
    now = time.perf_counter()
    plan = Plan(now - 20, now + 12, 6_388, 7_986, found=tuning.RungSearch([(np.arange(1_000), [])], [], [], cost))
    extra = plan.bundle_seconds(members)
    assert extra == pytest.approx(BUNDLE_SECONDS_PER_TREE * (486 + 903 + 494 - BUNDLE_TREES_RESERVED))
    assert plan.bundle_seconds(members[-1:]) == 0  # no boosted trees: the reserve covers it
    families = [f for f, _, _ in members]
    assert plan.fits(families, 6_388) and not plan.fits(families, 6_388, extra)
    # ranked on all the rows (one rung): the final fit takes no fewer, so its rows cannot say whether the ensemble
    # ends in time (txhousing under --budget 20 ran to 22.6-23.4 s with this ensemble)
    whole = Plan(now - 20, now + 12, 6_388, 7_986, compared=6_388, found=plan.found)
    assert whole.final_rows(families) == 6_388 and not whole.fits(families, 6_388, extra)
    three = Plan(now - 20, now + 10, 6_388, 7_986, n_classes=3, found=plan.found)  # a tree per class a stage
    assert three.bundle_seconds(members) == pytest.approx(
        BUNDLE_SECONDS_PER_TREE * (3 * (486 + 903 + 494) - BUNDLE_TREES_RESERVED))


def _rung_state(failure, families, n=3000, trials=None):
    frame, target = failure
    X, y = frame.drop(columns=[target, "UDI", "Product ID"]).head(n), frame[target].head(n)
    kinds = {name: ("numeric" if pd.api.types.is_numeric_dtype(X[name]) else "categorical") for name in X.columns}
    return X, y, kinds, lambda compute: tuning._Rungs(
        X, y, "classification", families, kinds, Scorer("classification", "log_loss", [0, 1]),
        tuning.make_cv("classification", 3, 0), 0, 2, compute, "auto", trials, time.perf_counter() + 120, None, None)


def test_a_family_the_time_kept_from_a_rung_goes_on_to_the_next_with_its_best(failure):
    """Each rung's share of the time is its own: a family kept from rung 2 is offered rung 3 with its best so far
    (on diamonds under --budget 30 gradient boosting was dropped after rung 2 this way, and 16 s went unused);
    a family the time kept from every rung is offered its first candidate."""
    *_, make = _rung_state(failure, ["logistic_l2", "hgb", "rf"])
    with tuning.Compute(n_jobs=1) as compute:
        rungs = make(compute)
    entry = {"rows": 1000, "std": 0.0, "folds": [], "fit_time": 0.1, "params": {}}
    rungs.history = {0: {("logistic_l2", 0): {**entry, "mean": -0.2}, ("hgb", 0): {**entry, "mean": -0.1},
                         ("hgb", 1): {**entry, "mean": -0.05}},
                     1: {("logistic_l2", 0): {**entry, "rows": 3000, "mean": -0.19}}}
    rungs.tried = set(rungs.history[0])
    assert rungs.carried(1) == [("hgb", 1), ("rf", 0)]
    assert rungs.carried(0) == [("rf", 0)]  # scored there: its survivors are chosen by score


def test_the_time_the_rungs_left_scores_the_candidates_the_last_rung_did_not(failure):
    """After the last rung, its unscored candidates are scored there while the time allows: those no rung tried,
    then those the halving dropped, except a family just refused for time on that rung."""
    X, y, kinds, make = _rung_state(failure, ["logistic_l2", "hgb", "rf"])
    with tuning.Compute(n_jobs=2) as compute:
        rungs = make(compute)
        rows = np.arange(len(y))
        rungs.rung(0, rows[::3], [("hgb", 0), ("logistic_l2", 0), ("logistic_l2", 1), ("rf", 0)], 0.5)
        rungs.rung(1, rows, [("hgb", 0)], 1)  # the halving kept hgb's only
        rungs.not_started.append({"family": "rf", "candidate": 1, "rows": len(rows)})
        planned = {f: len(rungs.plan[f]) for f in rungs.families}
        rungs.fill(1, rows)
    last = rungs.history[1]
    assert planned["hgb"] > 1 and {i for f, i in last if f == "hgb"} >= set(range(planned["hgb"]))
    # dropped on rung 1 (0 and 1) or never tried: all scored in the time left
    assert {i for f, i in last if f == "logistic_l2"} >= set(range(planned["logistic_l2"]))
    assert not any(f == "rf" for f, _ in last)  # refused on these rows just now
    (more,) = [s for s in rungs.steps if s.name == "rung 2, more candidates"]
    assert more.candidates == planned["hgb"] - 1 + planned["logistic_l2"]
    assert all(np.isfinite(s["mean"]) for s in last.values()), last


def test_neighbours_of_a_candidate_stay_in_its_family_s_space_and_are_new(failure):
    *_, make = _rung_state(failure, ["hgb", "rf"])
    with tuning.Compute(n_jobs=1) as compute:
        rungs = make(compute)
    rng = np.random.default_rng(0)
    best = rungs.plan["hgb"][0]
    drawn = rungs.near("hgb", best, rng, 8)
    assert len(drawn) == 8 and all(d not in rungs.plan["hgb"] for d in drawn) and len({str(d) for d in drawn}) == 8
    space = REGISTRY["hgb"].space(random=True)
    for d in drawn:
        assert set(d) == set(best)
        for name, dist in space.items():
            value, low, high = d[f"model__{name}"], *dist.support()
            assert low <= value <= high
            ratio = value / best[f"model__{name}"]
            assert min(abs(ratio - f) for f in (1 / 1.5, 1.0, 1.5)) < 0.1 or value in (low, high)
        assert isinstance(d["model__max_leaf_nodes"], int)
    forest = rungs.near("rf", {"model__min_samples_leaf": 1}, rng, 8)  # one parameter: few neighbours
    assert forest == [{"model__min_samples_leaf": 2}]


def test_the_time_left_after_every_candidate_goes_to_neighbours_of_the_best(failure):
    """Anytime: with every planned candidate scored on the last rung, rounds of neighbours of the best so far."""
    X, y, kinds, make = _rung_state(failure, ["hgb"], n=1500)
    with tuning.Compute(n_jobs=1) as compute:
        rungs = make(compute)
        rows = np.arange(len(y))
        rungs.rung(0, rows, [("hgb", i) for i in range(len(rungs.plan["hgb"]))], 1)
        planned = len(rungs.plan["hgb"])
        rungs.fill(0, rows)
    more = rungs.plan["hgb"][planned:]
    assert 0 < len(more) <= tuning.NEIGHBOUR_ROUNDS * compute.cores
    assert rungs.steps[-1].name == "rung 1, neighbours of the best" and rungs.steps[-1].candidates == len(more)
    scores = {i: s["mean"] for (f, i), s in rungs.history[0].items()}
    assert set(scores) == set(range(len(rungs.plan["hgb"]))) and all(np.isfinite(v) for v in scores.values())
    _, _, _, capped = _rung_state(failure, ["hgb"], n=1500, trials=2)  # --trials caps the candidates: no neighbours
    with tuning.Compute(n_jobs=1) as compute:
        rungs = capped(compute)
        rungs.rung(0, rows, [("hgb", 0), ("hgb", 1)], 1)
        rungs.fill(0, rows)
    assert len(rungs.plan["hgb"]) == 2 and not any("neighbours" in s.name for s in rungs.steps)


def test_the_time_the_rungs_leave_keeps_back_an_ensemble_s_final_fits(monkeypatch):
    """More candidates after the rungs leave time for three members' final fits, not one: where they took it, the
    ensemble could not be fitted (health-insurance under --budget 60 got one model, test log loss 0.4072 against
    0.4061)."""
    from mlkiln.selection import FINAL_FIT_SAFETY, FINAL_SHARE, Plan

    cost = CostModel(3, 2)
    cost.observe("hgb", [0.3], 10_000)
    now = time.perf_counter()
    plan = Plan(now, now + 60, 17_817, 22_272)
    one = FINAL_FIT_SAFETY * cost.fit_seconds("hgb", 17_817)
    assert plan.reserve("hgb", cost) == pytest.approx(one + plan.post_fit())
    # three members: three fits, and predicting through each of them
    assert plan.reserve("hgb", cost, 3) == pytest.approx(3 * one + plan.post_fit(3))
    assert plan.post_fit(3) > plan.post_fit() > plan.post_fit(0)
    assert plan.reserve("hgb", cost, 100) == pytest.approx(FINAL_SHARE * 60 + plan.post_fit(100))  # at most a share
    frame = load_example("diamonds").head(600)
    X, y = frame[["carat", "depth"]], frame["price"]

    def reserves() -> list:
        kept = []
        with tuning.Compute(n_jobs=1) as compute:
            tuning._Rungs(X, y, "regression", ["ridge"], dict.fromkeys(X.columns, "numeric"),
                          Scorer("regression", "r2", None), tuning.make_cv("regression", 3, 0), 0, 2, compute,
                          "auto", None, now + 60,
                          lambda family, cost, models=1, capped=True: kept.append((models, capped)) or 0.0,
                          None, 3).run()
        return kept

    kept = reserves()
    # the rungs keep one final fit; the time they leave, three; capped at a share, as the rung holds every row
    assert kept[0] == (1, True) and kept[-1] == (3, True)
    monkeypatch.setattr(tuning, "SAMPLE_ROWS", 300)  # the last rung a sample: its final fit on every row, uncapped
    kept = reserves()
    assert kept[0] == (1, True) and kept[-1] == (3, False)
    # on a sample the time the rungs leave keeps back the final fit on every row, uncapped
    assert plan.reserve("hgb", cost, 100, capped=False) == pytest.approx(100 * one + plan.post_fit(100))


def test_a_family_s_entry_on_a_rung_never_takes_a_score_from_a_rung_above(failure):
    """A family carried past rungs the time kept it from can be scored first on a later rung; ranked on a smaller
    rung, that score (more rows, ranked first) chose logistic_l2 at log loss 0.0967 over gradient boosting's 0.0506
    on 400k machine-failure rows."""
    *_, make = _rung_state(failure, ["logistic_l2", "hgb"])
    with tuning.Compute(n_jobs=1) as compute:
        rungs = make(compute)
    entry = {"std": 0.0, "folds": [0.0, 0.0, 0.0], "fit_time": 0.1, "params": {}}
    rungs.history = {0: {("hgb", 0): {**entry, "rows": 1000, "mean": -0.05}},
                     1: {("hgb", 0): {**entry, "rows": 3000, "mean": -0.06},
                         ("logistic_l2", 0): {**entry, "rows": 3000, "mean": -0.097}}}
    low = {f: rungs.result(f, 0) for f in rungs.families}
    assert low["hgb"].rows == 1000 and low["hgb"].cv_mean == pytest.approx(0.05)
    assert low["logistic_l2"].error == "scored only on more rows than the families were ranked on"
    assert low["logistic_l2"].status == "not compared"
    high = rungs.result("logistic_l2", 1)
    assert not high.error and high.rows == 3000 and high.cv_mean == pytest.approx(0.097)


def test_a_batch_far_past_its_estimate_is_ended_with_its_workers_and_the_search_goes_on(failure):
    """Under --budget a fit cannot be told to stop, but its worker can be ended: a batch estimated at a fraction
    of a second that would run for minutes (a forest of 100,000 trees) ends at STOP_PAST_ESTIMATE times its
    estimate plus STOP_GRACE_S; it is not scored, the cost model learns it takes at least that long, the
    leaderboard says why, and the next batch finds new workers (seattlepets under --budget 90: saga's L1 logistic
    regression, estimated at 2.7 s, ran 58-372 s)."""
    X, y, kinds, make = _rung_state(failure, ["logistic_l2", "rf"], n=2000)
    rows = np.arange(len(y))
    with tuning.Compute(n_jobs=2) as compute:
        compute.cores = 2  # worker processes, which can be ended (the suite gives each of its workers one core)
        rungs = make(compute)
        rungs.rung(0, rows, [("logistic_l2", 0)])
        rungs.plan["rf"] = [{"model__n_estimators": 100_000}]
        rungs.cost.observe("rf", [0.01], len(y) * 2 // 3)  # a fold's fit rows
        estimate = rungs.cost.cv_seconds("rf", len(y))
        started = time.perf_counter()
        rungs.rung(0, rows, [("rf", 0)])
        seconds = time.perf_counter() - started
        assert ("rf", 0) not in rungs.history[0] and rungs.stopped == {"rf"} and rungs.restart
        assert seconds < tuning.STOP_PAST_ESTIMATE * estimate + tuning.STOP_GRACE_S + 10  # not the minutes it takes
        assert rungs.cost.cv_seconds("rf", len(y)) > tuning.STOP_GRACE_S  # at least what it ran
        assert "stopped" in rungs.result("rf", 0).error and rungs.result("rf", 0).status == "not reached"
        rungs.rung(0, rows, [("logistic_l2", 1)])  # new workers, given RESTART_GRACE_S to start, score the next batch
        assert not rungs.restart
        assert np.isfinite(rungs.history[0][("logistic_l2", 1)]["mean"])


def test_fits_running_past_until_are_not_scored_and_those_before_are(failure):
    frame, target = failure
    X, y = frame[["Torque [Nm]", "Tool wear [min]"]].head(1500), frame[target].head(1500)
    from mlkiln.pipeline import build_pipeline

    pipe = build_pipeline("classification", "rf", dict.fromkeys(X.columns, "numeric"))
    candidates = [{"model__n_estimators": 5}, {"model__n_estimators": 100_000}]
    cv, scorer = tuning.make_cv("classification", 3, 0), Scorer("classification", "log_loss", [0, 1])
    with tuning.Compute(n_jobs=2) as compute:
        compute.cores = 2  # worker processes, which can be ended (the suite gives each of its workers one core)
        tuning.cross_validate_candidates(pipe, candidates[:1], X, y, cv, scorer, "classification", compute)  # workers
        results, reached, oofs = tuning.cross_validate_candidates(pipe, candidates, X, y, cv, scorer, "classification",
                                                                  compute, until=time.perf_counter() + 3)
    assert list(results["stopped"]) == [False, True] and reached == 2
    assert np.isfinite(results["mean_test_score"][0]) and np.isnan(results["mean_test_score"][1])
    assert [p.params for p in oofs] == [{"n_estimators": 5}]
