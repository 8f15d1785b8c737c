"""``mlkiln train`` (defaults) at two versions of the code, on the same tables, alternating; same cards?

    git worktree add /tmp/old OLD_COMMIT
    python benchmarks/bench_commits.py --old /tmp/old/src --tables penguins,cars --rounds 2 --work W

Each round trains every table once with each version (``PYTHONPATH=OLD`` against
this checkout), the order of the two alternating from round to round so that a
drift of the host's speed hits both; prints each run's wall time, the median
new / old ratio per table, and whether the two cards agree on everything but
timings (the same search, the same scores and the same model). The tables are
``bench_automl.py``'s (their CSV files are written to ``W`` on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_automl import TABLES

#: card fields that measure time, not what was decided
TIMINGS = {"fit_time_s", "search_time_s", "seconds", "train_seconds", "created_at", "latency_us"}


def train(src: str | None, name: str, work: Path, label: str) -> tuple[float, dict]:
    table = TABLES[name]
    data = work / f"{name}.csv"
    if not data.exists():
        table.load().to_csv(data, index=False)
    out = work / f"{label}-{name}"
    command = [sys.executable, "-m", "mlkiln", "train", str(data), "--target", table.target, "-o", str(out),
               "--force", "-q"] + (["--drop", *table.drop] if table.drop else [])
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{label} {name}: {done.stderr.strip()[-1000:]}")
    return wall, json.loads((out / "card.json").read_text())


def differences(a, b, path: str = "") -> list[str]:
    """Where two cards differ, timings aside."""
    if type(a) is not type(b):
        return [path]
    if isinstance(a, dict):
        return [d for k in sorted(set(a) | set(b)) if k not in TIMINGS for d in differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path} (length)"]
        return [d for i, (u, v) in enumerate(zip(a, b)) for d in differences(u, v, f"{path}[{i}]")]
    return [] if a == b else [path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the older version's src directory (put first on PYTHONPATH)")
    parser.add_argument("--tables", default="penguins,cars,seattle-weather,machine-failure,txhousing,health-insurance")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    names = args.tables.split(",")
    walls = {(name, label): [] for name in names for label in ("old", "new")}
    same = {}
    for r in range(args.rounds):
        for name in names:
            cards = {}
            for label in (("old", "new") if r % 2 == 0 else ("new", "old")):
                wall, cards[label] = train(args.old if label == "old" else None, name, args.work, label)
                walls[(name, label)].append(wall)
                print(f"round {r + 1}  {name:<18} {label}  {wall:6.2f} s", flush=True)
            same[name] = same.get(name, True) and not differences(cards["old"], cards["new"])
    print("\n| table | old s (each round) | new s (each round) | new / old (median) | cards equal but timings |")
    print("| --- | --- | --- | ---: | --- |")
    for name in names:
        old, new = walls[(name, "old")], walls[(name, "new")]
        ratio = statistics.median(n / o for n, o in zip(new, old))
        print(f"| {name} | {', '.join(f'{w:.2f}' for w in old)} | {', '.join(f'{w:.2f}' for w in new)} | "
              f"{ratio:.3f} | {'yes' if same[name] else 'NO'} |")


if __name__ == "__main__":
    main()
