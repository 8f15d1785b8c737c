"""Leaks spread over several columns, and scores too good to be true, on tables the tests build."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import mlkiln
from mlkiln import leakage
from mlkiln.data import row_hashes
from mlkiln.examples import load_example
from mlkiln.schema import coerce_frame, column_kind, screen_columns, screen_columns_with_evidence

N = 4_000


def _screen(frame: pd.DataFrame, target: str, task: str = "regression", keep=()):
    kinds = {c: column_kind(frame[c]) for c in frame.columns if c != target}
    return screen_columns_with_evidence(coerce_frame(frame, kinds), frame[target], task, kinds, 0, keep)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(3)


@pytest.fixture(scope="module")
def sum_table(rng) -> pd.DataFrame:
    """``total`` is exactly ``a + b``; ``c`` is an honest but weak feature; neither member alone predicts it."""
    a, b = rng.normal(10, 3, N), rng.exponential(3, N)
    c = 0.2 * (a + b) + rng.normal(0, 3, N)
    return pd.DataFrame({"a": a.round(3), "b": b.round(3), "c": c, "total": (a.round(3) + b.round(3))})


def test_sum_of_two_columns_is_found_with_its_relation(sum_table):
    reasons, leaks = _screen(sum_table, "total")
    assert set(reasons) == {"a", "b"}
    (leak,) = leaks
    assert set(leak.columns) == {"a", "b"} and leak.kept == ()
    assert leak.score >= leakage.RELATION_R2 and leak.rows == N and leak.scale == "raw"
    assert leak.relation in {f"total = 1.00 * {x} + 1.00 * {z} (R2 1.0000 on {N:,} rows)" for x, z in ("ab", "ba")}
    assert leak.relation in reasons["a"] and leak.to_dict()["kind"] == "combination"


def test_the_old_return_shape_still_holds(sum_table):
    kinds = {c: "numeric" for c in "abc"}
    assert set(screen_columns(sum_table[list("abc")], sum_table["total"], "regression", kinds)) == {"a", "b"}


def test_a_kept_column_is_never_blamed_the_other_member_is(sum_table):
    reasons, (leak,) = _screen(sum_table, "total", keep=("a",))
    assert set(reasons) == {"b"}
    assert leak.columns == ("b",) and leak.kept == ("a",)
    assert "1.00 * a" in leak.relation


def test_keeping_every_member_leaves_nothing_to_blame(sum_table):
    reasons, leaks = _screen(sum_table, "total", keep=("a", "b"))
    assert reasons == {} and leaks == ()


def test_missing_values_are_left_out_of_the_fit(sum_table, rng):
    frame = sum_table.copy()
    frame.loc[rng.random(N) < 0.1, "a"] = np.nan
    _, (leak,) = _screen(frame, "total")
    assert set(leak.columns) == {"a", "b"}
    assert leak.rows == int(frame["a"].notna().sum()) < N


def test_a_difference_of_two_timestamps(rng):
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 3e7, N).round(), unit="s")
    seconds = rng.gamma(2.0, 3600.0, N).round()
    end = start + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame({
        "start": start.strftime("%Y-%m-%d %H:%M:%S"), "end": end.strftime("%Y-%m-%d %H:%M:%S"),
        "distance": seconds / 100 + rng.normal(0, 20, N), "duration": seconds,
    })
    assert column_kind(frame["start"]) == "datetime"
    reasons, (leak,) = _screen(frame, "duration")
    assert set(reasons) == {"start", "end"}
    assert "-1.00 * start" in leak.relation and "+ 1.00 * end" in leak.relation


def test_a_ratio_hidden_in_three_columns_is_linear_in_logs(rng):
    """``rate = p * q / r`` is not linear in the columns; its log is linear in their logs."""
    p, q, r = rng.uniform(1, 10, N), rng.uniform(1, 10, N), rng.uniform(1, 10, N)
    frame = pd.DataFrame({"p": p, "q": q, "r": r, "noise": rng.normal(0, 1, N), "rate": p * q / r})
    reasons, (leak,) = _screen(frame, "rate")
    assert set(reasons) == set(leak.columns) == {"p", "q", "r"}
    assert leak.scale == "log"
    assert leak.relation.startswith("log(rate) = 1.00 * log(p) + 1.00 * log(q) - 1.00 * log(r)")


def test_a_relation_among_features_alone_is_no_leak(rng):
    a, b = rng.normal(0, 1, N), rng.normal(0, 1, N)
    frame = pd.DataFrame({"a": a, "b": b, "s": a + b, "d": a - b, "y": a + 0.5 * b + rng.normal(0, 0.3, N)})
    assert _screen(frame, "y") == ({}, ())


@pytest.mark.parametrize("rule", ["sloping", "along the axes", "three classes"])
def test_an_exact_class_boundary_over_two_columns(rng, rule):
    """A learned boundary misplaces about one row in (columns / training rows): a full screening sample is needed."""
    n = 20_000
    a, b = rng.normal(10, 3, n), rng.normal(8, 3, n)
    label = {"sloping": a > b, "along the axes": (a > 11) & (b < 9), "three classes": np.digitize(a + b, [15, 20])}[rule]
    frame = pd.DataFrame({"a": a, "b": b, "c": rng.normal(0, 1, n), "label": label})
    reasons, (leak,) = _screen(frame, "label", "classification")
    assert set(reasons) == set(leak.columns) == {"a", "b"}
    assert leak.metric == "balanced accuracy" and leak.score >= leakage.RELATION_BALANCED_ACCURACY
    assert leak.rows == n - leakage.TRAINING_ROWS and "held-out rows" in leak.relation


def test_a_member_the_relation_does_not_need_is_not_blamed(rng):
    """A set grown from a pair by a third column can separate the target through two of them (Ecdat's Kakadu:
    the bid's bounds ``lower`` and ``upper`` fix the answer; ``lowrisk`` was excluded with them)."""
    n = 20_000
    a, b = rng.normal(10, 3, n), rng.normal(8, 3, n)
    frame = pd.DataFrame({"a": a, "b": b, "c": rng.normal(0, 1, n)})
    y = pd.Series(a > b, name="label")
    target = leakage._target_matrix(y, "classification", "raw")
    grown = leakage._verify(frame, y, target, "classification", ["a", "c", "b"], [], "raw", 0)
    assert grown is not None and set(grown.columns) == {"a", "b", "c"}  # the three separate it, c adding nothing
    leak = leakage._pruned(grown, frame, y, target, "classification", ["a", "c", "b"], [], "raw", 0)
    assert set(leak.columns) == {"a", "b"} and "of a, b (" in leak.relation
    assert leak.score >= leakage.RELATION_BALANCED_ACCURACY


def test_an_honest_classification_signal_is_no_leak(rng):
    a, b = rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000)
    frame = pd.DataFrame({"a": a, "b": b, "label": a + b + rng.normal(0, 0.3, 20_000) > 0})
    assert _screen(frame, "label", "classification") == ({}, ())


