"""Fit FLAML or AutoGluon-Tabular for a time limit on a training file and write its test predictions.

``bench_automl.py`` runs this script inside each tool's own virtual
environment (the tools pin versions of LightGBM, XGBoost and pandas that
differ from mlkiln's and from each other's), so it imports neither mlkiln nor
the driver. It writes the test predictions to ``--out`` (regression: a
``prediction`` column; classification: one probability column per class,
named by the class label as text) and, beside it, ``<out>.json`` with the
tool's version, the measured times and the winning model.

    /work/venvs/flaml/bin/python benchmarks/automl_runner.py --tool flaml \
        --train train.parquet --test test.parquet --target price --task regression --seconds 60 --out flaml.parquet
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before the heavy imports: the process time includes them

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

#: the metric each tool optimises: R2 for regression, log loss (a proper score, so good probabilities
#: give both a good log loss and a good ROC AUC) for classification
FLAML_METRIC = {"regression": "r2", "binary": "log_loss", "multiclass": "log_loss"}
AUTOGLUON_METRIC = {"regression": "r2", "binary": "log_loss", "multiclass": "log_loss"}


def safe(name: str) -> str:
    """LightGBM refuses JSON's special characters in feature names ("Air temperature [K]")."""
    return re.sub(r'[\[\]{}":,]', "_", name)


def fit_flaml(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, seconds: float):
    """FLAML's AutoML for ``seconds``; predictions on ``test`` and its winner."""
    import flaml
    from flaml import AutoML

    automl = AutoML()
    automl.fit(train.drop(columns=target), train[target],
               task="regression" if task == "regression" else "classification", time_budget=seconds,
               metric=FLAML_METRIC[task], n_jobs=2, seed=0, verbose=0)
    fitted = time.perf_counter()
    X_test = test.drop(columns=target)
    if task == "regression":
        predictions = pd.DataFrame({"prediction": automl.predict(X_test)})
    else:
        predictions = pd.DataFrame(automl.predict_proba(X_test), columns=[str(c) for c in automl.classes_])
    losses = {name: round(loss, 6) for name, loss in (automl.best_loss_per_estimator or {}).items() if loss is not None}
    model = {"best": automl.best_estimator, "config": automl.best_config, "validation_loss": automl.best_loss,
             "loss_per_estimator": losses}
    return predictions, fitted, model, flaml.__version__


def fit_autogluon(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str, seconds: float):
    """AutoGluon-Tabular (default presets, medium_quality) for ``seconds``; predictions on ``test`` and its winner."""
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    with tempfile.TemporaryDirectory(prefix="autogluon-") as path:
        predictor = TabularPredictor(label=target, problem_type=task, eval_metric=AUTOGLUON_METRIC[task], path=path,
                                     verbosity=0)
        predictor.fit(train, time_limit=seconds)
        fitted = time.perf_counter()
        X_test = test.drop(columns=target)
        if task == "regression":
            predictions = pd.DataFrame({"prediction": predictor.predict(X_test).to_numpy()})
        else:
            proba = predictor.predict_proba(X_test, as_multiclass=True)
            predictions = pd.DataFrame(proba.to_numpy(), columns=[str(c) for c in proba.columns])
        board = predictor.leaderboard(silent=True)
        model = {"best": predictor.model_best, "ensemble_weights": _ensemble_weights(predictor),
                 "leaderboard": [{"model": r.model, "score_val": round(float(r.score_val), 6),
                                  "fit_time": round(float(r.fit_time), 2)} for r in board.head(8).itertuples()]}
    return predictions, fitted, model, autogluon.tabular.__version__


def _ensemble_weights(predictor) -> dict:
    """The weights of the best model's members when it is a weighted ensemble (AutoGluon's usual winner)."""
    try:
        weights = predictor._trainer.load_model(predictor.model_best)._get_model_weights()
        return {k: round(float(v), 4) for k, v in weights.items()}
    except (AttributeError, KeyError):  # not an ensemble: no weights to show
        return {}


FIT = {"flaml": fit_flaml, "autogluon": fit_autogluon}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", required=True, choices=list(FIT))
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", required=True, choices=["regression", "binary", "multiclass"])
    parser.add_argument("--seconds", required=True, type=float)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    train, test = pd.read_parquet(args.train), pd.read_parquet(args.test)
    train, test = train.rename(columns=safe), test.rename(columns=safe)
    start = time.perf_counter()
    predictions, fitted, model, version = FIT[args.tool](train, test, safe(args.target), args.task, args.seconds)
    predictions.to_parquet(args.out, index=False)
    end = time.perf_counter()
    info = {"tool": args.tool, "version": version, "seconds": args.seconds, "fit_s": fitted - start,
            "fit_predict_s": end - start, "process_s": end - STARTED, "model": model}
    Path(args.out).with_suffix(".json").write_text(json.dumps(info, indent=1, default=str))


if __name__ == "__main__":
    main()
