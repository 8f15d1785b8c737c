"""GET /metrics of a real server on 127.0.0.1: Prometheus text from prometheus-client, counts that add up."""

import http.client
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import mlkiln

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from mlkiln.serve import App  # noqa: E402
from common import free_port, wait_until_up  # noqa: E402


def _call(port: int, method: str, path: str, body=None) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body).encode(),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()


def _samples(port: int) -> dict:
    """``{(sample name, sorted labels): value}`` parsed by prometheus-client's own parser."""
    status, content_type, body = _call(port, "GET", "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return _parse(body)


def _parse(exposition: bytes) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition.decode()) for s in family.samples}


@pytest.fixture(scope="module")
def server(diamonds_bundle):
    started = []

    def start(**options):
        port = free_port()
        app = App(mlkiln.load(diamonds_bundle), **options)
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        started.append((srv, thread))
        wait_until_up(port)
        return port

    yield start
    for srv, thread in started:
        srv.should_exit = True
        thread.join(timeout=10)


def _record(diamonds, **changes) -> dict:
    return {**diamonds.drop(columns="price").iloc[0].to_dict(), **changes}


def test_counts_requests_rows_and_drift(server, diamonds, diamonds_run):
    port = server()
    profile = diamonds_run.card.profile["columns"]
    for _ in range(3):
        assert _call(port, "POST", "/predict", _record(diamonds))[0] == 200
    assert _call(port, "POST", "/predict", [_record(diamonds, color="Z"), _record(diamonds, carat=profile["carat"]["max"] * 2)])[0] == 200
    assert _call(port, "POST", "/predict", _record(diamonds, carat="heavy"))[0] == 422
    for path in ("/nowhere", "/nowhere", "/elsewhere"):  # any path that is not an endpoint is "other", each time
        assert _call(port, "GET", path)[0] == 404
    samples = _samples(port)
    assert samples["mlkiln_requests_total", (("endpoint", "/predict"), ("status", "200"))] == 4
    assert samples["mlkiln_requests_total", (("endpoint", "/predict"), ("status", "422"))] == 1
    assert samples["mlkiln_requests_total", (("endpoint", "other"), ("status", "404"))] == 3
    assert samples["mlkiln_request_duration_seconds_count", (("endpoint", "/predict"),)] == 5
    assert samples["mlkiln_rows_scored_total", ()] == 5
    assert samples["mlkiln_unseen_categories_total", (("column", "color"),)] == 1
    assert samples["mlkiln_unseen_categories_total", (("column", "cut"),)] == 0
    assert samples["mlkiln_out_of_range_values_total", (("column", "carat"),)] == 1
    assert samples["mlkiln_out_of_range_values_total", (("column", "depth"),)] == 0
    # the first scrape is counted once answered
    assert _samples(port)["mlkiln_requests_total", (("endpoint", "/metrics"), ("status", "200"))] == 1


def test_invocations_rows_count_their_drift_by_the_same_rules(server, diamonds, diamonds_run):
    """MLflow's scoring protocol is counted like /predict: rows scored, unseen categories, out-of-range values."""
    port = server()
    carat_max = diamonds_run.card.profile["columns"]["carat"]["max"]
    rows = [_record(diamonds, color="Z"), _record(diamonds, color=None, carat=carat_max * 3),
            _record(diamonds, cut="Ideal", depth=None), _record(diamonds, color="Z", carat=-1.0)]
    columns = list(rows[0])
    body = {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}}
    status, _, answer = _call(port, "POST", "/invocations", body)
    assert status == 200 and len(json.loads(answer)["predictions"]) == 4
    samples = _samples(port)
    assert samples["mlkiln_rows_scored_total", ()] == 4
    assert samples["mlkiln_unseen_categories_total", (("column", "color"),)] == 2  # a missing color is not unseen
    assert samples["mlkiln_unseen_categories_total", (("column", "cut"),)] == 0
    assert samples["mlkiln_out_of_range_values_total", (("column", "carat"),)] == 2
    assert samples["mlkiln_out_of_range_values_total", (("column", "depth"),)] == 0  # nor is a missing number


def test_metrics_only_by_get_and_can_be_turned_off(server, diamonds):
    port = server()
    status, _, body = _call(port, "POST", "/metrics", {})
    assert status == 405 and "GET" in json.loads(body)["error"]
    quiet = server(metrics=False)
    assert _call(quiet, "POST", "/predict", _record(diamonds))[0] == 200
    assert _call(quiet, "GET", "/metrics")[0] == 404


