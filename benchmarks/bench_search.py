"""Issue 6: grid vs successive halving vs random search at the same candidate count.

The HistGradientBoosting family (its grid in
``mlkiln.pipeline.REGISTRY["hgb"]``; random search draws as many from its distributions),
3-fold CV, on diamonds and on diamonds grown to 300k rows. ``grid`` is plain
scikit-learn's GridSearchCV; ``halving`` is mlkiln's default (first round at
least 20,000 rows); ``halving-exhaust`` is scikit-learn's own default start.

    python benchmarks/bench_search.py [--rows 300000]
"""

from __future__ import annotations

import argparse

from _common import grown_diamonds

import mlkiln
from mlkiln import tuning
from mlkiln.examples import load_example

STRATEGIES = {"grid": ("grid", None), "halving": ("halving", None), "halving-exhaust": ("halving", None),
              "random": ("random", 9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args()
    tables = {"diamonds (53,940)": load_example("diamonds"), f"grown ({args.rows:,})": grown_diamonds(args.rows)}
    print("| table | search | candidates | search s | time / grid | best CV R2 | test R2 | params |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |", flush=True)
    for name, frame in tables.items():
        grid_time = None
        for label, (search, trials) in STRATEGIES.items():
            floor = 1 if label == "halving-exhaust" else tuning.HALVING_MIN_ROWS
            saved, tuning.HALVING_MIN_ROWS = tuning.HALVING_MIN_ROWS, floor
            try:
                run = mlkiln.train(frame, "price", models=["hgb"], search=search, trials=trials)
            finally:
                tuning.HALVING_MIN_ROWS = saved
            row = run.card["leaderboard"][0]
            grid_time = grid_time or row["search_time_s"]
            print(f"| {name} | {label} | {row['candidates']} | {row['search_time_s']:.1f} | "
                  f"{row['search_time_s'] / grid_time:.2f} | {row['cv_mean']:.4f} | {run.metrics['test']['r2']:.4f} | "
                  f"{', '.join(f'{k}={v:.3g}' for k, v in row['params'].items())} |", flush=True)


if __name__ == "__main__":
    main()
