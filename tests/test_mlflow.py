"""MLflow interoperability: ``mlkiln export --format mlflow`` and ``POST /invocations`` on ``mlkiln serve``.

The exported model is loaded by MLflow in a child interpreter where ``import
mlkiln`` fails; the service is a real server on 127.0.0.1.
"""

import importlib.util
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from threadpoolctl import threadpool_limits

import mlkiln
from common import cli, copy_bundle, free_port, one_line_error, request, wait_until_up
from test_bundle import NO_MLKILN

if importlib.util.find_spec("mlflow") is None:  # not imported here: 2 s of every worker's collection, for a child's use
    pytest.skip("mlflow is not installed", allow_module_level=True)
uvicorn = pytest.importorskip("uvicorn")
from mlkiln.serve import App  # noqa: E402


@pytest.fixture(scope="module")
def dated_bundle(tmp_path_factory) -> str:
    """A small table with a date column, numbers as text and codes as text (a lot number, or "x"): the rules a
    bare pipeline does not know."""
    rng = np.random.default_rng(3)
    n = 300
    days = rng.integers(0, 1000, n)
    size = rng.normal(50, 10, n)
    frame = pd.DataFrame({
        "when": (pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
        "size": [f"{v:,.1f}" for v in size * 100],  # "5,012.3": text that mlkiln reads as a number
        "shop": rng.choice(["north", "south", "east"], n),
        "lot": (lot := rng.choice(["1", "2", "3", "x"], n)),
        "sales": days * 0.5 + size * 3 + (lot == "3") * 200 + rng.normal(0, 5, n),
    })
    path = tmp_path_factory.mktemp("data") / "sales.csv"
    frame.to_csv(path, index=False)
    return str(mlkiln.train(str(path), target="sales", models=["ridge"]).save(tmp_path_factory.mktemp("bundles") / "dated"))


def _export(bundle, tmp_path) -> Path:
    out = tmp_path / "mlflow-model"
    result = cli("export", bundle, "--format", "mlflow", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def _mlflow_predict(jobs: dict[str, tuple[Path, pd.DataFrame, str]], tmp_path) -> dict[str, np.ndarray]:
    """``{name: predictions}`` of exported models, each ``(model directory, frame, "pyfunc" or "sklearn")``,
    loaded by MLflow in one child interpreter without mlkiln (one start: importing MLflow takes seconds)."""
    plan = []
    for name, (model_dir, frame, flavor) in jobs.items():
        data = tmp_path / f"{name}-in.json"
        frame.to_json(data, orient="split", index=False)
        plan.append((str(model_dir), str(data), str(tmp_path / f"{name}-out.npy"), flavor))
    code = NO_MLKILN + f"""
import json, mlflow.pyfunc, mlflow.sklearn, numpy as np, pandas as pd
try:
    import mlkiln
    raise SystemExit("mlkiln should not be importable here")
except ImportError:
    pass
for path, data, out, flavor in {plan!r}:
    split = json.load(open(data))
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    model = (mlflow.pyfunc if flavor == "pyfunc" else mlflow.sklearn).load_model(path)
    try:
        np.save(out, np.asarray(model.predict(frame)), allow_pickle=False)
    except Exception as exc:  # what the caller gets instead: the message
        open(out + ".error", "w").write(f"{{type(exc).__name__}}: {{exc}}")
"""
    env = {**__import__("os").environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: np.load(tmp_path / f"{name}-out.npy", allow_pickle=False) if (tmp_path / f"{name}-out.npy").exists()
            else (tmp_path / f"{name}-out.npy.error").read_text() for name in jobs}


#: rows of each exported model's test, as a user would send them
DATED_ROWS = pd.DataFrame({"when": ["2021-03-04", "2022-12-31", None], "size": ["4,990.5", "6,100.0", "5,000"],
                           "shop": ["north", "west", "south"], "lot": [3.0, 2.0, np.nan]})  # no "x": numbers


@pytest.fixture(scope="module")
def loaded_by_mlflow(failure_bundle, failure_csv, dated_bundle, tmp_path_factory):
    """The failure and dated bundles exported, and their predictions as MLflow loads them, in one child."""
    tmp_path = tmp_path_factory.mktemp("mlflow")
    (tmp_path / "failure").mkdir()
    (tmp_path / "dated").mkdir()
    failure, dated = _export(failure_bundle, tmp_path / "failure"), _export(dated_bundle, tmp_path / "dated")
    frame = pd.read_csv(failure_csv).sample(400, random_state=2)
    features = frame[[c.name for c in mlkiln.load(failure_bundle).card.columns]]
    # the sklearn flavour is the bare pipeline: these columns are already conformed
    # beyond float32, as mlkiln predict and serve refuse it (inf itself does not survive to_json: it becomes null)
    too_large = features.head(3).assign(**{"Torque [Nm]": [40.0, 1e39, 41.0]})
    predicted = _mlflow_predict({"failure": (failure, features, "pyfunc"), "failure-sklearn": (failure, features, "sklearn"),
                                 "dated": (dated, DATED_ROWS, "pyfunc"), "too-large": (failure, too_large, "pyfunc"),
                                 "awkward": (failure, awkward(features), "pyfunc"),
                                 "empty": (failure, features.head(0), "pyfunc")}, tmp_path)
    return {"failure_dir": failure, "dated_dir": dated, "frame": frame, **predicted}


def awkward(features: pd.DataFrame) -> pd.DataFrame:
    """Rows mlkiln predict scores that MLflow's type check refused: a missing value in a column of whole numbers
    (tool wear), whole numbers in a column of decimals (air temperature)."""
    rows = features.head(6).copy()
    rows["Tool wear [min]"] = rows["Tool wear [min]"].astype("float64")
    rows.iloc[1, rows.columns.get_loc("Tool wear [min]")] = np.nan
    rows["Air temperature [K]"] = rows["Air temperature [K]"].round().astype("int64")
    return rows


def test_export_writes_an_mlflow_model_with_signature_example_requirements_and_manifest(failure_bundle, tmp_path):
    out = _export(failure_bundle, tmp_path)
    spec = yaml.safe_load((out / "MLmodel").read_text())
    assert spec["flavors"]["python_function"]["loader_module"] == "mlkiln_mlflow_loader"
    assert spec["flavors"]["sklearn"]["serialization_format"] == "skops"
    skops_file = out / spec["flavors"]["sklearn"]["pickled_model"]
    assert skops_file.read_bytes() == (Path(failure_bundle) / "model.skops").read_bytes()
    import hashlib

    manifest = hashlib.sha256((Path(failure_bundle) / "MANIFEST.sha256").read_bytes()).hexdigest()
    assert spec["metadata"]["mlkiln_bundle_manifest_sha256"] == manifest
    assert spec["metadata"]["target"] == "Machine failure" and spec["metadata"]["task"] == "classification"
    # every column required, of type "any": the loader applies mlkiln's rules; the raw types are metadata
    inputs = {c["name"]: (c["type"], c["required"]) for c in json.loads(spec["signature"]["inputs"])}
    assert set(inputs.values()) == {("any", True)}
    assert spec["metadata"]["mlkiln_input_types"] == {
        "Type": "string", "Air temperature [K]": "double", "Process temperature [K]": "double",
        "Rotational speed [rpm]": "long", "Torque [Nm]": "double", "Tool wear [min]": "long"}
    assert json.loads(spec["signature"]["outputs"]) == [{"type": "long", "required": True}]
    example = json.loads((out / "input_example.json").read_text())
    assert example["columns"] == list(inputs) and example["data"][0][0] == "L"
    pins = set((out / "requirements.txt").read_text().split())
    bundle_pins = {line for line in (Path(failure_bundle) / "requirements.txt").read_text().splitlines()
                   if line and not line.startswith("#")}
    assert bundle_pins <= pins and any(p.startswith("mlflow==") for p in pins)


def test_exported_classifier_predicts_like_the_bundle_without_mlkiln(failure_bundle, loaded_by_mlflow):
    model = mlkiln.load(failure_bundle)
    with threadpool_limits(1):
        expected = model.predict(loaded_by_mlflow["frame"])
    got = loaded_by_mlflow["failure"]
    np.testing.assert_array_equal(got, expected)
    assert got.sum() > 0  # the rows include failures the model finds
    np.testing.assert_array_equal(loaded_by_mlflow["failure-sklearn"], expected)


def test_pyfunc_scores_the_rows_mlkiln_predict_scores(failure_bundle, loaded_by_mlflow):
    rows = awkward(loaded_by_mlflow["frame"][[c.name for c in mlkiln.load(failure_bundle).card.columns]])
    with threadpool_limits(1):
        expected = mlkiln.load(failure_bundle).predict(rows)
    np.testing.assert_array_equal(loaded_by_mlflow["awkward"], expected)


def test_pyfunc_scores_no_rows_as_mlkiln_predict_does(loaded_by_mlflow):
    assert len(loaded_by_mlflow["empty"]) == 0  # scikit-learn itself refuses 0 rows


def test_pyfunc_refuses_a_value_mlkiln_refuses(failure_bundle, loaded_by_mlflow):
    """It scored a number beyond float32 as if it were missing, where mlkiln predict and serve refuse it."""
    assert loaded_by_mlflow["too-large"] == "ValueError: column 'Torque [Nm]' expects a number, got 1e+39 in row 2"
    frame = loaded_by_mlflow["frame"].head(3).assign(**{"Torque [Nm]": [40.0, 1e39, 41.0]})
    with pytest.raises(mlkiln.MlkilnError, match=re.escape("column 'Torque [Nm]' expects a number, got 1e+39 in row 2")):
        mlkiln.load(failure_bundle).predict(frame)


def test_pyfunc_applies_mlkilns_rules_to_dates_and_number_text(dated_bundle, loaded_by_mlflow):
    model = mlkiln.load(dated_bundle)
    as_text = DATED_ROWS.assign(lot=["3", "2", None])  # the lot codes as training read them
    np.testing.assert_allclose(loaded_by_mlflow["dated"], model.predict(as_text), rtol=1e-9)
    np.testing.assert_allclose(model.predict(DATED_ROWS), model.predict(as_text), rtol=1e-12)
    assert model.predict(as_text)[0] > model.predict(as_text.assign(lot="2"))[0] + 100  # lot 3 is read as lot 3
    spec = yaml.safe_load((loaded_by_mlflow["dated_dir"] / "MLmodel").read_text())
    # numbers that arrived as text were text in training; the loader reads them
    assert spec["metadata"]["mlkiln_input_types"] == {"when": "string", "size": "string", "shop": "string",
                                                      "lot": "string"}


def test_export_refuses_existing_directory_tampered_bundle_and_leaves_nothing(diamonds_bundle, tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    one_line_error(cli("export", diamonds_bundle, "--format", "mlflow", "-o", out), "already exists")
    one_line_error(cli("export", diamonds_bundle, "--format", "mlflow", "-o", out, "--force"),
                   "holds files mlkiln did not write")  # --force replaces only what mlkiln wrote
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert cli("export", diamonds_bundle, "--format", "mlflow", "-o", out, "--force").returncode == 0
    assert cli("export", diamonds_bundle, "--format", "mlflow", "-o", out, "--force").returncode == 0
    assert (out / "MLmodel").is_file()

    bad = copy_bundle(diamonds_bundle, tmp_path)
    with open(bad / "model.skops", "ab") as f:
        f.write(b"x")
    target = tmp_path / "from-bad"
    one_line_error(cli("export", bad, "--format", "mlflow", "-o", target), "model.skops does not match")
    assert not target.exists()
    inside = Path(diamonds_bundle) / "mlflow-model"  # a directory inside a bundle: its manifest would not vouch for it
    one_line_error(cli("export", diamonds_bundle, "--format", "mlflow", "-o", inside), "is inside a bundle")
    assert not inside.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture(scope="module")
def server(failure_bundle):
    model = mlkiln.load(failure_bundle)
    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(App(model), host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    wait_until_up(port)
    yield port, model
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def rows(failure_csv) -> pd.DataFrame:
    return pd.read_csv(failure_csv).sample(25, random_state=5).reset_index(drop=True)


def _bodies(rows: pd.DataFrame) -> dict:
    records = json.loads(rows.to_json(orient="records"))
    split = json.loads(rows.to_json(orient="split", index=False))
    return {"dataframe_split": {"dataframe_split": split}, "dataframe_records": {"dataframe_records": records},
            "instances": {"instances": records}}


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances"])
def test_invocations_answers_each_mlflow_body_like_predict(server, rows, form):
    port, model = server
    status, body = request(port, "POST", "/invocations", _bodies(rows)[form])
    assert status == 200, body
    with threadpool_limits(1):
        expected = model.predict(rows).tolist()
    assert body == {"predictions": expected}


def test_invocations_accept_mlflow_s_optional_params_and_index(server, rows):
    port, _ = server
    split = json.loads(rows.head(2).to_json(orient="split"))  # with its "index", as pandas writes it
    plain = request(port, "POST", "/invocations", {"dataframe_split": {k: split[k] for k in ("columns", "data")}})
    assert request(port, "POST", "/invocations", {"dataframe_split": split, "params": {"x": 1}}) == plain
    assert plain[0] == 200


def test_invocations_empty_rows_give_no_predictions(server, rows):
    port, _ = server
    split = {"columns": list(rows.columns), "data": []}
    assert request(port, "POST", "/invocations", {"dataframe_split": split}) == (200, {"predictions": []})
    for key in ("dataframe_records", "instances"):  # no rows, so no columns either: still empty in, empty out
        assert request(port, "POST", "/invocations", {key: []}) == (200, {"predictions": []})


@pytest.mark.parametrize("body, status, message", [
    ({"inputs": [[1, 2]]}, 400, "exactly one of dataframe_split, dataframe_records, instances"),
    ([{"Type": "L"}], 400, "exactly one of"),
    ({"dataframe_records": [], "instances": []}, 400, "exactly one of"),
    ({"dataframe_split": {"columns": ["Type"]}}, 400, 'dataframe_split must be an object with "columns"'),
    ({"dataframe_split": {"columns": ["Type", "Torque [Nm]"], "data": [["L"]]}}, 400, "row 1 must be a list of 2 values"),
    ({"dataframe_split": {"columns": [1], "data": [[1]]}}, 400, "column name must be a string"),
    ({"dataframe_records": {"Type": "L"}}, 400, "dataframe_records must be a list of objects"),
    ({"instances": [{"Type": ["L"]}]}, 400, "row 1, column 'Type': expected a single value, got a nested list"),
    ({"dataframe_records": [{"Type": "L"}]}, 422, "missing column(s) the model needs"),
    ({"dataframe_records": [{"Type": "L", "Torque [Nm]": 40}, {"Type": "M"}]}, 400,
     "row 2 lacks column(s) 'Torque [Nm]' that other rows have"),
    ("not json", 400, "not valid JSON"),
    ({"dataframe_records": [], "params": [1]}, 400, "params must be an object"),
    ({"dataframe_split": {"columns": ["Type"], "data": [["L"]], "index": [0, 1]}}, 400, '"index" must be a list of 1'),
])
def test_invocations_bad_bodies_are_named_never_5xx(server, rows, body, status, message):
    port, _ = server
    raw = b"{not json" if body == "not json" else body
    got, answer = request(port, "POST", "/invocations", raw)
    assert got == status and message in answer["error"], answer


def test_invocations_count_rows_from_1_in_every_error(server, rows):
    """The body's shape and its values name the same row: the second is row 2 in both."""
    port, _ = server
    records = json.loads(rows.head(2).to_json(orient="records"))
    records[1]["Torque [Nm]"] = "heavy"
    got, answer = request(port, "POST", "/invocations", {"dataframe_records": records})
    assert got == 422 and "in row 2" in answer["error"], answer
    del records[1]["Torque [Nm]"]
    got, answer = request(port, "POST", "/invocations", {"dataframe_records": records})
    assert got == 400 and "row 2 lacks column(s) 'Torque [Nm]'" in answer["error"], answer


def test_invocations_wrong_value_is_422_naming_column_and_row(server, rows):
    port, _ = server
    records = json.loads(rows.head(3).to_json(orient="records"))
    records[2]["Torque [Nm]"] = "lots"
    status, answer = request(port, "POST", "/invocations", {"dataframe_records": records})
    assert status == 422 and "'Torque [Nm]'" in answer["error"] and "row 3" in answer["error"]


def test_invocations_a_model_column_given_twice_is_422_naming_it(server, rows):
    port, _ = server
    split = json.loads(rows.head(2).to_json(orient="split", index=False))
    split["columns"].append("Type")
    split["data"] = [[*row, "L"] for row in split["data"]]
    status, answer = request(port, "POST", "/invocations", {"dataframe_split": split})
    assert status == 422 and "duplicate column name(s) 'Type'" in answer["error"], answer

def test_invocations_take_csv_as_mlflow_s_server_does_and_refuse_other_types(server, rows):
    """text/csv: the same predictions as the JSON forms, values read by the schema (numbers written as text, an
    empty field missing); a CSV that does not hold together is a 400 naming the row; text/plain a 415."""
    port, _ = server
    expected = request(port, "POST", "/invocations", {"dataframe_records": json.loads(rows.head(5).to_json(orient="records"))})
    assert expected[0] == 200
    body = rows.head(5).to_csv(index=False).encode()
    assert request(port, "POST", "/invocations", body, headers={"Content-Type": "text/csv; charset=utf-8"}) == expected
    with_gap = rows.head(2).astype(object)
    with_gap.loc[1, "Air temperature [K]"] = None  # an empty field (or "NA"): a missing value, as JSON's null
    as_json = request(port, "POST", "/invocations", {"dataframe_records": json.loads(with_gap.to_json(orient="records"))})
    assert as_json[0] == 200 and request(port, "POST", "/invocations", with_gap.to_csv(index=False).encode(),
                                         headers={"Content-Type": "text/csv"}) == as_json
    assert request(port, "POST", "/invocations", with_gap.to_csv(index=False, na_rep="NA").encode(),
                   headers={"Content-Type": "text/csv"}) == as_json
    header = ",".join(rows.columns)
    for bad, message in ((b"", "CSV body is empty"), (f"{header}\n1,2\n".encode(), "row 1 has 2 field(s)"),
                         (b"\xff\xfe" + header.encode(), "not UTF-8")):
        status, answer = request(port, "POST", "/invocations", bad, headers={"Content-Type": "text/csv"})
        assert status == 400 and message in answer["error"], answer
    status, answer = request(port, "POST", "/invocations", b"a,b\n1,2\n", headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in answer["error"] and "text/csv" in answer["error"]
    assert request(port, "GET", "/invocations")[0] == 405
    doc = request(port, "GET", "/openapi.json")[1]
    content = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv"}
    forms = content["application/json"]["schema"]["oneOf"]
    assert [next(iter(f["properties"])) for f in forms] == ["dataframe_split", "dataframe_records", "instances"]
