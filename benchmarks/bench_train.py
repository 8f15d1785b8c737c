"""Issue 6: ``mlkiln train`` (defaults) vs a hand-written scikit-learn GridSearchCV over the same families.

Both see the same rows, the same test split (20 %, seed 0) and the same
hyperparameter grids (``mlkiln.pipeline.REGISTRY``); the hand-written way
drops the columns mlkiln excluded (a careful user would drop them too), runs
``GridSearchCV(n_jobs=-1)`` per family, keeps the best mean CV score and
scores that family's refitted model on the test split once.

    python benchmarks/bench_train.py [--example diamonds machine-failure]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, r2_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import mlkiln
from mlkiln.examples import EXAMPLES, load_example
from mlkiln.pipeline import REGISTRY

ESTIMATORS = {
    "regression": {
        "linear": LinearRegression(), "ridge": Ridge(), "lasso": Lasso(max_iter=5000),
        "hgb": HistGradientBoostingRegressor(random_state=0), "rf": RandomForestRegressor(random_state=0),
    },
    "classification": {
        "logistic_l1": LogisticRegression(l1_ratio=1.0, solver="liblinear", max_iter=2000),
        "logistic_l2": LogisticRegression(max_iter=2000),
        "hgb": HistGradientBoostingClassifier(random_state=0), "rf": RandomForestClassifier(random_state=0),
    },
}


def plain_sklearn(frame, target, task, excluded):
    """The hand-written way: one GridSearchCV per family, best mean CV score wins, test once."""
    X = frame.drop(columns=[target, *excluded])
    y = frame[target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=y if task == "classification" else None)
    categorical = [c for c in X if X[c].dtype == object or str(X[c].dtype) in ("str", "string", "category")]
    numeric = [c for c in X if c not in categorical]
    scoring = "r2" if task == "regression" else "f1_macro"
    best = None
    for family, estimator in ESTIMATORS[task].items():
        linear = family not in ("hgb", "rf")
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()) if linear else "passthrough", numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore") if linear
             else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
        ])
        grid = {f"model__{k}": v for k, v in REGISTRY[family].space().items()}
        search = GridSearchCV(Pipeline([("prep", prep), ("model", estimator)]), grid, cv=3, scoring=scoring, n_jobs=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(X_train, y_train)
        if best is None or search.best_score_ > best.best_score_:
            best = search
    pred = best.predict(X_test)
    return _scores(task, y_test, pred)


def _scores(task, y, pred) -> dict:
    if task == "regression":
        return {"r2": r2_score(y, pred)}
    return {"f1_macro": f1_score(y, pred, average="macro"), "accuracy": accuracy_score(y, pred)}


def bench(example: str) -> dict:
    frame = load_example(example)
    target, drop = EXAMPLES[example].target, list(EXAMPLES[example].drop)
    start = time.perf_counter()
    run = mlkiln.train(frame, target, drop=drop)
    t_mlkiln = time.perf_counter() - start
    task = run.card.task
    test = run.metrics["test"]
    ours = {k: test[k] for k in _scores(task, [0, 1], [0, 1])}
    start = time.perf_counter()
    theirs = plain_sklearn(frame, target, task, [*run.card.excluded, *drop])
    t_plain = time.perf_counter() - start
    return {"example": example, "task": task, "mlkiln_s": t_mlkiln, "sklearn_s": t_plain,
            "time_ratio": t_mlkiln / t_plain, "mlkiln": ours, "sklearn": theirs,
            "model": run.card.model.family, "params": run.card.model.params}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", nargs="+", default=["diamonds", "machine-failure"])
    args = parser.parse_args()
    print("| example | mlkiln s | GridSearchCV s | time ratio | mlkiln test | GridSearchCV test | mlkiln model |")
    print("| --- | ---: | ---: | ---: | --- | --- | --- |")
    for example in args.example:
        r = bench(example)
        fmt = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.items())  # noqa: E731
        print(f"| {r['example']} | {r['mlkiln_s']:.1f} | {r['sklearn_s']:.1f} | {r['time_ratio']:.2f} | "
              f"{fmt(r['mlkiln'])} | {fmt(r['sklearn'])} | {r['model']} {json.dumps(r['params'])} |", flush=True)


if __name__ == "__main__":
    main()
