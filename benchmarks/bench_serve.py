"""Service throughput: a plain FastAPI app calling the scikit-learn Pipeline vs ``mlkiln serve``.

    python benchmarks/bench_serve.py [--seconds 15] [--connections 10]
    python benchmarks/bench_serve.py --metrics-overhead [--rounds 3] [--pin]
    python benchmarks/bench_serve.py --metrics-paired [--rounds 8] [--seconds 8]
    python benchmarks/bench_serve.py --metrics-interleaved [--rounds 20] [--seconds 3] [--aa]
    python benchmarks/bench_serve.py --metrics-instructions [--rounds 2] [--requests 2000]

Each server runs alone, one worker process, on 127.0.0.1; Debian's ``wrk``
(``apt-get install wrk``) posts the same one-record JSON body for a bounded
time. Both servers are measured in the same run, for the diamonds linear and
gradient-boosting bundles. ``--metrics-overhead`` instead runs ``mlkiln
serve`` with and without ``--no-metrics`` (GET /metrics and its counting),
alternating for ``--rounds`` rounds so both see the same machine load.

``--metrics-paired`` runs the two servers *at the same time*, both on core 0,
each loaded by its own ``wrk`` on core 1: the scheduler shares core 0
between two always-busy servers, so the ratio of requests they answer in the
same seconds is the inverse ratio of their CPU cost per request, and a
slowdown of the host hits both alike. On a host whose speed drifts between
runs (a server's CPU per request varied 38 to 66 us from one run to the next)
this pairs the comparison within each second instead of across runs.
Sharing a core costs each request some cache (about 48 us of CPU against 40
alone, linear bundle), so the servers' absolute rates are not the service's.

``--metrics-interleaved`` measures the service as it runs: one server at a
time on core 0, ``wrk`` on core 1. Both servers are started once and stay up;
the load moves between them in short blocks (``--seconds``), in the order
with, without, without, with, ... so that a drift of the host's speed within
a pair hits both sides alike. Each pair gives one ratio of requests per
second. ``--aa`` runs two servers without /metrics instead: the method's own
noise and bias.

``--metrics-instructions`` counts instead of timing: the CPU instructions the
server process executes per request, with and without /metrics, under
valgrind's callgrind (``apt-get install valgrind``), which the host's speed
and load do not move. Their ratio is the ratio of requests per second a
CPU-bound server would have if an instruction cost the same everywhere;
it leaves out cache and memory effects.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlkiln.examples import load_example
from _common import diamonds_bundle

HERE = Path(__file__).resolve().parent
#: set by --pin: the server on core 0, wrk on core 1, so neither takes the other's core
PIN = False


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


def pinned(command: list[str], core: int) -> list[str]:
    """``command`` on one CPU core (taskset) when there are two or more: server and load generator apart."""
    if PIN and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *command]
    return command


def load_test(command: list[str], env: dict, port: int, body: bytes, seconds: int, connections: int) -> dict:
    server = subprocess.Popen(pinned(command, 0), env={**os.environ, **env}, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, body)
        cpu_before = cpu_seconds(server.pid)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                         'wrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(
            pinned(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name,
                    f"http://127.0.0.1:{port}/predict"], 1),
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
        cpu = cpu_seconds(server.pid) - cpu_before
        os.unlink(script.name)
    finally:
        server.terminate()
        server.wait(timeout=30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    served = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "non_2xx": int(errors.group(1)) if errors else 0,
            "cpu_us": cpu / served * 1e6}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``; the server is one process with one worker)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_microseconds(bundle: str, body: bytes, metrics: bool, blocks: int = 20, calls: int = 2000) -> float:
    """Median over blocks of the per-request time of the ASGI app alone (one /predict, no network), in us."""
    import asyncio

    import mlkiln
    from mlkiln.serve import App

    app = App(mlkiln.load(bundle), metrics=metrics)
    scope = {"type": "http", "path": "/predict", "method": "POST",
             "headers": [(b"content-length", str(len(body)).encode())]}
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive():
        return message

    async def send(_):
        return None

    async def block() -> float:
        start = time.perf_counter_ns()
        for _ in range(calls):
            await app(scope, receive, send)
        return (time.perf_counter_ns() - start) / calls / 1e3

    return float(sorted(asyncio.run(block()) for _ in range(blocks))[blocks // 2])


def metrics_overhead(body: bytes, seconds: int, connections: int, rounds: int) -> None:
    """Requests per second of ``mlkiln serve`` with and without /metrics, alternated, per bundle.

    On a loaded machine whole-service rates swing by more than the effect, so
    the app's own per-request time with and without counting is measured too
    (in-process, interleaved); its difference over the service's time per
    request is the share of requests per second /metrics can cost. So is the
    server process's CPU time per request served (``/proc``), which sets its
    capacity and is moved less by other processes than the wall-clock rate.
    """
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        with_us, without_us = [], []
        for i in range(3):
            for metrics in ((True, False) if i % 2 == 0 else (False, True)):
                (with_us if metrics else without_us).append(app_microseconds(bundle, body, metrics))
        w, wo = sorted(with_us)[1], sorted(without_us)[1]
        print(f"{family:8} app alone: {wo:.1f} us per /predict without metrics, {w:.1f} us with: +{w - wo:.2f} us")
    print(f"{'bundle':8} {'round':>5} {'metrics req/s':>14} {'no-metrics req/s':>17} {'ratio':>6} "
          f"{'CPU us/req':>10} {'without':>8} {'ratio':>6}")
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        totals = {True: 0.0, False: 0.0}
        ratios, cpu_ratios = [], []
        for i in range(rounds):
            run = {}
            for metrics in ((True, False) if i % 2 == 0 else (False, True)):
                port = free_port()
                command = [sys.executable, "-m", "mlkiln", "serve", bundle, "--port", str(port), "-q",
                           *([] if metrics else ["--no-metrics"])]
                run[metrics] = load_test(command, {}, port, body, seconds, connections)
                totals[metrics] += run[metrics]["rps"]
            ratios.append(run[True]["rps"] / run[False]["rps"])
            # the server's CPU time per request decides its capacity, and wall-clock load on a shared machine
            # moves it less than requests per second: the ratio of rates it implies
            cpu_ratios.append(run[False]["cpu_us"] / run[True]["cpu_us"])
            print(f"{family:8} {i + 1:5d} {run[True]['rps']:14.0f} {run[False]['rps']:17.0f} {ratios[-1]:6.3f} "
                  f"{run[True]['cpu_us']:10.1f} {run[False]['cpu_us']:8.1f} {cpu_ratios[-1]:6.3f}")
        # the machine drifts between runs by more than the effect: the median pair, each pair run back to back
        print(f"{family:8} {'all':>5} {totals[True] / rounds:14.0f} {totals[False] / rounds:17.0f} "
              f"{totals[True] / totals[False]:6.3f}  (median of the rounds' ratios: requests/s "
              f"{sorted(ratios)[rounds // 2]:.3f}, CPU per request {sorted(cpu_ratios)[rounds // 2]:.3f})")


def metrics_paired(body: bytes, seconds: int, connections: int, rounds: int) -> None:
    """``mlkiln serve`` with and without /metrics at the same time on one core: the ratio of requests answered."""
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        raise SystemExit("--metrics-paired needs two cores and taskset")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
    print(f"{'bundle':8} {'round':>5} {'with: requests':>15} {'without':>9} {'ratio':>6} {'CPU us/req':>10} {'without':>8}")
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        ratios = []
        for i in range(rounds):
            servers, ports = {}, {}
            for metrics in ((True, False) if i % 2 == 0 else (False, True)):  # who starts first alternates
                ports[metrics] = port = free_port()
                command = [sys.executable, "-m", "mlkiln", "serve", bundle, "--port", str(port), "-q",
                           *([] if metrics else ["--no-metrics"])]
                servers[metrics] = subprocess.Popen(["taskset", "-c", "0", *command], cwd=HERE,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for port in ports.values():
                    wait_until_up(port, body)
                cpu = {m: cpu_seconds(s.pid) for m, s in servers.items()}
                loads = {m: subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", f"-c{max(1, connections // 2)}",
                                              f"-d{seconds}s", "-s", script.name, f"http://127.0.0.1:{port}/predict"],
                                             stdout=subprocess.PIPE, text=True) for m, port in ports.items()}
                outs = {m: w.communicate(timeout=seconds + 60)[0] for m, w in loads.items()}
                cpu = {m: cpu_seconds(s.pid) - cpu[m] for m, s in servers.items()}
            finally:
                for server in servers.values():
                    server.terminate()
                    server.wait(timeout=30)
            served = {m: int(re.search(r"(\d+) requests in", out).group(1)) for m, out in outs.items()}
            ratios.append(served[True] / served[False])
            us = {m: cpu[m] / served[m] * 1e6 for m in served}
            print(f"{family:8} {i + 1:5d} {served[True]:15d} {served[False]:9d} {ratios[-1]:6.3f} "
                  f"{us[True]:10.1f} {us[False]:8.1f}")
        print(f"{family:8} {'all':>5} median ratio {sorted(ratios)[rounds // 2]:.3f}, "
              f"geometric mean {statistics.geometric_mean(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")
    os.unlink(script.name)


def metrics_interleaved(body: bytes, seconds: int, connections: int, rounds: int, aa: bool) -> None:
    """Requests per second with and without /metrics, each server alone on core 0, in alternating short blocks."""
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        raise SystemExit("--metrics-interleaved needs two cores and taskset")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
    sides = ("A", "B") if aa else ("with", "without")
    print(f"{'bundle':8} {'pair':>4} {sides[0] + ' req/s':>12} {sides[1] + ' req/s':>15} {'ratio':>6}")
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        servers, ports = {}, {}
        try:
            for side in sides:
                ports[side] = port = free_port()
                metrics = side == "with"
                command = [sys.executable, "-m", "mlkiln", "serve", bundle, "--port", str(port), "-q",
                           *([] if metrics else ["--no-metrics"])]
                servers[side] = subprocess.Popen(["taskset", "-c", "0", *command], cwd=HERE,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for port in ports.values():
                wait_until_up(port, body)

            def rate(side: str) -> float:
                out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                                      "-s", script.name, f"http://127.0.0.1:{ports[side]}/predict"],
                                     capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
                return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

            for side in sides:  # warm-up: a block each, not counted
                rate(side)
            ratios = []
            for i in range(rounds):
                order = sides if i % 2 == 0 else sides[::-1]
                rates = {side: rate(side) for side in order}
                ratios.append(rates[sides[0]] / rates[sides[1]])
                print(f"{family:8} {i + 1:4d} {rates[sides[0]]:12.0f} {rates[sides[1]]:15.0f} {ratios[-1]:6.3f}")
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)
        print(f"{family:8} {'all':>4} median ratio {statistics.median(ratios):.3f}, geometric mean "
              f"{statistics.geometric_mean(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")
    os.unlink(script.name)


def server_instructions(bundle: str, body: bytes, metrics: bool, requests: int) -> int:
    """CPU instructions the ``mlkiln serve`` process executes for ``requests`` POST /predict (valgrind's callgrind).

    The server runs under callgrind with counting off while it starts and
    answers 200 warm-up requests; counting is switched on (``callgrind_control``)
    for ``requests`` sequential requests on one keep-alive connection from this
    process, then off. An instruction count does not move with the host's
    speed or load, which swung the rate measurements of the same server by 15 %.
    """
    import glob
    import http.client

    port = free_port()
    out = Path(tempfile.mkdtemp(prefix="mlkiln-callgrind-")) / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, "-m", "mlkiln", "serve", bundle, "--port", str(port), "-q",
               *([] if metrics else ["--no-metrics"])]
    server = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, body, deadline=600)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

        def post(count: int) -> None:
            for _ in range(count):
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status

        post(200)
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
        post(requests)
        subprocess.run(["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
    finally:
        server.terminate()
        server.wait(timeout=120)
    counted = 0
    for name in glob.glob(f"{out}*"):
        for line in Path(name).read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                counted = max(counted, int(line.split()[1]))
        os.unlink(name)
    out.parent.rmdir()
    return counted


def metrics_instructions(body: bytes, requests: int, rounds: int) -> None:
    """Instructions per request of ``mlkiln serve`` with and without /metrics, both bundles, alternated."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        raise SystemExit("--metrics-instructions needs valgrind (apt-get install valgrind)")
    print(f"{'bundle':8} {'round':>5} {'with: instr/req':>16} {'without':>9} {'added':>7} {'ratio of rates':>15}")
    for family in ("linear", "hgb"):
        bundle = str(diamonds_bundle(family))
        for i in range(rounds):
            counts = {m: server_instructions(bundle, body, m, requests) / requests
                      for m in ((True, False) if i % 2 == 0 else (False, True))}
            print(f"{family:8} {i + 1:5d} {counts[True]:16,.0f} {counts[False]:9,.0f} "
                  f"{counts[True] / counts[False] - 1:7.2%} {counts[False] / counts[True]:15.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--metrics-overhead", action="store_true", help="mlkiln serve with and without /metrics")
    parser.add_argument("--metrics-paired", action="store_true",
                        help="with and without /metrics at the same time, sharing one core")
    parser.add_argument("--metrics-interleaved", action="store_true",
                        help="with and without /metrics, each alone on core 0, in alternating short blocks")
    parser.add_argument("--aa", action="store_true", help="--metrics-interleaved with two servers without /metrics")
    parser.add_argument("--metrics-instructions", action="store_true",
                        help="CPU instructions per request with and without /metrics (valgrind)")
    parser.add_argument("--requests", type=int, default=2000, help="requests counted by --metrics-instructions")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="server on CPU core 0, wrk on core 1 (taskset)")
    args = parser.parse_args()
    global PIN
    PIN = args.pin
    record = load_example("diamonds").drop(columns="price").iloc[0].to_dict()
    body = json.dumps(record).encode()
    if args.metrics_instructions:
        metrics_instructions(body, args.requests, args.rounds)
        return
    if args.metrics_paired:
        metrics_paired(body, args.seconds, args.connections, args.rounds)
        return
    if args.metrics_interleaved:
        metrics_interleaved(body, args.seconds, args.connections, args.rounds, args.aa)
        return
    if args.metrics_overhead:
        print(f"wrk: {args.connections} connections, {args.seconds} s, 1 worker each, 127.0.0.1")
        metrics_overhead(body, args.seconds, args.connections, args.rounds)
        return
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
