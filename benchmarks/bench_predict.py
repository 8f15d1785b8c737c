"""Single-row latency and batch throughput: scikit-learn Pipeline vs mlkiln's compiled path.

    python benchmarks/bench_predict.py [--calls 5000] [--rows 1000000]

Both ways are measured in the same run on the same rows, so the ratios hold
even on a busy machine. Single row: ``pipeline.predict`` on a 1-row DataFrame
(already in the pipeline's dtypes) vs ``Model.predict_record`` on a dict,
which also validates the record against the schema. Batch: ``pipeline.predict``
vs the compiled predictor on the same conformed frame.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import mlkiln
from mlkiln.examples import load_example
from _common import diamonds_bundle, percentiles


def single_row(model, records: list[dict], calls: int) -> dict:
    frames = [model.prepare(r) for r in records[:50]]
    # one loop per side: interleaved, the OpenMP threads that scikit-learn leaves
    # spinning after each call would steal the core from the next mlkiln call
    sk, ours = [], []
    for i in range(calls):
        t = time.perf_counter_ns()
        model.pipeline.predict(frames[i % len(frames)])
        sk.append(time.perf_counter_ns() - t)
    for i in range(calls):
        t = time.perf_counter_ns()
        model.predict_record(records[i % len(frames)])
        ours.append(time.perf_counter_ns() - t)
    (s50, s99), (o50, o99) = percentiles(sk), percentiles(ours)
    return {"sklearn_p50": s50, "sklearn_p99": s99, "mlkiln_p50": o50, "mlkiln_p99": o99}


def batch(model, rows: int) -> dict:
    data = load_example("diamonds").drop(columns="price")
    data = data.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    X = model.prepare(data)
    t = time.perf_counter()
    expected = model.pipeline.predict(X)
    sk = time.perf_counter() - t
    t = time.perf_counter()
    got = model.predictor.score(X)[0]
    ours = time.perf_counter() - t
    assert np.allclose(got, expected, rtol=1e-9, atol=0)
    t = time.perf_counter()
    model.predict(data)
    end_to_end = time.perf_counter() - t
    return {"sklearn_rows_s": rows / sk, "mlkiln_rows_s": rows / ours, "mlkiln_with_checks_rows_s": rows / end_to_end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    records = load_example("diamonds").drop(columns="price").sample(50, random_state=1).to_dict("records")
    print(f"single row, {args.calls} calls each (us)")
    print(f"{'bundle':10} {'sklearn p50':>12} {'p99':>9} {'mlkiln p50':>11} {'p99':>7} {'p50 ratio':>10} {'p99 ratio':>10}")
    for family in ("linear", "hgb"):
        model = mlkiln.load(diamonds_bundle(family))
        assert model.predictor.compiled, model.predictor.reason
        r = single_row(model, records, args.calls)
        print(f"{family:10} {r['sklearn_p50']:12.1f} {r['sklearn_p99']:9.1f} {r['mlkiln_p50']:11.1f} {r['mlkiln_p99']:7.1f} "
              f"{r['sklearn_p50'] / r['mlkiln_p50']:9.0f}x {r['sklearn_p99'] / r['mlkiln_p99']:9.0f}x")
    print(f"\nbatch, {args.rows:,} rows (rows/s)")
    print(f"{'bundle':10} {'sklearn':>12} {'mlkiln':>12} {'ratio':>7} {'mlkiln incl. checks':>20}")
    for family in ("linear", "hgb"):
        model = mlkiln.load(diamonds_bundle(family))
        r = batch(model, args.rows)
        print(f"{family:10} {r['sklearn_rows_s']:12,.0f} {r['mlkiln_rows_s']:12,.0f} "
              f"{r['mlkiln_rows_s'] / r['sklearn_rows_s']:6.1f}x {r['mlkiln_with_checks_rows_s']:20,.0f}")


if __name__ == "__main__":
    main()
