"""Issue 6: wall time and peak memory of ``train`` as the table grows (10k .. 5M rows).

Diamonds resampled with 1 % noise, as Parquet. Each run is a fresh process:
``--models linear``, the default run, and the plain scikit-learn way for the
linear model (pandas + one-hot/scaling + LinearRegression on the same 80 %).
Peak RSS is the training process's (VmHWM); for the default run also the
largest CV worker's. Writes a table to stdout and ``growth.png`` (log-log).

    python benchmarks/bench_growth.py [--rows 10000 100000 1000000 5000000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import HERE, grown_file, peak_rss_mb, reset_peak_rss, rss_mb

MODES = ("mlkiln-linear", "mlkiln-default", "sklearn-linear")


def one(path: str, mode: str) -> dict:
    """Train once in this process; return wall time, memory and the test R2."""
    start = time.perf_counter()
    if mode == "sklearn-linear":
        import pandas as pd
        from sklearn.compose import make_column_transformer
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        frame = pd.read_parquet(path)
        loaded = rss_mb()
        X, y = frame.drop(columns="price"), frame["price"]
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
        cats = ["cut", "color", "clarity"]
        model = make_pipeline(
            make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats), remainder=StandardScaler()),
            LinearRegression(),
        ).fit(X_train, y_train)
        r2 = model.score(X_test, y_test)
    else:
        import mlkiln
        from mlkiln.data import read_table

        frame = read_table(path)
        loaded = rss_mb()
        run = mlkiln.train(frame, "price", models=["linear"] if mode == "mlkiln-linear" else None)
        r2 = run.metrics["test"]["r2"]
    wall = time.perf_counter() - start
    peak = peak_rss_mb()
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # reap the CV workers, so their peak is counted below
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": wall, "peak_rss_mb": peak, "table_rss_mb": loaded, "worker_peak_rss_mb": workers, "test_r2": r2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 5_000_000])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--data", default="/tmp/mlkiln-growth", help="where the grown tables are written")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        reset_peak_rss()
        print(json.dumps(one(*args.one)))
        return
    rows = []
    print("| rows | run | wall s | peak RSS MB | table RSS MB | peak worker RSS MB | test R2 |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    for n in args.rows:
        path = grown_file(n, args.data)
        for mode in args.modes:
            out = subprocess.run([sys.executable, __file__, "--one", str(path), mode], capture_output=True, text=True)
            if out.returncode:
                print(f"| {n:,} | {mode} | failed: {out.stderr.strip().splitlines()[-1]} |", flush=True)
                continue
            r = {"rows": n, "mode": mode, **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(r)
            print(f"| {n:,} | {mode} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['table_rss_mb']:.0f} | "
                  f"{r['worker_peak_rss_mb']:.0f} | {r['test_r2']:.4f} |", flush=True)
    # a partial run (some sizes or modes) replaces only its own rows of the recorded results
    done = {(r["rows"], r["mode"]) for r in rows}
    saved = json.loads((HERE / "growth.json").read_text()) if (HERE / "growth.json").exists() else []
    rows = sorted([r for r in saved if (r["rows"], r["mode"]) not in done] + rows, key=lambda r: (r["rows"], MODES.index(r["mode"])))
    (HERE / "growth.json").write_text(json.dumps(rows, indent=1))
    plot(rows)


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        if not mine:
            continue
        n = [r["rows"] for r in mine]
        axes[0].loglog(n, [r["wall_s"] for r in mine], "o-", label=mode)
        axes[1].loglog(n, [max(r["peak_rss_mb"], r["worker_peak_rss_mb"]) for r in mine], "o-", label=mode)
    for ax, title in zip(axes, ["wall time (s)", "peak RSS (MB, largest process)"]):
        ax.set_xlabel("rows")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "growth.png", dpi=110)


if __name__ == "__main__":
    main()
