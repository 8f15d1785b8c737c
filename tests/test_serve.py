"""The HTTP service, started for real on a free loopback port and spoken to over HTTP."""

import http.client
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from common import free_port, request, wait_until_up
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlkiln

uvicorn = pytest.importorskip("uvicorn")
from mlkiln.serve import App  # noqa: E402


@pytest.fixture(scope="module")
def running():
    """Start one in-process server per bundle; yield ``start(bundle) -> (port, model)``."""
    servers = []

    def start(bundle, **app_options):
        model = mlkiln.load(bundle)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(App(model, **app_options), host="127.0.0.1", port=port,
                                               lifespan="off", log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_until_up(port)
        return port, model

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def diamonds_server(running, diamonds_bundle):
    return running(diamonds_bundle)


@pytest.fixture(scope="module")
def failure_server(running, failure_bundle):
    return running(failure_bundle)


def _record(model, **change) -> dict:
    record = {c.name: (c.categories or [1.0 if c.min is None else c.min])[0] for c in model.card.columns}
    record.update(change)
    return record


def test_health_schema_and_openapi(diamonds_server):
    port, model = diamonds_server
    status, health = request(port, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["compiled"] is True
    assert request(port, "GET", "/schema") == (200, model.card.to_dict()["schema"])
    status, doc = request(port, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {"/predict", "/health", "/schema", "/openapi.json"} <= set(doc["paths"])
    record = doc["components"]["schemas"]["Record"]
    assert record["required"] == [c.name for c in model.card.columns]
    assert record["additionalProperties"] is False


def test_predict_one_and_many(diamonds_server, diamonds):
    port, model = diamonds_server
    records = diamonds.drop(columns="price").head(20).to_dict("records")
    expected = model.pipeline.predict(model.prepare(records)).tolist()
    status, one = request(port, "POST", "/predict", records[0])
    assert status == 200 and one["prediction"] == pytest.approx(expected[0], rel=1e-9)
    status, many = request(port, "POST", "/predict", records)
    assert status == 200
    assert [p["prediction"] for p in many["predictions"]] == pytest.approx(expected, rel=1e-9)


def test_a_list_is_scored_at_once_as_each_record_alone(failure_server, failure_csv):
    # a list is checked record by record and scored as one frame (15,000 records took 39 s one at a time)
    port, model = failure_server
    records = pd.read_csv(failure_csv)[[c.name for c in model.card.columns]].head(300).to_dict("records")
    records[3][model.card.columns[0].name] = None  # a missing value
    categorical = next(c.name for c in model.card.columns if c.kind == "categorical")
    records[7][categorical] = "never seen"
    alone = [model.predict_record(r) for r in records]
    together = model.predict_records(records)
    assert [a["prediction"] for a in together] == [a["prediction"] for a in alone]
    for a, b in zip(together, alone):
        assert list(a["probabilities"]) == list(b["probabilities"])
        assert list(a["probabilities"].values()) == pytest.approx(list(b["probabilities"].values()), rel=1e-9, abs=1e-12)
    status, served = request(port, "POST", "/predict", records)
    assert status == 200 and [p["prediction"] for p in served["predictions"]] == [a["prediction"] for a in alone]
    assert model.predict_records([]) == []
    # the same rows as a CSV body (text/csv, as /invocations takes it): the same answers
    body = pd.DataFrame(records).to_csv(index=False).encode()
    assert request(port, "POST", "/predict", body, headers={"Content-Type": "text/csv"}) == (status, served)
    status, answer = request(port, "POST", "/predict", b"a,b\n1\n", headers={"Content-Type": "text/csv"})
    assert status == 400 and "row 1 has 1 field(s)" in answer["error"]
    semicolons = pd.DataFrame(records).head(3).to_csv(index=False, sep=";").encode()  # a spreadsheet's elsewhere
    status, answer = request(port, "POST", "/predict", semicolons, headers={"Content-Type": "text/csv"})
    assert status == 400 and "with ';' in it; send comma-separated values" in answer["error"]


def test_classification_returns_probabilities(failure_server):
    port, model = failure_server
    status, out = request(port, "POST", "/predict", _record(model))
    assert status == 200
    assert out["prediction"] in model.classes
    assert list(out["probabilities"]) == [str(c) for c in model.classes]
    assert sum(out["probabilities"].values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"carat": "heavy"}, "carat"), ({"cut": [1]}, "cut"), ({"colour": "E"}, "colour"), ({"carat": None, "depth": {}}, "depth")],
)
def test_bad_records_are_422_naming_the_field(diamonds_server, change, field):
    port, model = diamonds_server
    status, out = request(port, "POST", "/predict", _record(model, **change))
    assert status == 422 and repr(field) in out["error"]
    status, out = request(port, "POST", "/predict", [_record(model), _record(model, **change)])
    assert status == 422 and out["error"].startswith("record 2:") and repr(field) in out["error"]


def test_missing_column_is_422(diamonds_server):
    port, model = diamonds_server
    record = _record(model)
    del record["table"]
    status, out = request(port, "POST", "/predict", record)
    assert status == 422 and "'table'" in out["error"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"42", b'"text"', b"[1, 2]", b"\xff\xfe"])
