"""The bundle: the course's three artifacts plus card and manifest, verified before loading."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import FixedThresholdClassifier

import mlkiln
import mlkiln.options
import mlkiln.pipeline
from common import copy_bundle, rehash
from mlkiln.card import CARD_VERSION, Card, Column
from mlkiln.pipeline import BAG_FITS
from mlkiln.errors import BundleError, MlkilnError

FILES = {"model.joblib", "model.skops", "requirements.txt", "train.py", "card.json", "report.html", "report.json",
         "MANIFEST.sha256"}

# a child interpreter in which ``import mlkiln`` fails, as on a machine without it
NO_MLKILN = "import sys; sys.modules['mlkiln'] = None\n"


def test_bundle_contents(diamonds_bundle, diamonds_run):
    path = Path(diamonds_bundle)
    assert FILES <= {p.name for p in path.iterdir()}
    card = json.loads((path / "card.json").read_text())
    assert card["target"] == "price" and card["task"] == "regression"
    assert card["data"]["sha256"] and len(card["data"]["sha256"]) == 64
    assert {c["name"] for c in card["schema"]["columns"]} == {"carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"}
    reqs = (path / "requirements.txt").read_text()
    for package in ("scikit-learn==", "numpy==", "pandas==", "joblib==", "scipy=="):
        assert package in reqs
    manifest = (path / "MANIFEST.sha256").read_text().split("\n")
    assert {line.split("  ")[1] for line in manifest if line} == FILES - {"MANIFEST.sha256"}


def test_load_predicts_like_the_run(diamonds_bundle, diamonds_run, diamonds):
    model = mlkiln.load(diamonds_bundle)
    np.testing.assert_array_equal(model.predict(diamonds), diamonds_run.predict(diamonds))


REPRODUCED = [("diamonds_bundle", "diamonds_csv", "price"), ("failure_bundle", "failure_csv", "Machine failure"),
              ("linear_bundle", "diamonds_csv", "price"), ("ensemble_bundle", "ensemble_csv", "price"),
              ("threaded_bundle", "threaded_csv", "y"), ("league_bundle", "league_csv", "result"),
              ("bagged_bundle", "ensemble_csv", "price"), ("bagged_failure_bundle", "failure_csv", "Machine failure"),
              ("text_bundle", "titanic_csv", "survived")]
LOADED = [("diamonds_bundle", "diamonds_run"), ("ensemble_bundle", "ensemble_run"), ("bagged_bundle", "bagged_run")]


@pytest.fixture(scope="module")
def without_mlkiln(request, tmp_path_factory, diamonds_csv) -> Path:
    """One child interpreter in which ``import mlkiln`` fails, as on a machine without it: it runs every
    bundle's ``train.py`` (``<bundle>.joblib``) and loads ``model.joblib`` with plain joblib (``<bundle>.npy``,
    its predictions for the diamonds rows). One interpreter, not one per check: each start costs seconds."""
    folder = tmp_path_factory.mktemp("without-mlkiln")
    scripts = [(name, str(Path(request.getfixturevalue(name)) / "train.py"), request.getfixturevalue(data))
               for name, data, _ in REPRODUCED]
    models = [(name, str(Path(request.getfixturevalue(name)) / "model.joblib")) for name, _ in LOADED]
    code = NO_MLKILN + f"""
import runpy, sys
import joblib, numpy as np, pandas as pd
try:
    import mlkiln
    raise SystemExit("mlkiln should not be importable here")
except ImportError:
    pass
folder = {str(folder)!r}
for name, script, data in {scripts!r}:
    sys.argv = ["train.py", data, "-o", f"{{folder}}/{{name}}.joblib"]
    runpy.run_path(script, run_name="__main__")
frame = pd.read_csv({diamonds_csv!r}, engine="pyarrow")
for name in ("cut", "color", "clarity"):
    frame[name] = frame[name].astype(object)
