"""``mlkiln drift`` on 1,000,000 rows: time and peak memory of each step.

    python benchmarks/bench_drift.py [--rows 1000000] [--family hgb]

The rows are diamonds resampled with replacement (``_common.grown_diamonds``)
and then shifted: carat x1.2, 5 % of color replaced by an unseen "Z", 10 % of
depth missing. The bundle is the full diamonds table with one family. Steps:
read the Parquet file, ``drift.check`` (conform as ``predict`` does, score,
compare with the profile; the comparison alone timed separately), and writing
drift.html + drift.json. Peak RSS is this process's high-water mark over the
whole check, table included.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import mlkiln
from mlkiln import drift, drift_report
from mlkiln.data import read_table
from _common import diamonds_bundle, grown_diamonds, peak_rss_mb, reset_peak_rss, rss_mb


def shifted_table(rows: int, folder: Path) -> Path:
    path = folder / f"diamonds_shifted_{rows}.parquet"
    if not path.exists():
        rng = np.random.default_rng(1)
        frame = grown_diamonds(rows, seed=1).drop(columns="price")
        frame["carat"] = frame["carat"] * 1.2
        frame.loc[rng.random(rows) < 0.05, "color"] = "Z"
        frame.loc[rng.random(rows) < 0.10, "depth"] = np.nan
        frame.to_parquet(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--family", default="hgb")
    args = parser.parse_args()
    model = mlkiln.load(diamonds_bundle(args.family))
    with tempfile.TemporaryDirectory() as tmp:
        data = shifted_table(args.rows, Path(tmp))
        base = rss_mb()
        reset_peak_rss()
        t0 = time.perf_counter()
        frame = read_table(data)
        t1 = time.perf_counter()
        result = drift.check(model, frame)
        t2 = time.perf_counter()
        doc = drift_report.document(result, model.card, data.name)
        drift_report.write(Path(tmp) / "drift.html", doc)
        t3 = time.perf_counter()
        peak = peak_rss_mb()
        X = model.prepare(frame)
        prediction, _ = model.predictor.score(X)
        t4 = time.perf_counter()
        drift.compare(model.card.profile, X, prediction)
        t5 = time.perf_counter()
    print(f"{args.rows:,} rows, {args.family} bundle; RSS before reading {base:.0f} MB")
    print(f"read {t1 - t0:.2f} s | check {t2 - t1:.2f} s (of which compare {t5 - t4:.2f} s) | "
          f"write html+json {t3 - t2:.2f} s | total {t3 - t0:.2f} s | peak RSS {peak:.0f} MB ({peak - base:.0f} MB above start)")
    print(drift_report.terminal_table(doc))


if __name__ == "__main__":
    main()