def test_malformed_bodies_are_400(diamonds_server, body):
    port, _ = diamonds_server
    status, out = request(port, "POST", "/predict", body)
    # a list of non-objects is a list of bad records: 422 naming the record
    assert status in ((422,) if body == b"[1, 2]" else (400,)) and out["error"]


def test_a_compressed_body_is_415_saying_so(diamonds_server):
    import gzip
    import json

    port, model = diamonds_server
    body = gzip.compress(json.dumps(_record(model)).encode())
    for path in ("/predict", "/invocations"):
        status, out = request(port, "POST", path, body, headers={"Content-Encoding": "gzip"})
        assert status == 415 and out["error"].startswith("Content-Encoding gzip is not supported"), out


def test_routes_and_methods(diamonds_server):
    port, _ = diamonds_server
    assert request(port, "GET", "/nowhere")[0] == 404
    assert request(port, "GET", "/predict")[0] == 405
    assert request(port, "POST", "/health", b"{}")[0] == 405
    for path in ("/health", "/schema", "/openapi.json", "/metrics"):  # HEAD as GET, headers only
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path)
        body = connection.getresponse().read()
        connection.request("HEAD", path)
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b"", path
        if path != "/metrics":  # its counts move between the two requests
            assert int(response.getheader("content-length")) == len(body) > 0
        connection.close()
    assert request(port, "HEAD", "/predict")[0] == 405


def test_body_size_is_bounded(running, diamonds_bundle):
    port, model = running(diamonds_bundle, max_body_bytes=2000)
    status, out = request(port, "POST", "/predict", [_record(model)] * 100)
    assert status == 413 and "2000" in out["error"]
    assert request(port, "POST", "/predict", _record(model))[0] == 200


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-2**63, 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["carat", "cut", "x", "zz"]), inner, max_size=4),
    max_leaves=12,
))
def test_never_500_on_bad_input(diamonds_server, body):
    port, _ = diamonds_server
    status, out = request(port, "POST", "/predict", body)
    assert status in (200, 400, 422), out


def test_cli_serve_bad_bundle(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mlkiln", "serve", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("mlkiln: error:")


def test_a_port_in_use_a_foreign_address_or_a_used_metrics_directory_is_refused_before_serving(
        diamonds_bundle, tmp_path, monkeypatch):
    import socket

    from mlkiln.errors import InputError
    from mlkiln.monitor import check_multiprocess_directory
    from mlkiln.serve import check_can_listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            check_can_listen("127.0.0.1", port)
        out = subprocess.run([sys.executable, "-m", "mlkiln", "serve", diamonds_bundle, "--port", str(port)],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.splitlines() == [
        f"mlkiln: error: cannot listen on 127.0.0.1:{port}: Address already in use"], out.stderr  # no 'serving' first
    with pytest.raises(InputError, match="cannot listen on 203.0.113.7"):  # an address of no interface here
        check_can_listen("203.0.113.7", free_port())
    check_can_listen("127.0.0.1", free_port())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    check_multiprocess_directory()  # empty: fine
    (tmp_path / "counter_123.db").write_bytes(b"")
    with pytest.raises(InputError, match="PROMETHEUS_MULTIPROC_DIR=.* is not empty"):
        check_multiprocess_directory()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="is not a directory"):
        check_multiprocess_directory()


def test_openapi_says_a_duration_is_read_in_seconds():
    from mlkiln.serve import openapi

    rng = np.random.default_rng(0)
    seconds, x = rng.integers(0, 1000, 300), rng.normal(size=300)
    frame = pd.DataFrame({"wait": pd.to_timedelta(seconds, unit="s"), "x": x, "y": seconds * 0.01 + x + rng.normal(size=300)})
    run = mlkiln.train(frame, target="y", models=["linear"])
    record = openapi(run.model)["components"]["schemas"]["Record"]["properties"]
    assert record["wait"]["description"].startswith("a duration, in seconds")
    assert record["x"]["description"].startswith("numeric")


def test_a_body_of_another_type_is_415_and_what_clients_send_json_as_is_read(diamonds_server):
    """XML or a form's files: 415 naming what /predict takes, as /invocations answers. No Content-Type, curl -d's
    form type, a browser fetch's text/plain and a +json type are read as JSON."""
    import json

    port, model = diamonds_server
    body = json.dumps(_record(model)).encode()
    for kind in ("application/xml", "multipart/form-data; boundary=x", "application/octet-stream"):
        status, out = request(port, "POST", "/predict", body, headers={"Content-Type": kind})
        assert status == 415 and "application/json" in out["error"] and kind.split(";")[0] in out["error"], out
    for kind in ("application/x-www-form-urlencoded", "text/plain;charset=UTF-8", "application/vnd.api+json",
                 "Application/JSON; charset=utf-8"):
        status, out = request(port, "POST", "/predict", body, headers={"Content-Type": kind})
        assert status == 200 and isinstance(out["prediction"], float), (kind, out)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # no Content-Type at all
    try:
        connection.request("POST", "/predict", body=body)
        response = connection.getresponse()
        assert response.status == 200 and isinstance(json.loads(response.read())["prediction"], float)
    finally:
        connection.close()
