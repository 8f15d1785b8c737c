"""Service throughput: a plain FastAPI app calling the scikit-learn Pipeline vs ``mlkiln serve``.

    python benchmarks/bench_serve.py [--seconds 15] [--connections 10]

Each server runs alone, one worker process, on 127.0.0.1; Debian's ``wrk``
(``apt-get install wrk``) posts the same one-record JSON body for a bounded
time. Both servers are measured in the same run, for the diamonds linear and
gradient-boosting bundles.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlkiln.examples import load_example
from _common import diamonds_bundle

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, body: bytes, deadline: float = 120.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=5).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not come up")


def load_test(command: list[str], env: dict, port: int, body: bytes, seconds: int, connections: int) -> dict:
    server = subprocess.Popen(command, env={**os.environ, **env}, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, body)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                         'wrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
             f"http://127.0.0.1:{port}/predict"],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
        os.unlink(script.name)
    finally:
        server.terminate()
        server.wait(timeout=30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "non_2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args()
    record = load_example("diamonds").drop(columns="price").iloc[0].to_dict()
    body = json.dumps(record).encode()
    print(f"wrk: {args.connections} connections, {args.seconds} s, 1 worker each, 127.0.0.1")
    print(f"{'bundle':8} {'server':16} {'req/s':>9} {'p99 ms':>9} {'non-2xx':>8}")
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        results = {}
        for name in ("fastapi+sklearn", "mlkiln serve"):
            port = free_port()
            if name == "mlkiln serve":
                command = [sys.executable, "-m", "mlkiln", "serve", bundle, "--port", str(port), "-q"]
            else:
                command = [sys.executable, "-m", "uvicorn", "sklearn_fastapi_app:app", "--port", str(port),
                           "--log-level", "warning", "--no-access-log"]
            results[name] = r = load_test(command, {"MLKILN_BENCH_BUNDLE": bundle}, port, body, args.seconds, args.connections)
            print(f"{family:8} {name:16} {r['rps']:9.0f} {r['p99_ms']:9.2f} {r['non_2xx']:8d}")
        ratio = results["mlkiln serve"]["rps"] / results["fastapi+sklearn"]["rps"]
        print(f"{family:8} {'ratio':16} {ratio:8.1f}x")


if __name__ == "__main__":
    main()
