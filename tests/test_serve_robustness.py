"""The HTTP service under fuzzing and load: a real `mlkiln serve` process on loopback.

Schemathesis generates requests from the service's own OpenAPI document and
checks that none gets a 5xx; a bounded concurrent load checks that every
request succeeds and that predictions under load equal the unloaded ones.
"""

import http.client
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from common import free_port
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("uvicorn")

LOAD_REQUESTS = 10_000
LOAD_CONCURRENCY = 32


@pytest.fixture(scope="module")
def service(failure_bundle):
    """``mlkiln serve`` in a subprocess; yields its port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlkiln", "serve", failure_bundle, "--port", str(port), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"mlkiln serve exited: {proc.stderr.read().decode()}")
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(timeout=30)


def test_no_5xx_for_any_generatedrequest(service):
    api = schemathesis.openapi.from_url(f"http://127.0.0.1:{service}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/health", "/schema"}
    for operation in operations:

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(timeout=30)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text}"

        check()


def _record(card: dict, i: int) -> dict:
    """A valid record that differs from row to row: numbers spread over their training range."""
    record = {}
    for col in card["schema"]["columns"]:
        if col["kind"] == "categorical":
            record[col["name"]] = col["categories"][i % len(col["categories"])]
        else:
            record[col["name"]] = col["min"] + (col["max"] - col["min"]) * ((i * 37) % 101) / 100
    return record


def test_concurrent_load_no_errors_and_same_predictions(service, failure_bundle):
    card = json.loads((Path(failure_bundle) / "card.json").read_text())
    records = [_record(card, i) for i in range(101)]  # the 101 distinct payloads, reused under load

    def post(record, connection):
        connection.request("POST", "/predict", body=json.dumps(record), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())

    def worker(indices):
        connection = http.client.HTTPConnection("127.0.0.1", service, timeout=30)
        out = [(i, *post(records[i % len(records)], connection)) for i in indices]
        connection.close()
        return out

    connection = http.client.HTTPConnection("127.0.0.1", service, timeout=30)
    baseline = [post(r, connection) for r in records]
    connection.close()
    assert all(status == 200 for status, _ in baseline)

    chunks = np.array_split(np.arange(LOAD_REQUESTS), LOAD_CONCURRENCY)
    start = time.monotonic()
    with ThreadPoolExecutor(LOAD_CONCURRENCY) as pool:
        results = [row for chunk in pool.map(worker, chunks) for row in chunk]
    elapsed = time.monotonic() - start
    assert len(results) == LOAD_REQUESTS
    errors = [(i, status) for i, status, _ in results if status != 200]
    assert errors == []
    changed = [i for i, _, body in results if body != baseline[i % len(records)][1]]
    assert changed == []
    assert elapsed < 300
