"""mlkiln's default ``train`` vs FLAML's AutoML, on the same rows and columns of the bundled examples.

FLAML (Microsoft; LightGBM, XGBoost, forests, ...) is a fast AutoML library.
It searches for a wall-clock budget while mlkiln runs a fixed search, so FLAML
runs at 60 s, at mlkiln's own time (rounded up) and at twice it. Both train
on mlkiln's training rows with the feature columns mlkiln kept (identifiers
and leaks excluded, text as pandas categories) and are scored once on
mlkiln's test rows with the same scikit-learn metrics. FLAML optimises
mlkiln's selection metric (R2; macro-F1 on machine-failure, where mlkiln also
tunes the decision threshold and FLAML predicts the likelier class). Times are
wall clock on all cores (mlkiln's default; FLAML n_jobs=2); the load average
is printed because other work on the machine skews them.

FLAML needs its own environment (it pins xgboost<3); from the repository root:

    python3 -m venv /tmp/flamlvenv && /tmp/flamlvenv/bin/pip install -e . 'flaml[automl]'
    /tmp/flamlvenv/bin/python benchmarks/bench_flaml.py [--examples diamonds] [--budgets 60 1x 2x] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from collections.abc import Iterator

import pandas as pd
from bench_train import _scores
from flaml import AutoML

import mlkiln
from mlkiln.data import split_train_test
from mlkiln.examples import EXAMPLES, load_example
from mlkiln.schema import coerce_frame, coerce_target

FLAML_METRIC = {"r2": "r2", "f1_macro": "macro_f1", "accuracy": "accuracy"}  # mlkiln's name -> FLAML's


def mlkiln_split(frame: pd.DataFrame, card: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The exact train/test rows and feature columns of the run that made ``card``, as mlkiln builds them."""
    kinds = {c["name"]: c["kind"] for c in card["schema"]["columns"]}
    y = coerce_target(frame[card["target"]], card["task"])
    X = coerce_frame(frame.loc[y.index], kinds)
    X = X.astype({name: "category" for name, kind in kinds.items() if kind == "categorical"})
    split = card["split"]
    return split_train_test(X, y, test_size=split["test_size"], seed=split["seed"], stratify=split["stratified"])


def safe(name: str) -> str:
    """LightGBM refuses JSON's special characters in feature names ("Air temperature [K]"); FLAML passes names on."""
    return re.sub(r'[\[\]{}":,]', "_", name)


def seconds(budget: str, t_mlkiln: float) -> int:
    """A ``--budgets`` entry in seconds: ``60`` is 60 s, ``2x`` is twice mlkiln's time, rounded up."""
    if budget.endswith("x"):
        return math.ceil(float(budget[:-1]) * t_mlkiln)
    return math.ceil(float(budget))


def run_flaml(split: tuple, task: str, metric: str, budget: int) -> tuple[float, dict, str]:
    """Fit FLAML for ``budget`` seconds; its wall time, test scores and chosen model."""
    X_train, X_test, y_train, y_test = split
    X_train, X_test = X_train.rename(columns=safe), X_test.rename(columns=safe)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(X_train, y_train, task=task, time_budget=budget, metric=FLAML_METRIC[metric],
               seed=0, n_jobs=2, verbose=0)
    wall = time.perf_counter() - start
    config = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in automl.best_config.items())
    return wall, _scores(task, y_test, automl.predict(X_test)), f"{automl.best_estimator} ({config})"


def bench(example: str, budgets: list[str]) -> Iterator[str]:
    """Markdown rows, each as soon as it is measured: mlkiln default, then FLAML at each budget."""
    frame = load_example(example)
    start = time.perf_counter()
    run = mlkiln.train(frame, EXAMPLES[example].target, drop=list(EXAMPLES[example].drop), seed=0)
    t_mlkiln = time.perf_counter() - start
    card = run.card
    task, metric = card["task"], card["metric"]["name"]
    split = mlkiln_split(frame, card)
    ours = _scores(task, split[3], run.pipeline.predict(split[1]))
    test = card["metrics"]["test"][metric]
    if not math.isclose(ours[metric], test, abs_tol=1e-9):
        raise RuntimeError(f"recovered test rows differ from mlkiln's: {metric} {ours[metric]} != {test}")

    def row(tool: str, wall: float, scores: dict, model: str) -> str:
        text = ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        return (f"| {example} | {tool} | {wall:.1f} | {t_mlkiln / wall:.2f} | {text} | "
                f"{scores[metric] - ours[metric]:+.4f} | {model} |")

    model = card["model"]
    params = ", ".join(f"{k}={v}" for k, v in model["params"].items())
    threshold = f", threshold={model['threshold']:.3f}" if model["threshold"] is not None else ""
    yield row("mlkiln default", t_mlkiln, ours, f"{model['family']} ({params}{threshold})")
    for budget in budgets:
        b = seconds(budget, t_mlkiln)
        yield row(f"FLAML {b} s ({budget})", *run_flaml(split, task, metric, b))


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    parser.add_argument("--budgets", nargs="+", default=["60", "1x", "2x"],
                        help="FLAML time budgets: seconds (60) or multiples of mlkiln's time (1x, 2x)")
    parser.add_argument("--quick", action="store_true", help="smoke test: one FLAML budget of 5 s")
    args = parser.parse_args()
    budgets = ["5"] if args.quick else args.budgets
    print(f"load average (1, 5, 15 min) at start: {load()}; cores: {os.cpu_count()}\n")
    print("| example | tool (budget) | wall s | mlkiln s / wall s | test scores | Δ selection metric | model |")
    print("| --- | --- | ---: | ---: | --- | ---: | --- |")
    for example in args.examples:
        for row in bench(example, budgets):
            print(row, flush=True)
    print(f"\nload average (1, 5, 15 min) at end: {load()}")


if __name__ == "__main__":
    main()
