"""Shared helpers of the issue-6 benchmarks: grown diamonds tables and peak-memory measurement."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import numpy as np
import pandas as pd

from mlkiln.examples import load_example

HERE = Path(__file__).resolve().parent
NUMERIC = ["carat", "depth", "table", "x", "y", "z"]


def grown_diamonds(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """``n_rows`` diamonds resampled with replacement, numbers jittered by 1 % so no row repeats exactly."""
    rng = np.random.default_rng(seed)
    base = load_example("diamonds")
    frame = base.iloc[rng.integers(0, len(base), n_rows)].reset_index(drop=True)
    for name in [*NUMERIC, "price"]:
        frame[name] = (frame[name] * rng.normal(1.0, 0.01, n_rows)).round(3)
    return frame


def grown_file(n_rows: int, folder: str | os.PathLike) -> Path:
    """The grown table as Parquet in ``folder``, written once."""
    path = Path(folder) / f"diamonds_{n_rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        grown_diamonds(n_rows).to_parquet(path, index=False)
    return path


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process, so the next peak is the next step's."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak RSS of this process since start or the last :func:`reset_peak_rss`, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status")


def percentiles(nanoseconds: list[int]) -> tuple[float, float]:
    """p50 and p99 of timings taken in nanoseconds, in microseconds."""
    p50, p99 = np.percentile(np.asarray(nanoseconds, dtype="float64") / 1e3, [50, 99])
    return float(p50), float(p99)


def diamonds_bundle(family: str, folder: str | os.PathLike | None = None) -> Path:
    """A bundle of the full diamonds table with one family, trained once and reused."""
    import mlkiln

    folder = Path(folder or os.environ.get("MLKILN_BENCH_DIR", "/tmp/mlkiln-bench"))
    path = folder / f"diamonds-{family}"
    if not (path / "MANIFEST.sha256").is_file():
        mlkiln.train(load_example("diamonds"), target="price", models=[family]).save(path, force=True)
    return path