def test_separable_species_on_a_small_table_is_signal_not_leak():
    """Palmer penguins (344 birds): bill and body measurements separate the species, held-out rows too.

    With few rows per class that is what an honest, separable table does; the same boundary on a few hundred
    held-out rows per class would not be (see test_an_exact_class_boundary_over_two_columns).
    """
    penguins = pd.read_csv(Path(__file__).parent / "data" / "penguins.csv")
    assert _screen(penguins, "species", "classification") == ({}, ())
    run = mlkiln.train(penguins, target="species", models=["logistic_l2"])
    used = {c.name for c in run.card.columns}
    assert {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"} <= used
    assert run.metrics["test"]["accuracy"] > 0.95


def test_no_false_alarm_on_the_bundled_examples():
    diamonds = load_example("diamonds")
    assert _screen(diamonds, "price")[1] == ()
    failure = load_example("machine-failure")
    reasons, leaks = _screen(failure, "Machine failure", "classification")
    assert leaks == ()
    assert not any("target leakage with" in why for why in reasons.values())


def test_many_columns_stay_bounded(sum_table, rng):
    noise = pd.DataFrame(rng.normal(0, 1, (N, 300)), columns=[f"n{i}" for i in range(300)])
    frame = pd.concat([noise, sum_table], axis=1)
    started = time.perf_counter()
    leaks = leakage.find_combination_leaks(frame.drop(columns="total"), frame["total"], "regression")
    assert time.perf_counter() - started < 5
    assert [set(leak.columns) for leak in leaks] == [{"a", "b"}]


@pytest.fixture(scope="module")
def sum_csv(tmp_path_factory, sum_table) -> str:
    path = tmp_path_factory.mktemp("leak") / "sum.csv"
    sum_table.iloc[:1500].to_csv(path, index=False)
    return str(path)


def test_train_excludes_the_members_and_scores_honestly(sum_csv, tmp_path):
    run = mlkiln.train(sum_csv, target="total", models=["linear"])
    assert {"a", "b"} <= set(run.card.excluded)
    assert "total = 1.00" in run.card.excluded["a"]
    assert run.metrics["test"]["r2"] < 0.9
    (evidence,) = run.card.leakage  # the card records the relation with its score and rows
    assert evidence["kind"] == "combination" and set(evidence["columns"]) == {"a", "b"}
    assert evidence["score"] >= 0.9999 and evidence["rows"] == 1500
    path = run.save(tmp_path / "model")
    assert json.loads((path / "report.json").read_text())["data"]["leakage"] == [evidence]
    assert "Excluded as a leak over several columns" in (path / "report.html").read_text()


def test_train_with_a_kept_member_excludes_the_other(sum_csv):
    run = mlkiln.train(sum_csv, target="total", models=["linear"], keep=["a"])
    assert "b" in run.card.excluded and "a" not in run.card.excluded
    assert run.metrics["test"]["r2"] < 0.9


def test_ceiling_alarm_names_the_columns_the_model_leans_on(sum_csv, sum_table):
    run = mlkiln.train(sum_csv, target="total", models=["linear"], keep=["a", "b"])
    scores = run.metrics["validation"]["mean"]
    assert scores["r2"] > 0.9999
    X = sum_table[["a", "b", "c"]].iloc[:1500]
    alarm = leakage.ceiling_alarm("regression", scores, run.pipeline, X, sum_table["total"].iloc[:1500])
    assert alarm is not None and alarm.metric == "r2"
    assert set(alarm.columns[:2]) == {"a", "b"} and alarm.importances[0] > 0.1
    assert alarm.rows == 1500 and "too good to be true" in alarm.message
    assert alarm.to_dict()["kind"] == "ceiling"
    (recorded,) = run.card.leakage  # train raised the same alarm and kept it in the card
    assert recorded["kind"] == "ceiling" and set(recorded["columns"][:2]) == {"a", "b"}


def test_a_wide_table_s_ceiling_alarm_scores_a_smaller_sample(rng):
    X = pd.DataFrame(rng.normal(size=(1500, 60)), columns=[f"c{i}" for i in range(60)])
    y = 2 * X["c7"] + X["c30"]
    model = LinearRegression().fit(X, y)
    alarm = leakage.ceiling_alarm("regression", {"r2": 1.0}, model, X, y)
    # 60 columns shuffled 3 times each: the rows scored stay within the bound, the top columns are still found
    assert alarm.rows == leakage.IMPORTANCE_SCORED // (60 * leakage.ALARM_REPEATS) < 1500
    assert alarm.columns[:2] == ("c7", "c30")
    narrow = leakage.ceiling_alarm("regression", {"r2": 1.0}, LinearRegression().fit(X[["c7", "c30"]], y),
                                   X[["c7", "c30"]], y)
    assert narrow.rows == 1500  # a narrow table keeps every row up to IMPORTANCE_ROWS
    # a model of many trees (as counted by metrics.count_trees) is shuffled on fewer rows, once per column
    large = leakage.ceiling_alarm("regression", {"r2": 1.0}, model, X, y, trees=5_000)
    assert large.rows == leakage.ALARM_MIN_ROWS and large.columns[:2] == ("c7", "c30")


def test_no_ceiling_alarm_on_an_honest_strong_signal(diamonds_run, diamonds):
    scores = diamonds_run.metrics["validation"]["mean"]
    assert 0.9 < scores["r2"] < leakage.CEILINGS["r2"]
    assert leakage.ceiling_alarm("regression", scores, diamonds_run.pipeline, diamonds.drop(columns="price"),
                                  diamonds["price"]) is None


def test_perfect_accuracy_on_a_small_class_is_no_alarm():
    scores = {"accuracy": 1.0}
    assert leakage.ceiling_alarm("classification", scores, None, pd.DataFrame(), pd.Series(dtype=float),
                                 class_counts={0: 500, 1: 40}) is None


def test_no_ceiling_alarm_on_machine_failure(failure_run):
    scores = failure_run.metrics["validation"]["mean"]
    counts = load_example("machine-failure")["Machine failure"].value_counts().to_dict()
    assert leakage.ceiling_alarm("classification", scores, failure_run.pipeline, pd.DataFrame(),
                                 pd.Series(dtype=float), class_counts=counts) is None


def test_a_single_column_leak_names_its_rows(rng):
    wage = rng.lognormal(3, 0.5, N)
    frame = pd.DataFrame({"logwage": np.log(wage), "age": rng.integers(18, 65, N), "wage": wage})
    reasons, leaks = _screen(frame, "wage")
    assert list(reasons) == ["logwage"] and leaks == ()
    assert reasons["logwage"].endswith(f"(screening sample of {N:,} rows)")


def test_test_rows_that_copy_training_rows_are_reported(tmp_path):
    # scikit-learn's diabetes four times over: nearly every test row is a training row, and the test score says
    # nothing about new rows; the table once is clean
    from sklearn.datasets import load_diabetes

    once = load_diabetes(as_frame=True).frame
    repeated = pd.concat([once] * 4, ignore_index=True).sample(frac=1.0, random_state=0).reset_index(drop=True)
    X, y = repeated.drop(columns="target"), repeated["target"]
    copies = leakage.copied_rows(row_hashes(X.iloc[:1400], y.iloc[:1400]), row_hashes(X.iloc[1400:], y.iloc[1400:]))
    expected = int(pd.Series(list(zip(*[repeated[c] for c in repeated]))).iloc[1400:]
                   .isin(set(zip(*[repeated[c].iloc[:1400] for c in repeated]))).sum())
    assert copies.rows == expected and copies.test_rows == 368 and expected > 0.9 * 368
    assert "exact copies of training rows" in copies.message
    # the same features with another target are no copy
    assert leakage.copied_rows(row_hashes(X.iloc[:1400], y.iloc[:1400]),
                               row_hashes(X.iloc[1400:], y.iloc[1400:] + 1.0)) is None
    assert leakage.copied_rows(row_hashes(once.drop(columns="target").iloc[:350], once.target.iloc[:350]),
                               row_hashes(once.drop(columns="target").iloc[350:], once.target.iloc[350:])) is None
    repeated.to_csv(tmp_path / "repeated.csv", index=False)
    run = mlkiln.train(tmp_path / "repeated.csv", target="target", models=["linear"])
    evidence = [item for item in run.card.leakage if item["kind"] == "copies"]
    assert len(evidence) == 1 and evidence[0]["rows"] > 0.9 * evidence[0]["test_rows"]
    run.save(tmp_path / "model")
    assert "Test rows seen in training" in (tmp_path / "model" / "report.html").read_text()


def test_single_column_leaks_the_parts_find_a_tree_would(rng):
    # a non-monotone copy (no rank correlation sees it), a copy as text codes, a class written in another column's
    # ranges: each flagged as a depth-8 tree flagged them; a noisy signal of the same shape is not
    x = rng.uniform(-3, 3, N)
    y = np.sin(2 * x) * 100
    codes = np.array([f"c{int(v)}" for v in np.floor((y + 100) / 10)])
    frame = pd.DataFrame({"wave": x, "bands": codes, "noisy": x + rng.normal(0, 1.5, N),
                          "age": rng.integers(18, 65, N), "y": y})
    reasons, _ = _screen(frame, "y")
    assert set(reasons) == {"wave", "bands"} and all("R2 0.99" in r or "R2 1.0" in r for r in reasons.values())
    label = np.where(np.floor(x) % 2 == 0, "even", "odd")
    classes = pd.DataFrame({"wave": x, "noisy": x + rng.normal(0, 1.5, N), "label": label})
    reasons, _ = _screen(classes, "label", "classification")
    assert list(reasons) == ["wave"] and "balanced accuracy" in reasons["wave"]
