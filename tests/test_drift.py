"""Drift checks: the training profile in the card, ``mlkiln drift`` on real files, and its refusals."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

import mlkiln
from mlkiln import drift
from mlkiln.examples import load_example
from common import cli, copy_bundle, run_cli


@pytest.fixture(scope="module")
def fresh(diamonds):
    """Other diamonds than the training sample, from the same table: no drift expected."""
    full = load_example("diamonds")
    return full.sample(4000, random_state=11).drop(columns="price").reset_index(drop=True)


@pytest.fixture(scope="module")
def shifted(fresh):
    """The same rows with three kinds of drift: a scaled number, an unseen category, missing values."""
    frame = fresh.copy()
    frame["carat"] = frame["carat"] * 1.6
    frame.loc[frame.index[:300], "color"] = "Z"
    frame.loc[frame.index[:800], "depth"] = np.nan
    return frame


def _write(frame, tmp_path, name):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_profile_is_compact_and_describes_the_training_rows(diamonds_run):
    profile = diamonds_run.card.profile
    assert profile["version"] == drift.PROFILE_VERSION
    assert set(profile["columns"]) == {c.name for c in diamonds_run.card.columns}
    assert profile["rows"] == diamonds_run.card.split.n_train
    assert len(json.dumps(profile)) < 4000  # 9 columns and the predictions
    carat = profile["columns"]["carat"]
    assert len(carat["shares"]) == len(carat["edges"]) + 1 <= drift.BINS
    assert sum(carat["shares"]) + carat["missing"] == pytest.approx(1, abs=1e-4)
    cut = profile["columns"]["cut"]
    assert cut["n_categories"] == 5 and set(cut["categories"]) == {"Fair", "Good", "Very Good", "Premium", "Ideal"}
    assert profile["prediction"]["value"]["kind"] == "numeric"


def test_no_drift_on_data_from_the_same_table(diamonds_run, fresh):
    result = drift.check(diamonds_run.model, fresh)
    assert result.rows == len(fresh)
    assert all(s.psi < drift.MODERATE for s in [*result.columns, *result.predictions]), result.to_dict()
    assert all(s.unseen == 0 for s in result.columns if s.kind == "categorical")


def test_shifts_are_measured_exactly(diamonds_run, shifted):
    result = drift.check(diamonds_run.model, shifted)
    by_name = {s.name: s for s in result.columns}
    assert result.columns[0].psi >= result.columns[-1].psi
    assert by_name["carat"].severity == "major"
    assert by_name["color"].unseen == pytest.approx(300 / len(shifted), abs=1e-5)
    assert by_name["depth"].missing_new == pytest.approx(800 / len(shifted), abs=1e-5)
    assert by_name["depth"].missing_train == 0
    spec = diamonds_run.card.profile["columns"]["carat"]
    outside = ((shifted["carat"] < spec["min"]) | (shifted["carat"] > spec["max"])).mean()
    assert by_name["carat"].out_of_range == pytest.approx(outside, abs=1e-5)
    assert result.predictions[0].psi > drift.MODERATE  # heavier stones, higher prices


def test_psi_matches_an_independent_computation(diamonds_run, shifted):
    spec = diamonds_run.card.profile["columns"]["carat"]
    bins = pd.cut(shifted["carat"], [-np.inf, *spec["edges"], np.inf], right=True)
    new = bins.value_counts(sort=False).to_numpy() / len(shifted)
    train = np.asarray(spec["shares"])
    new, train = np.append(new, 0.0), np.append(train, spec["missing"])  # the missing bin
    e, a = np.maximum(train, drift.EPSILON), np.maximum(new, drift.EPSILON)
    expected = float(np.sum((a - e) * np.log(a / e)))
    got = next(s for s in drift.check(diamonds_run.model, shifted).columns if s.name == "carat")
    assert got.psi == pytest.approx(expected, abs=1e-4)


def test_a_few_rows_drift_within_their_sampling_noise_and_are_told_so(diamonds_run, diamonds_bundle, fresh, shifted,
                                                                       tmp_path):
    """20 rows of the same table drift "major" by chance alone (empty decile bins); each column's noise, the PSI
    that samples of 20 rows of the training shares reach, covers the shifts of such samples, and the check says
    the rows are few. On 4,000 rows the noise is small, says nothing, and a real shift stands far above it."""
    pairs = []
    for seed in range(10):
        result = drift.check(diamonds_run.model, fresh.sample(20, random_state=seed))
        pairs += [(s.psi, s.noise) for s in result.columns]
        assert result.few_rows() and "20 rows are few for PSI" in result.few_rows()
    assert max(psi for psi, _ in pairs) >= drift.MAJOR  # chance alone looks major
    assert np.mean([psi <= noise for psi, noise in pairs]) >= 0.8  # ... and within the noise
    many = drift.check(diamonds_run.model, shifted)
    assert many.few_rows() is None and all(s.noise < drift.MODERATE for s in many.columns)
    carat = next(s for s in many.columns if s.name == "carat")
    assert carat.psi > 10 * carat.noise and not carat.to_dict()["within_noise"]
    twenty = _write(fresh.sample(20, random_state=0), tmp_path, "twenty.csv")
    done = cli("drift", diamonds_bundle, twenty)
    assert done.returncode == 0 and "warning: 20 rows are few for PSI" in done.stderr, done.stderr
    assert "(noise)" in done.stdout
    # --fail-above counts no shift within its column's noise: exit 3 only where a column drifted beyond it
    noisy = [s for s in drift.check(diamonds_run.model, fresh.sample(20, random_state=0)).columns
             if s.psi > 0.25 and s.psi <= s.noise]
    assert noisy  # chance alone passed 0.25 here
    calm = cli("drift", diamonds_bundle, twenty, "--fail-above", "0.25", "-o", tmp_path / "calm.html")
    beyond = [s for s in drift.check(diamonds_run.model, fresh.sample(20, random_state=0)).columns
              if s.psi > max(0.25, s.noise)]
    assert calm.returncode == (3 if beyond else 0), calm.stderr
    assert "within the sampling noise of so few rows" in calm.stderr
    doc = json.loads((tmp_path / "twenty-drift.json").read_text())
    assert doc["few_rows"].startswith("20 rows") and all("noise" in c for c in doc["columns"])
    assert "20 rows are few for PSI" in (tmp_path / "twenty-drift.html").read_text()


def test_classification_profile_and_predictions(failure_run, failure_csv):
    profile = failure_run.card.profile
    assert set(profile["prediction"]) >= {"class", "probability", "classes", "threshold"}
    data = pd.read_csv(failure_csv).sample(3000, random_state=3)
    same = drift.check(failure_run.model, data)
    assert [s.name for s in same.predictions] == ["predicted class", "P(positive class)"]
    hot = data.assign(**{"Torque [Nm]": data["Torque [Nm]"] * 1.5})
    assert next(s for s in drift.check(failure_run.model, hot).columns if s.name == "Torque [Nm]").severity == "major"


def test_a_model_of_few_distinct_probabilities_does_not_drift_on_its_own_table():
    """The prediction's profile is the final model's on the test split, the model that scores new rows.

    Profiled from the folds' models instead, 20 boosted trees gave each fold's probabilities their own few
    values, and the model's predictions on its training table drifted "major" (PSI 5.3) against them.
    """
    table = load_example("machine-failure-synthetic", rows=4000).drop(columns=["RNF"])
    run = mlkiln.train(table, target="Machine failure", models=["hgb"], ensemble=False)
    prediction = run.card.profile["prediction"]
    assert prediction["source"] == "test" and prediction["rows"] == run.card.split.n_test
    result = drift.check(run.model, table.drop(columns="Machine failure"))
    assert all(s.psi < drift.MODERATE for s in result.predictions), result.to_dict()["predictions"]
    # fewer test rows than a profile needs: the out-of-fold predictions, as before
    small = mlkiln.train(table.head(600), target="Machine failure", models=["logistic_l2"], ensemble=False)
    assert small.card.split.n_test < drift.PREDICTION_MIN_ROWS
    assert small.card.profile["prediction"]["source"] == "out-of-fold"
    assert small.card.profile["prediction"]["rows"] == small.card.split.n_train


def test_cli_writes_the_page_and_json_beside_the_data(diamonds_bundle, shifted, tmp_path):
    data = _write(shifted, tmp_path, "week12.csv")
    done = run_cli("drift", diamonds_bundle, data)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["column", "kind", "PSI"] and lines[2].split()[0] == "carat"
    html = (tmp_path / "week12-drift.html").read_text()
    assert "<img" in html and "carat" in html and "Content-Security-Policy" in html
    doc = json.loads((tmp_path / "week12-drift.json").read_text())
    assert doc["schema_version"] == 1 and doc["data"]["rows"] == len(shifted)
    assert doc["columns"][0]["name"] == "carat" and doc["epsilon"] == drift.EPSILON


def test_fail_above_exits_3_only_when_exceeded(diamonds_bundle, shifted, fresh, tmp_path):
    out = tmp_path / "out" / "d.html"
    out.parent.mkdir()
    done = cli("drift", diamonds_bundle, _write(shifted, tmp_path, "s.csv"), "-o", out, "--fail-above", "0.25", "-q")
    assert done.returncode == 3 and "'carat'" in done.stderr
    assert out.is_file() and out.with_suffix(".json").is_file()
    calm = cli("drift", diamonds_bundle, _write(fresh, tmp_path, "f.csv"), "--fail-above", "0.25", "-q")
    assert calm.returncode == 0, calm.stderr


def test_missing_columns_are_named(diamonds_bundle, fresh, tmp_path):
    done = cli("drift", diamonds_bundle, _write(fresh.drop(columns=["carat", "cut"]), tmp_path, "d.csv"))
    assert done.returncode == 2 and "'carat'" in done.stderr and "'cut'" in done.stderr
    assert not (tmp_path / "d-drift.html").exists()


@pytest.mark.parametrize("content", ["", "carat,cut,color,clarity,depth,table,x,y,z\n"])
def test_empty_data_is_refused(diamonds_bundle, tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    done = cli("drift", diamonds_bundle, path)
    assert done.returncode == 2 and done.stderr.startswith("mlkiln: error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "empty-drift.html").exists()


def test_bundle_without_profile_says_to_retrain(diamonds_bundle, fresh, tmp_path):
    old = copy_bundle(diamonds_bundle, tmp_path)
    card = json.loads((old / "card.json").read_text())
    del card["profile"]
    (old / "card.json").write_text(json.dumps(card, indent=2))
    digest = hashlib.sha256((old / "card.json").read_bytes()).hexdigest()
    manifest = [f"{digest}  card.json" if line.endswith("  card.json") else line
                for line in (old / "MANIFEST.sha256").read_text().splitlines()]
    (old / "MANIFEST.sha256").write_text("\n".join(manifest) + "\n")
    assert mlkiln.load(old).card.profile is None  # a valid bundle, only older
    done = cli("drift", old, _write(fresh, tmp_path, "f.csv"))
    assert done.returncode == 2 and "train it again" in done.stderr


def test_output_inside_the_bundle_is_refused(diamonds_bundle, fresh, tmp_path):
    done = cli("drift", diamonds_bundle, _write(fresh, tmp_path, "f.csv"), "-o", f"{diamonds_bundle}/drift.html")
    assert done.returncode == 2 and "inside a bundle" in done.stderr


def test_a_column_of_thousands_of_codes_all_new_is_unseen_and_drifts(threaded_bundle, threaded_csv):
    """At 100 listed categories, 5,000 codes replaced by new ones drifted "stable" with nothing unseen; pooled with
    the rare known ones, new values moved no share: they have a bin of their own."""
    model = mlkiln.load(threaded_bundle)
    spec = model.card.profile["columns"]["code"]
    assert spec["n_categories"] == len(spec["categories"]) > 3000  # the training rows hold 3,968 of the 5,000
    frame = pd.read_csv(threaded_csv).drop(columns="y")
    # the table itself: its test split's rows bring codes the training rows lack, as the profile expects
    assert 0.1 < spec["unseen"] < 0.35  # about 1,000 of the 5,000 codes are in no training row
    same = {s.name: s for s in drift.check(model, frame).columns}
    assert same["code"].unseen == pytest.approx(spec["unseen"] * 0.2, abs=0.01) and same["code"].psi < drift.MODERATE
    test_rows = frame.sample(2000, random_state=5).assign(code=lambda f: np.where(  # rows like the test split's
        np.random.default_rng(5).random(2000) < spec["unseen"], "fresh" + f["code"], f["code"]))
    like = {s.name: s for s in drift.check(model, test_rows).columns}
    assert like["code"].psi < drift.MODERATE
    new = {s.name: s for s in drift.check(model, frame.assign(code="new" + frame["code"])).columns}
    assert new["code"].unseen == 1.0 and new["code"].psi > drift.MAJOR
