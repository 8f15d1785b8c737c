"""Issue 15: what the search for leaks over several columns adds to screening a large table.

Diamonds resampled with 1 % noise (``_common.grown_diamonds``), typed as
``train`` types it. Screening runs twice per repeat: ``schema.screen_columns_with_evidence``
(the column-by-column checks plus the combination search), and the
combination search alone as screening calls it (the sample drawn from the
full table, then :func:`mlkiln.leakage.find_combination_leaks`). On the
honest table (target ``price``, and ``cut`` as a classification target), and
with a planted leak (``price = cost + margin``, both columns added). Prints the best of ``--repeat`` runs and the search's share.

    python benchmarks/bench_leakage.py [--rows 5000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import grown_diamonds
from mlkiln import leakage
from mlkiln.schema import _screening_rows, coerce_frame, column_kind, screen_columns_with_evidence


def best_of(repeat: int, func) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(frame, target: str, task: str, repeat: int, label: str) -> None:
    y = frame.pop(target)
    kinds = {name: column_kind(frame[name]) for name in frame.columns}
    X = coerce_frame(frame, kinds)
    rows = _screening_rows(len(X), 0)
    numeric = [c for c, kind in kinds.items() if kind != "categorical"]
    screen_s, (reasons, _) = best_of(repeat, lambda: screen_columns_with_evidence(X, y, task, kinds))
    search_s, leaks = best_of(repeat, lambda: leakage.find_combination_leaks(
        X[numeric].iloc[rows], y.iloc[rows], task, {c: kinds[c] for c in numeric}))
    print(f"{label}: {len(X):,} rows x {len(kinds)} columns; screening {screen_s:.3f} s, of which the combination "
          f"search {search_s:.3f} s ({search_s / screen_s:.0%}); found: "
          f"{[leak.relation for leak in leaks] or 'nothing'}; excluded: {sorted(reasons) or 'nothing'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = grown_diamonds(args.rows)
    measure(frame.copy(), "price", "regression", args.repeat, "honest diamonds")
    measure(frame.copy(), "cut", "classification", args.repeat, "diamonds, target cut (5 classes)")
    rng = np.random.default_rng(1)
    margin = rng.normal(0, 2_000, len(frame)).round(2)  # neither part alone is close to the price
    frame["cost"], frame["margin"] = frame["price"] - margin, margin
    measure(frame, "price", "regression", args.repeat, "planted price = cost + margin")


if __name__ == "__main__":
    main()
