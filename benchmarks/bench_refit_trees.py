"""How many trees the final fit should grow: the folds' count times 1, 1.25, 1.5 and 2, scored on test rows.

Gradient boosting's number of trees is chosen on k folds, each fitted on (k - 1) / k of the training rows; the
final fit has all of them. For each table split of ``bench_automl.py``'s work directory (run that first: it
writes each split's ``train.parquet`` and ``test.parquet``), this runs ``mlkiln.train`` with ``models=["hgb"]``
on the training rows with the count left as the folds chose it (``pipeline.REFIT_STAGES`` off), then refits
that pipeline on all the training rows with the count times each factor and scores the test rows with
``bench_automl.scores`` (R2; log loss and ROC AUC). Where the chosen model has no count (a threshold-tuned
binary model, or no stopping), the split is skipped and says so.

    python benchmarks/bench_refit_trees.py --tables cars,txhousing,forbes2000-seed1 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd
from sklearn.base import clone

import mlkiln
from mlkiln import pipeline

sys.path.insert(0, str(Path(__file__).parent))
from bench_automl import scores  # noqa: E402

FACTORS = (1.0, 1.25, 1.5, 2.0)
WORK = Path("/tmp/mlkiln-bench-automl")


def refit_scores(work: Path) -> dict | None:
    """The split's chosen hgb refitted with the count times each factor: ``{factor: scores}``, or None."""
    card = mlkiln.load(work / "mlkiln-model").card
    train, test = pd.read_parquet(work / "train.parquet"), pd.read_parquet(work / "test.parquet")
    target = card.target
    pipeline.REFIT_STAGES = False
    run = mlkiln.train(train, target=target, models=["hgb"], seed=card.split.seed)
    pipe, params = run.pipeline, run.card.model.params
    if not hasattr(pipe, "named_steps") or params.get("early_stopping") is not False:
        return None
    model = run.model
    X, X_test = model.prepare(train.drop(columns=[target])), model.prepare(test.drop(columns=[target]))
    y, y_test = train[target], test[target]
    out = {"trees": int(params["max_iter"])}
    # a binary model with a tuned threshold is the pipeline inside scikit-learn's FixedThresholdClassifier
    key = "model__estimator__max_iter" if hasattr(pipe.named_steps["model"], "estimator") else "model__max_iter"
    for factor in FACTORS:
        fitted = clone(pipe).set_params(**{key: max(1, round(params["max_iter"] * factor))}).fit(X, y)
        if run.card.task == "regression":
            out[factor] = scores("regression", [], y_test, fitted.predict(X_test))
        else:
            out[factor] = scores("classification", list(fitted.classes_), y_test.to_numpy(),
                                 proba=fitted.predict_proba(X_test))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", required=True, help="comma-separated work directories under --work")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results, better, worse = {}, 0, 0
    print(f"{'split':<24} {'trees':>5}  " + "  ".join(f"x{f:<17g}" for f in FACTORS) + "  x1.5 minus x1")
    for name in args.tables.split(","):
        found = refit_scores(args.work / name)
        if found is None:
            print(f"{name:<24} skipped: the chosen model has no tree count chosen on the folds")
            continue
        key = "r2" if "r2" in found[1.0] else "log_loss"
        sign = 1 if key == "r2" else -1
        gain = sign * (found[1.5][key] - found[1.0][key])
        better, worse = better + (gain > 0), worse + (gain < 0)
        cells = "  ".join(f"{key} {found[f][key]:.5f}".ljust(18) for f in FACTORS)
        print(f"{name:<24} {found['trees']:>5}  {cells}  {gain:+.5f}", flush=True)
        results[name] = {"trees": found["trees"], **{str(f): found[f] for f in FACTORS}}
    print(f"x1.5 better than x1 on {better} of {better + worse} splits, worse on {worse} "
          "(R2 higher, or log loss lower)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