def test_workers_share_their_counts(diamonds_bundle, diamonds, tmp_path):
    """``mlkiln serve --workers 2``: both worker processes answer, and every scrape, whichever worker answers it,
    sums both (prometheus-client multiprocess)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlkiln", "serve", diamonds_bundle, "--port", str(port),
                               "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(port, deadline=120)
        requests = 40
        for _ in range(requests):
            status, _, body = _call(port, "POST", "/predict", _record(diamonds))
            assert status == 200 and isinstance(json.loads(body)["prediction"], float)
        for _ in range(4):  # new connections: the scrapes land on either worker
            assert _samples(port)["mlkiln_rows_scored_total", ()] == requests
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "serving" in output and "compiled" in output


def test_latencies_folded_in_batches_match_each_one_bucketed(diamonds_run):
    """More requests than one fold holds, scraped mid-batch: every bucket, count and sum is what bucketing each
    latency by itself gives (a bucket holds values at or below its bound, as Prometheus' ``le``)."""
    from mlkiln.monitor import BUCKETS, FOLD_EVERY, Monitor

    monitor = Monitor(diamonds_run.card.profile, ["/predict"])
    rng = np.random.default_rng(0)
    seconds = np.concatenate([10 ** rng.uniform(-5, 0.5, FOLD_EVERY * 2 + 7), BUCKETS]).tolist()  # bounds exactly
    statuses = rng.choice([200, 422], len(seconds)).tolist()
    for i, (value, status) in enumerate(zip(seconds, statuses)):
        monitor.request("/predict", status, value)
        monitor.scored(status == 200)
        if i == FOLD_EVERY + 3:  # a scrape between two folds sees every request before it
            assert _parsed(monitor)["mlkiln_requests_total", (("endpoint", "/predict"), ("status", "200"))] \
                == statuses[:i + 1].count(200)
    samples = _parsed(monitor)
    for bound in BUCKETS:
        expected = sum(value <= bound for value in seconds)
        assert samples["mlkiln_request_duration_seconds_bucket", (("endpoint", "/predict"), ("le", str(bound)))] == expected
    assert samples["mlkiln_request_duration_seconds_count", (("endpoint", "/predict"),)] == len(seconds)
    assert samples["mlkiln_request_duration_seconds_sum", (("endpoint", "/predict"),)] == pytest.approx(sum(seconds))
    assert samples["mlkiln_requests_total", (("endpoint", "/predict"), ("status", "422"))] == statuses.count(422)
    assert samples["mlkiln_rows_scored_total", ()] == statuses.count(200)


def test_a_record_s_missing_values_are_neither_unseen_nor_out_of_range(diamonds_run):
    from mlkiln.monitor import Monitor

    monitor = Monitor(diamonds_run.card.profile, ["/predict"])
    columns = diamonds_run.card.profile["columns"]
    row = {name: (spec["categories"][0] if spec["kind"] == "categorical" else spec["min"]) for name, spec in columns.items()}
    monitor.watch(row)  # the training minimum and a training category: inside
    monitor.watch({**row, "color": float("nan"), "carat": float("nan")})
    monitor.watch({**row, "color": "Z", "carat": columns["carat"]["max"] * 2, "depth": columns["depth"]["min"] - 1})
    samples = _parsed(monitor)
    assert samples["mlkiln_unseen_categories_total", (("column", "color"),)] == 1
    assert samples["mlkiln_out_of_range_values_total", (("column", "carat"),)] == 1
    assert samples["mlkiln_out_of_range_values_total", (("column", "depth"),)] == 1
    assert sum(v for (name, _), v in samples.items() if name.startswith(("mlkiln_unseen", "mlkiln_out_of"))) == 3


def test_a_wide_table_s_records_are_counted_by_the_same_rules_as_drift(rng=np.random.default_rng(3)):
    # 70 number columns and two text ones with names no Python identifier could be: the written-out check
    # spans two `if`s and must agree, column by column, with mlkiln.drift's rules (unseen, out of range)
    import pandas as pd

    from mlkiln import drift
    from mlkiln.monitor import Monitor

    numbers = {f"x {i} [m/s]": rng.normal(size=300) for i in range(70)}
    frame = pd.DataFrame({**numbers, "kind \"a\"": rng.choice(["p", "q"], 300), "ünïcode": rng.choice(["r", "s"], 300)})
    kinds = {name: ("numeric" if name in numbers else "categorical") for name in frame}
    profile = drift.training_profile(frame, kinds, rng.normal(size=300), "regression")
    order = list(reversed(frame.columns))  # the records' key order is the schema's, not the profile's
    monitor = Monitor(profile, ["/predict"], order)
    by_name = Monitor(profile, ["/predict"], order[1:])  # a schema without a profiled column: checked by name
    new = frame.sample(40, random_state=0).reset_index(drop=True)
    new.loc[3, "x 69 [m/s]"] = 99.0  # outside, in the second `if`
    new.loc[5, "x 0 [m/s]"] = -99.0
    new.loc[7, "x 1 [m/s]"] = np.nan  # missing: neither
    new.loc[[8, 9], "ünïcode"] = "t"
    new.loc[9, "kind \"a\""] = np.nan
    for record in new[order].to_dict("records"):
        monitor.watch(record)
        by_name.watch(record)
    counted, counted_by_name = ({(name, labels[0][1]): value for (name, labels), value in _parsed(m).items()
                                 if name.startswith(("mlkiln_unseen", "mlkiln_out_of")) and value}
                                for m in (monitor, by_name))
    assert counted == counted_by_name == {("mlkiln_out_of_range_values_total", "x 69 [m/s]"): 1,
                       ("mlkiln_out_of_range_values_total", "x 0 [m/s]"): 1,
                       ("mlkiln_unseen_categories_total", "ünïcode"): 2}
    # the same rows through mlkiln drift's own comparison: the same columns flagged
    result = drift.compare(profile, new, np.zeros(len(new)))
    flagged = {s.name for s in result.columns if s.unseen or s.out_of_range}
    assert flagged == {"x 69 [m/s]", "x 0 [m/s]", "ünïcode"}


def _parsed(monitor) -> dict:
    return _parse(monitor.exposition())
