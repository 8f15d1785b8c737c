"""Issue 6: one fit of the linear-regression pipeline on a large table, streamed vs plain ``Pipeline.fit``.

Diamonds resampled with 1 % noise (``_common.grown_file``), read and typed as
``train`` does (numbers as float64, text as categories). Each way runs in a
fresh process, so its peak RSS (VmHWM) above the loaded table is its own.
Prints time, memory, the ratios, and how far apart the two fitted pipelines
are (coefficients, predictions on 100,000 rows).

    python benchmarks/bench_linear_fit.py [--rows 5000000] [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import grown_file, peak_rss_mb, reset_peak_rss, rss_mb

WAYS = ("plain", "streamed")


def one(path: str, way: str, out: str) -> None:
    """Fit once in this process; save the pipeline and print time and memory as JSON."""
    import joblib
    import pandas as pd

    from mlkiln import least_squares
    from mlkiln.data import read_table
    from mlkiln.pipeline import build_pipeline
    from mlkiln.schema import coerce_frame, column_kind

    frame = read_table(path)
    y = frame.pop("price").astype("float64")
    kinds = {name: column_kind(frame[name]) for name in frame.columns}
    kinds = {name: kinds[name] for name in sorted(kinds, key=lambda n: kinds[n] == "categorical")}
    X = coerce_frame(frame, kinds)
    del frame
    text = [name for name, kind in kinds.items() if kind == "categorical"]
    X = X.astype({n: pd.CategoricalDtype(pd.Index(X[n].dropna().unique(), dtype=object)) for n in text})
    pipe = build_pipeline("regression", "linear", kinds, max_categories=None)
    loaded = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    if way == "plain":
        pipe.fit(X, y)
    else:
        least_squares.fit(pipe, X, y)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb() - loaded
    joblib.dump(pipe, out)
    print(json.dumps({"seconds": seconds, "peak_above_table_mb": peak, "table_mb": loaded}))


def compare(path: str, plain: str, streamed: str) -> dict:
    """Largest differences between the two fitted pipelines."""
    import joblib
    import numpy as np
    import pandas as pd

    from mlkiln.data import read_table
    from mlkiln.schema import coerce_frame, column_kind

    frame = read_table(path).head(100_000)
    frame.pop("price")
    kinds = {name: column_kind(frame[name]) for name in frame.columns}
    X = coerce_frame(frame, kinds)
    a, b = joblib.load(plain), joblib.load(streamed)
    pa, pb = a.predict(X), b.predict(X)
    ca, cb = a[-1].coef_, b[-1].coef_
    return {
        "max_coef_diff_rel": float(np.max(np.abs(ca - cb)) / np.max(np.abs(ca))),
        "max_pred_diff_rel": float(np.max(np.abs(pa - pb)) / np.std(pa)),
        "rank": [int(a[-1].rank_), int(b[-1].rank_)],
        "n_columns": int(a[-1].n_features_in_),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "mlkiln-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="fits per way; the best time and its memory are reported")
    parser.add_argument("--one", nargs=3, metavar=("PATH", "WAY", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(*args.one)
        return
    path = str(grown_file(args.rows, args.data))
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for way in WAYS:
                out = str(Path(tmp) / f"{way}.joblib")
                done = subprocess.run([sys.executable, __file__, "--one", path, way, out],
                                      check=True, capture_output=True, text=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if way not in best or result["seconds"] < best[way]["seconds"]:
                    best[way] = result
        diff = compare(path, str(Path(tmp) / "plain.joblib"), str(Path(tmp) / "streamed.joblib"))
    print(f"one linear-regression pipeline fit, {args.rows:,} rows, {diff['n_columns']} design columns "
          f"(best of {args.repeat}; table {best['plain']['table_mb']:,.0f} MB)")
    print(f"{'way':<10} {'seconds':>8} {'peak MB above table':>20}")
    for way in WAYS:
        print(f"{way:<10} {best[way]['seconds']:>8.2f} {best[way]['peak_above_table_mb']:>20,.0f}")
    print(f"ratio plain/streamed: time {best['plain']['seconds'] / best['streamed']['seconds']:.1f}x, "
          f"memory {best['plain']['peak_above_table_mb'] / max(best['streamed']['peak_above_table_mb'], 1):.1f}x")
    print(f"largest difference: coefficients {diff['max_coef_diff_rel']:.1e} (relative), "
          f"predictions {diff['max_pred_diff_rel']:.1e} (of their sd); rank {diff['rank'][0]} vs {diff['rank'][1]}")
    print(json.dumps({"rows": args.rows, **{w: best[w] for w in WAYS}, **diff}))


if __name__ == "__main__":
    main()
