"""Helpers shared by the tests: one CLI harness (in-process or in a subprocess), bundle copies, HTTP on loopback."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import sys
import time

from mlkiln import bundle
from mlkiln.cli import main


def copy_bundle(bundle, tmp_path):
    """A private copy of a session bundle, for tests that damage it."""
    dest = tmp_path / "copy"
    shutil.copytree(bundle, dest)
    return dest


def rehash(path) -> None:
    """Rewrite a bundle's manifest, as an attacker (or a test) who controls the whole directory would."""
    names = [line.split("  ")[1] for line in (path / bundle.MANIFEST).read_text().splitlines()]
    (path / bundle.MANIFEST).write_text("".join(f"{bundle.file_sha256(path / n)}  {n}\n" for n in names))


def cli(*args) -> subprocess.CompletedProcess:
    """Run ``mlkiln`` in this process (no interpreter start-up); same result shape as :func:`run_cli`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's own usage errors and --help
            code = exc.code
    return subprocess.CompletedProcess(["mlkiln", *map(str, args)], code, out.getvalue(), err.getvalue())


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run the real ``mlkiln`` command in a subprocess: for signals, servers and the installed entry point."""
    return subprocess.run(
        [sys.executable, "-m", "mlkiln", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def one_line_error(result, pattern: str, code: int = 2) -> None:
    """The command failed with ``code`` and exactly one ``mlkiln: error:`` line containing ``pattern``."""
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("mlkiln: error:")]
    assert len(lines) == 1 and pattern in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    """One HTTP request to 127.0.0.1:``port``; ``(status, parsed JSON body)``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def wait_until_up(port: int, deadline: float = 60.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            if request(port, "GET", "/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server on port {port} did not come up")


#: the session's ensemble run (conftest's ``ensemble_run``) as command-line arguments after its data
ENSEMBLE_ARGS = ("--target", "price", "--models", "ridge", "hgb", "extra_trees", "--trials", "2")


def awkward_diamonds(diamonds, seed: int):
    """Diamonds with gaps in numbers and text, a collinear and a constant column, and a category in its last 3 rows.

    The tables least squares finds hardest: a singular design, missing values, a category first seen late.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = diamonds.copy()
    for name in ("carat", "depth", "x"):
        frame.loc[rng.random(len(frame)) < 0.05, name] = np.nan
    frame["color"] = frame["color"].astype(object)
    frame.loc[rng.random(len(frame)) < 0.02, "color"] = np.nan
    frame.loc[len(frame) - 3:, "color"] = "Z"
    frame["carat_twice"] = frame["carat"] * 2
    frame["constant"] = 3.0
    return frame

