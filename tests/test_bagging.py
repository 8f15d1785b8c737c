"""Bagging the final gradient boosting model: its fit on all rows averaged with fits on 80 % of them."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import BaggingClassifier, BaggingRegressor, VotingRegressor
from sklearn.model_selection import FixedThresholdClassifier

import mlkiln
from common import cli, copy_bundle, rehash
from mlkiln.errors import ArgumentError
from mlkiln.pipeline import BAG_FITS, BAG_ROWS, HGB_PORTFOLIO
from mlkiln.selection import BAG_TRIALS_ROWS, Plan, Selection, bag_fits
from mlkiln.tuning import FamilyResult


def test_the_bagged_model_averages_its_fit_on_all_rows_with_fits_on_part_of_them(bagged_run, ensemble_csv):
    card, pipe = bagged_run.card, bagged_run.pipeline
    assert card.model.bagged == BAG_FITS and card.model.estimator == "HistGradientBoostingRegressor"
    vote = pipe[-1]
    assert isinstance(vote, VotingRegressor) and [n for n, _ in vote.estimators] == ["refit", "bagged"]
    bagging = vote.named_estimators_["bagged"]
    assert isinstance(bagging, BaggingRegressor) and len(bagging.estimators_) == BAG_FITS
    n = card.split.n_train
    drawn = [np.unique(rows) for rows in bagging.estimators_samples_]
    assert all(len(rows) == int(BAG_ROWS * n) for rows in drawn)  # each fit its own 80 %, without replacement
    assert len({tuple(rows) for rows in drawn}) == BAG_FITS
    # each fit saw only its rows: its trees differ from the fit on all rows, and from each other
    X = bagged_run.model.prepare(pd.read_csv(ensemble_csv))
    matrix = pipe[0].transform(X)
    fits = [vote.named_estimators_["refit"], *bagging.estimators_]
    assert all(fit.steps[-1][1].n_iter_ == fits[0].n_iter_ for fit in fits[1:])  # each fit the same model
    predictions = np.array([fit.predict(matrix) for fit in fits])
    assert len({p.round(6).tobytes() for p in predictions}) == BAG_FITS + 1
    # the model's prediction is the plain average of the six fits, recomputed here fit by fit
    np.testing.assert_allclose(pipe.predict(X), predictions.mean(axis=0), rtol=1e-12)
    assert card.model.trees == fits[0].n_iter_  # the card's trees are those of the fit on all rows


def test_a_rare_class_threshold_cuts_the_bagged_vote(bagged_failure_run, failure_csv):
    card, pipe = bagged_failure_run.card, bagged_failure_run.pipeline
    assert card.model.bagged == BAG_FITS and card.model.threshold is not None
    cut = pipe[-1]
    assert isinstance(cut, FixedThresholdClassifier)
    bagging = cut.estimator_.named_estimators_["bagged"]
    assert isinstance(bagging, BaggingClassifier)
    X = bagged_failure_run.model.prepare(pd.read_csv(failure_csv).head(3000))
    matrix = pipe[0].transform(X)
    fits = [cut.estimator_.named_estimators_["refit"], *bagging.estimators_]
    proba = np.mean([fit.predict_proba(matrix) for fit in fits], axis=0)
    np.testing.assert_allclose(pipe.predict_proba(X), proba, rtol=1e-12)
    expected = np.asarray(card.classes)[(proba[:, 1] >= card.model.threshold).astype(int)]
    assert [str(v) for v in pipe.predict(X)] == [str(v) for v in expected]
    # the compiled predictor serves it: a batch, and rows one at a time, as scikit-learn predicts them
    model = bagged_failure_run.model
    assert model.predictor.compiled, model.predictor.reason
    labels, scored = model.predictor.score(X)
    assert [str(v) for v in labels] == [str(v) for v in expected]
    np.testing.assert_allclose(scored, proba, rtol=1e-9)
    for i, row in enumerate(X.head(30).to_dict("records")):
        label, row_proba = model.predictor.score_row(row)
        assert str(label) == str(expected[i])
        np.testing.assert_allclose(row_proba, proba[i], rtol=1e-9)


def test_a_bagged_bundle_loads_from_skops_alone_and_predicts_alike(bagged_bundle, ensemble_csv, tmp_path):
    path = copy_bundle(bagged_bundle, tmp_path)
    (path / "model.joblib").unlink()
    manifest = path / "MANIFEST.sha256"
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if not line.endswith("model.joblib")))
    rehash(path)
    audited, full = mlkiln.load(path), mlkiln.load(bagged_bundle)
    frame = pd.read_csv(ensemble_csv)
    assert audited.predictor.compiled and full.predictor.compiled
    np.testing.assert_allclose(audited.predict(frame), full.pipeline.predict(full.prepare(frame)), rtol=1e-9)


def test_the_report_and_summary_say_bagged(bagged_bundle):
    report = json.loads((Path(bagged_bundle) / "report.json").read_text())
    assert report["summary"]["bagged"] == BAG_FITS
    assert "Bagged:" in (Path(bagged_bundle) / "report.html").read_text()
    shown = cli("inspect", bagged_bundle)
    assert shown.returncode == 0 and f"bagged:     {BAG_FITS} more fits" in shown.stdout


def test_no_bagging_fits_once(ensemble_csv, tmp_path):
    result = cli("train", ensemble_csv, "--target", "price", "--models", "hgb", "--trials", "1", "--no-bagging",
                 "-o", tmp_path / "b", "-q")
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card["model"]["bagged"] == 0 and card["model"]["estimator"] == "HistGradientBoostingRegressor"


def test_max_latency_sets_the_bagging_aside_before_the_model(ensemble_csv):
    with pytest.raises(ArgumentError) as caught:
        mlkiln.train(ensemble_csv, target="price", models=["hgb"], trials=1, max_latency_us=0.001)
    message = str(caught.value)
    assert message.index("hgb bagged (") < message.index("hgb (")


def _selection(family: str, params: dict, started_ago: float, budget: float | None = None) -> Selection:
    result = FamilyResult(family, params, 0.5, 0.01, 0.1, 1.0, 1)
    start = time.perf_counter() - started_ago
    plan = Plan(start, None if budget is None else start + budget, 1000, 1250)
    return Selection([result], [result], None, {}, None, None, plan=plan)


FIXED = {**HGB_PORTFOLIO[0], "early_stopping": False, "max_iter": 100}


@pytest.mark.parametrize("family, params, started_ago, seconds, trees, rule, budget, expected", [
    ("hgb", FIXED, 100.0, 1.0, 100, "timed", None, BAG_FITS),  # 6 s of fits, 1.5 s of trees: within 40 % of 100 s
    ("hgb", FIXED, 10.0, 1.0, 100, "timed", None, 0),  # 7.5 s: over 40 % of 10 s and over 4 s
    ("hgb", FIXED, 10.0, 0.1, 100, "timed", None, BAG_FITS),  # 2.1 s: within the 4 s any run may spend
    ("hgb", FIXED, 10.0, 0.1, 1000, "timed", None, 0),  # many trees to write: 15.6 s
    ("hgb", FIXED, 100.0, 1.0, 100, "timed", 105.0, 0),  # the --budget ends first
    ("hgb", FIXED, 1.0, 50.0, 5000, "always", None, BAG_FITS),  # --trials: by rule, whatever the clock says
    ("hgb", FIXED, 1.0, 50.0, 5000, "always", 30.0, 0),  # ... but not past a --budget given too
    ("hgb", {**FIXED, "early_stopping": True}, 100.0, 0.1, 10, "timed", None, 0),  # its trees counted on its rows
    ("hgb", FIXED, 100.0, 0.1, 10, None, None, 0),  # --no-bagging
    ("ridge", {"alpha": 1.0}, 100.0, 0.1, 0, "timed", None, 0),  # not gradient boosting
    ("ensemble", {"hgb": 1.0}, 100.0, 0.1, 10, "always", None, 0),  # its vote averages models already
])
def test_when_bagging_is_worth_its_time(family, params, started_ago, seconds, trees, rule, budget, expected):
    selection = _selection(family, params, started_ago, budget)
    assert bag_fits(selection, seconds, 1000, rule, trees) == expected


def test_trials_bag_by_the_rows_alone():
    selection = _selection("hgb", FIXED, 1.0)
    assert bag_fits(selection, 1.0, BAG_TRIALS_ROWS, "always") == BAG_FITS
    assert bag_fits(selection, 1.0, BAG_TRIALS_ROWS + 1, "always") == 0
    assert bag_fits(selection, 1.0, 20, "always") == 0  # too few rows for a fit to leave some out


@pytest.mark.parametrize("value", ["no", 0, None])
def test_bagging_is_true_or_false(ensemble_csv, value):
    with pytest.raises(ArgumentError, match=f"bagging={value!r}: must be True or False"):
        mlkiln.train(ensemble_csv, target="price", bagging=value)