frame = frame.drop(columns="price").astype({{c: float for c in ("carat", "depth", "table", "x", "y", "z")}})
for name, path in {models!r}:
    np.save(f"{{folder}}/{{name}}.npy", joblib.load(path).predict(frame))
"""
    result = subprocess.run([sys.executable, "-c", code], timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.mark.parametrize("bundle_fixture, run_fixture", LOADED)
def test_plain_joblib_load_without_mlkiln(request, without_mlkiln, bundle_fixture, run_fixture, diamonds_csv):
    run = request.getfixturevalue(run_fixture)
    # scikit-learn's own predictions (run.predict takes the compiled path: equal within 1e-9, not bit for bit)
    expected = run.pipeline.predict(run.model.prepare(pd.read_csv(diamonds_csv)))
    np.testing.assert_array_equal(np.load(without_mlkiln / f"{bundle_fixture}.npy"), expected)


@pytest.mark.parametrize("bundle_fixture, data_fixture, target", REPRODUCED)
def test_train_script_reproduces_predictions(request, without_mlkiln, bundle_fixture, data_fixture, target):
    bundle, data = request.getfixturevalue(bundle_fixture), request.getfixturevalue(data_fixture)
    import joblib

    model = mlkiln.load(bundle)
    if bundle_fixture == "threaded_bundle":  # its members fitted in joblib workers: train.py must fit them alike
        assert model.card.model.family == "ensemble" and "linear" in {m.family for m in model.card.model.members}
    rebuilt = joblib.load(without_mlkiln / f"{bundle_fixture}.joblib")
    X = model.prepare(pd.read_csv(data))
    np.testing.assert_array_equal(rebuilt.predict(X), model.pipeline.predict(X))
    if model.task == "classification":
        np.testing.assert_array_equal(rebuilt.predict_proba(X), model.pipeline.predict_proba(X))


def test_tampered_joblib_is_refused(diamonds_bundle, tmp_path):
    path = copy_bundle(diamonds_bundle, tmp_path)

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (path / "model.joblib").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(MlkilnError, match="model.joblib does not match"):
        mlkiln.load(path, trust_pickle=True)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("damage", ["truncate", "delete", "edit_card"])
def test_damaged_bundle_is_refused(diamonds_bundle, tmp_path, damage):
    path = copy_bundle(diamonds_bundle, tmp_path)
    if damage == "truncate":
        data = (path / "model.skops").read_bytes()
        (path / "model.skops").write_bytes(data[: len(data) // 2])
        match = "model.skops does not match"
    elif damage == "delete":
        (path / "model.skops").unlink()
        match = "model.skops is missing"
    else:
        card = json.loads((path / "card.json").read_text())
        card["metrics"]["test"]["r2"] = 1.0
        (path / "card.json").write_text(json.dumps(card))
        match = "card.json does not match"
    with pytest.raises(MlkilnError, match=match):
        mlkiln.load(path)


def test_bundle_without_its_pickle_loads_the_audited_model(diamonds_bundle, diamonds_csv, tmp_path, caplog):
    """A deployment may remove model.joblib so that no pickle ships: the audited model.skops still loads, and
    predicts as the full bundle does; a file that is there but edited is still refused."""
    path = copy_bundle(diamonds_bundle, tmp_path)
    (path / "model.joblib").unlink()
    (path / "report.html").unlink()
    rows = pd.read_csv(diamonds_csv, nrows=50).drop(columns="price")
    expected = mlkiln.load(diamonds_bundle).predict(rows)
    np.testing.assert_array_equal(mlkiln.load(path).predict(rows), expected)
    with caplog.at_level("WARNING", logger="mlkiln"):
        np.testing.assert_array_equal(mlkiln.load(path, trust_pickle=True).predict(rows), expected)
    assert "no model.joblib: loading the audited model.skops" in caplog.text
    (path / "train.py").write_text("# edited\n")
    with pytest.raises(MlkilnError, match="train.py does not match"):
        mlkiln.load(path)


def test_existing_output_needs_force(diamonds_run, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(MlkilnError, match="already exists"):
        diamonds_run.save(target)
    assert (target / "keep.txt").read_text() == "user data"
    # --force replaces what mlkiln wrote (a bundle, an empty folder), never a folder of someone's files
    with pytest.raises(MlkilnError, match=r"holds files mlkiln did not write \(keep.txt\)"):
        diamonds_run.save(target, force=True)
    assert (target / "keep.txt").read_text() == "user data"
    (target / "keep.txt").unlink()
    diamonds_run.save(target, force=True)
    diamonds_run.save(target, force=True)  # and again, over the bundle
    assert (target / "card.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary leftovers
    # a bundle inside a bundle would break the outer one's manifest, and the outer one's --force deleted it
    with pytest.raises(MlkilnError, match="is inside the bundle"):
        diamonds_run.save(target / "v2")
    (target / "notes").mkdir()
    (target / "notes" / "todo.txt").write_text("user data")
    with pytest.raises(MlkilnError, match="holds notes, which its MANIFEST.sha256 does not list"):
        diamonds_run.save(target, force=True)
    assert (target / "notes" / "todo.txt").read_text() == "user data"


@pytest.mark.parametrize("task, family", [(t, f) for t, fams in mlkiln.options.FAMILIES.items() for f in fams])
def test_every_family_loads_from_skops_with_the_allowlist(tmp_path, task, family):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=240), "c": rng.choice(["x", "y", None], size=240)})
    frame["y"] = frame["a"] * 3 + rng.normal(size=240) if task == "regression" else np.where(frame["a"] > 1, "rare", "common")
    run = mlkiln.train(frame, target="y", task=task, models=[family], trials=1)  # the fitted types, not the search
    model = mlkiln.load(run.save(tmp_path / "m"))  # audited skops, no pickle
    np.testing.assert_array_equal(model.predict(frame), run.predict(frame))
    final = run.pipeline[-1]  # the card names the fitted model (inside the threshold, if one was tuned)
    final = final.estimator_ if isinstance(final, FixedThresholdClassifier) else final
    # bagged gradient boosting (under --trials, by rule) is named by its fit on all rows
    assert model.card.model.bagged == (BAG_FITS if mlkiln.pipeline.REGISTRY[family].staged else 0)
    assert model.card.model.estimator == type(mlkiln.pipeline.unbagged(final)).__name__


def test_a_bundle_loaded_again_is_a_copy_of_the_model_audited_before(failure_bundle, failure_csv):
    frame = pd.read_csv(failure_csv, nrows=300)
    first, again = mlkiln.load(failure_bundle), mlkiln.load(failure_bundle)
    assert again.pipeline is not first.pipeline
    np.testing.assert_array_equal(again.predict_proba(frame), first.predict_proba(frame))
    threshold = first.pipeline.threshold  # the course's example: a tuned threshold around the pipeline
    again.pipeline.set_params(threshold=0.0)  # the caller's own copy: changing it changes no other load
    assert first.pipeline.threshold == mlkiln.load(failure_bundle).pipeline.threshold == threshold != 0.0


def test_card_round_trips_and_versions(diamonds_bundle, tmp_path):
    card = mlkiln.load(diamonds_bundle).card
    assert card.card_version == CARD_VERSION and Card.from_json(card.to_json()) == card
    assert isinstance(card.columns[0], Column) and card.schema.kinds["cut"] == "categorical"

    path = copy_bundle(diamonds_bundle, tmp_path)
    stored = json.loads((path / "card.json").read_text())
    del stored["card_version"]  # a card of mlkiln 0.1, before versions: the same fields, read as they are
    (path / "card.json").write_text(json.dumps(stored))
    rehash(path)
    assert mlkiln.load(path).card.model == card.model

    stored["card_version"], stored["mlkiln_version"] = CARD_VERSION + 1, "9.0.0"
    (path / "card.json").write_text(json.dumps(stored))
    rehash(path)
    with pytest.raises(BundleError, match=rf"version {CARD_VERSION + 1}, written by mlkiln 9.0.0.*mlkiln>=9.0.0"):
        mlkiln.load(path)
    stored["mlkiln_version"] = mlkiln.__version__  # a newer card from this very version: edited, not outdated
    (path / "card.json").write_text(json.dumps(stored))
    rehash(path)
    with pytest.raises(BundleError, match="names no newer mlkiln: it was edited") as refused:
        mlkiln.load(path)
    assert "pip install" not in str(refused.value)
    (path / "card.json").write_text("[" * 100_000 + "]" * 100_000)  # JSON too deep for Python's parser
    rehash(path)
    with pytest.raises(BundleError, match="nested too deeply to be a model card"):
        mlkiln.load(path)
    (path / "card.json").write_text(json.dumps(stored))
    rehash(path)
    listed = (path / "MANIFEST.sha256").read_text()
    with open(path / "MANIFEST.sha256", "a") as manifest:  # an editor's blank last line lists nothing
        manifest.write("\n\n")
    with pytest.raises(BundleError, match="names no newer mlkiln"):  # read as far as the card, as before
        mlkiln.load(path)
    with open(path / "MANIFEST.sha256", "a") as manifest:
        manifest.write(f"{'0' * 64}  ../../data.csv\n")
    with pytest.raises(BundleError, match=r"lists '../../data.csv', not a file of the bundle's own folder"):
        mlkiln.load(path)
    (path / "MANIFEST.sha256").write_text(listed)
    del stored["task"]
    stored["card_version"] = CARD_VERSION
    (path / "card.json").write_text(json.dumps(stored))
    rehash(path)
    with pytest.raises(BundleError, match=rf"card.json \(version {CARD_VERSION}\) lacks Card.task"):
        mlkiln.load(path)
    stored["task"] = card.task
    for key, value, message in (("metrics", "x", r"metrics: expected dict, got str 'x'"),
                                ("schema", {**stored["schema"], "columns": [{**stored["schema"]["columns"][0],
                                                                             "missing": "none"}]},
                                 r"schema.columns.missing: expected int or float, got str 'none'"),
                                ("split", {**stored["split"], "seed": True}, r"split.seed: expected int, got bool True")):
        (path / "card.json").write_text(json.dumps({**stored, key: value}))
        rehash(path)
        with pytest.raises(BundleError, match=rf"card.json \(version {CARD_VERSION}\) is malformed: {message}$"):
            mlkiln.load(path)


def test_the_skops_file_written_with_indexed_names_is_skops_own():
    # bundle.model_files lets skops' archive answer "is this name written?" from an index: the same entries,
    # arrays and schema as skops' own dumps (but for skops' object ids, which differ from dump to dump)
    import io
    import re
    import zipfile

    import skops.io as sio
    import skops.io._persist
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlkiln import bundle

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = HistGradientBoostingClassifier(max_iter=20, early_stopping=False, random_state=0).fit(X, y)
    ours = zipfile.ZipFile(io.BytesIO(bundle.model_files(model)[bundle.MODEL_SKOPS]))
    theirs = zipfile.ZipFile(io.BytesIO(sio.dumps(model, compression=zipfile.ZIP_DEFLATED)))
    assert skops.io._persist.ZipFile is zipfile.ZipFile  # put back
    names = dict(zip(ours.namelist(), theirs.namelist()))
    assert len(names) == len(theirs.namelist()) > 60
    assert all(ours.read(a) == theirs.read(b) for a, b in names.items() if a.endswith(".npy"))

    def schema(archive, rename=lambda name: name):
        text = re.sub(r"\d+\.npy", lambda m: rename(m.group()), archive.read("schema.json").decode())
        return re.sub(r'"__id__": \d+', '"__id__": 0', text)

    assert schema(ours, names.get) == schema(theirs)
    data = bundle.model_files(model)[bundle.MODEL_SKOPS]
    loaded = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
