"""The anytime search under ``--budget``, and default training on millions of rows (issues 12.7 and 13.2).

Every run is ``mlkiln train`` in a fresh process, timed from its start to its
exit (imports, reading, search, final fit, evaluation, report and bundle), its
peak RSS from the kernel (the main process; the CV workers are separate
processes of at most one sample each). Tables, generated here, never
downloaded:

- regression: diamonds resampled to 5M rows (``_common.grown_diamonds``);
- classification: the AI4I-like machine-failure generator, eight seeds of
  50,000 rows (its largest) stacked: 400,000 rows, about 3.7 % failures.

Usage::

    python benchmarks/bench_budget.py                      # budgets 10, 30, 120 s on both tables, then the 5M default
    python benchmarks/bench_budget.py --budgets 30 --no-default
    python benchmarks/bench_budget.py --examples-only      # default train on diamonds and machine-failure
    python benchmarks/bench_budget.py --tables health-insurance,bundesliga,txhousing --budgets 10 20
                                                           # bench_automl.py's public tables of 1,000-60,000 rows

``PYTHONPATH=/path/to/other/src`` runs another checkout's mlkiln the same way
(the before/after comparison of RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import grown_file

BENCH_DIR = Path(os.environ.get("MLKILN_BENCH_DIR", "/tmp/mlkiln-bench"))
FAILURE_ROWS_PER_SEED, FAILURE_SEEDS = 50_000, 8


def failure_file(folder: Path) -> Path:
    """The 400k-row binary table as Parquet in ``folder``, written once."""
    from mlkiln.synthetic import make_machine_failure

    path = folder / f"failure_{FAILURE_ROWS_PER_SEED * FAILURE_SEEDS}.parquet"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        frames = [make_machine_failure(FAILURE_ROWS_PER_SEED, seed=k) for k in range(FAILURE_SEEDS)]
        pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path


def package_table(name: str) -> tuple[str, Path, list[str], pd.Series]:
    """One of bench_automl.py's public tables as CSV in BENCH_DIR (written once), its train arguments, its target."""
    from bench_automl import HOLDOUT, TABLES

    table = {**TABLES, **HOLDOUT}[name]
    path = BENCH_DIR / f"{name}.csv"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        table.load().to_csv(path, index=False)
    args = ["--target", table.target] + (["--drop", *table.drop] if table.drop else [])
    return name, path, args, pd.read_csv(path, usecols=[table.target])[table.target]


def run_train(args: list[str], out: Path) -> dict:
    """``mlkiln train ARGS -o OUT`` in a fresh process: wall seconds, peak RSS (MB), the card."""
    command = [sys.executable, "-m", "mlkiln", "train", *args, "-o", str(out), "--force", "-q"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr}")
    card = json.loads((out / "card.json").read_text())
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "card": card, "command": " ".join(command[1:])}


def baseline(card: dict, y: pd.Series) -> tuple[str, float, float]:
    """The card's test score and the trivial model's: the majority class's macro-F1, or R2 of the mean (0); for
    more than two classes, log loss and the class shares' (the majority class's macro-F1 says little there)."""
    if card["task"] == "regression":
        return "r2", card["metrics"]["test"]["r2"], 0.0
    shares = y.value_counts(normalize=True)
    if len(shares) > 2:
        return "log_loss", card["metrics"]["test"]["log_loss"], float(-(shares * np.log(shares)).sum())
    share = y.value_counts(normalize=True).max()  # the test split is stratified: the same share
    return "f1_macro", card["metrics"]["test"]["f1_macro"], share / (1 + share)  # majority F1 2p/(1+p), others 0


def describe(card: dict) -> str:
    model = card["model"]
    if model["members"]:
        return "ensemble of " + ", ".join(m["name"] for m in model["members"])
    return model["family"]


def budgets(tables: list[tuple[str, Path, list[str], pd.Series]], seconds: list[float]) -> None:
    print("| table | budget s | wall s | over budget | chosen model | test score | trivial model | steps (rows) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, path, extra, y in tables:
        for budget in seconds:
            r = run_train([str(path), *extra, "--budget", str(budget)], BENCH_DIR / f"budget-{name}-{budget:g}")
            metric, score, trivial = baseline(r["card"], y)
            steps = ", ".join(f"{s['step']} {s['rows']:,}" for s in r["card"]["tuning"].get("steps", []))
            test = r["card"]["metrics"]["test"]
            more = "".join(f", {m} {test[m]:.4f}" for m in ("roc_auc", "log_loss") if m in test and m != metric)
            print(f"| {name} | {budget:g} | {r['seconds']:.1f} | {r['seconds'] / budget:.2f}x | {describe(r['card'])} "
                  f"| {metric} {score:.4f}{more} | {trivial:.4f} | {steps} |", flush=True)


def default_train(name: str, args: list[str], table_mb: float | None = None) -> None:
    r = run_train(args, BENCH_DIR / f"default-{name}")
    test = r["card"]["metrics"]["test"]
    score = f"R2 {test['r2']:.4f}" if "r2" in test else f"ROC AUC {test['roc_auc']:.4f}, macro-F1 {test['f1_macro']:.4f}"
    over = "" if table_mb is None else f" (table in memory {table_mb:.0f} MB: {r['peak_mb'] - table_mb:+.0f} MB)"
    print(f"- default train, {name}: {r['seconds']:.1f} s, peak RSS {r['peak_mb']:.0f} MB{over}, test {score}, "
          f"model {describe(r['card'])}; steps: "
          + ", ".join(f"{s['step']} {s['rows']:,} rows {s['seconds']:.0f} s" for s in r["card"]["tuning"].get("steps", []))
          + f"\n  `{r['command']}`", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 30, 120])
    parser.add_argument("--no-default", action="store_true", help="skip the default train on 5M rows")
    parser.add_argument("--examples-only", action="store_true", help="only default train on the two examples")
    parser.add_argument("--tables", help="comma-separated tables of bench_automl.py instead of the two large ones")
    args = parser.parse_args()
    import mlkiln

    print(f"mlkiln {mlkiln.__version__} from {Path(mlkiln.__file__).parent}")
    if args.tables:
        budgets([package_table(name) for name in args.tables.split(",")], args.budgets)
        return
    if args.examples_only:
        default_train("diamonds", ["--example", "diamonds"])
        default_train("machine-failure", ["--example", "machine-failure"])
        return
    diamonds, failure = grown_file(5_000_000, BENCH_DIR), failure_file(BENCH_DIR)
    y_failure = pd.read_parquet(failure, columns=["Machine failure"])["Machine failure"]
    budgets([("diamonds 5M", diamonds, ["--target", "price"], None),
             ("machine failure 400k", failure, ["--target", "Machine failure", "--drop", "RNF"], y_failure)],
            args.budgets)
    if not args.no_default:
        table_mb = pd.read_parquet(diamonds).memory_usage(deep=True).sum() / 2**20
        default_train("diamonds 5M", [str(diamonds), "--target", "price"], table_mb)


if __name__ == "__main__":
    main()
