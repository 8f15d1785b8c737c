"""The course's two worked examples: mlkiln against the course's plain scikit-learn recipe.

Run: python benchmarks/bench_course.py   (full data, default settings; a few minutes on 2 cores)

For each example, in one run and on the same split:
- the course's recipe written by hand in scikit-learn (LinearRegression for
  diamonds; L1 logistic regression with C picked by 3-fold GridSearchCV for
  machine failure, with identifiers and leaking flags dropped by hand),
- mlkiln restricted to the course's family (``--models linear`` / ``logistic_l1``),
- mlkiln's default run (every family, tuned),
with wall time and the headline test metrics, and ratios against the recipe.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score, r2_score, recall_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlkiln
from mlkiln.examples import EXAMPLES, load_example

SEED = 0


def timed(func):
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def course_diamonds(frame):
    X, y = frame.drop(columns="price"), frame["price"]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=SEED)
    cats = ["cut", "color", "clarity"]
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats), remainder=StandardScaler()),
        LinearRegression(),
    ).fit(X_tr, y_tr)
    return {"test_r2": r2_score(y_te, pipe.predict(X_te))}


def course_failure(frame):
    X, y = frame.drop(columns="Machine failure"), frame["Machine failure"]
    # identifiers and the failure-mode flags (which leak the target) dropped by hand, as mlkiln does by itself
    X = X.drop(columns=["UDI", "Product ID", "TWF", "HDF", "PWF", "OSF", "RNF"])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    pipe = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["Type"]), remainder=StandardScaler()),
        LogisticRegression(l1_ratio=1.0, solver="liblinear"),
    )
    search = GridSearchCV(pipe, {"logisticregression__C": np.logspace(-3, 2, 11)}, cv=3, scoring="f1_macro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X_tr, y_tr)
    pred = search.predict(X_te)
    return {"test_f1_macro": f1_score(y_te, pred, average="macro"), "test_recall_failure": recall_score(y_te, pred)}


def mlkiln_scores(run):
    test = run.metrics["test"]
    if run.card["task"] == "regression":
        return {"test_r2": test["r2"]}
    return {"test_f1_macro": test["f1_macro"], "test_recall_failure": test["per_class"]["1"]["recall"]}


def main() -> None:
    rows = []
    for name, recipe in (("diamonds", course_diamonds), ("machine-failure", course_failure)):
        frame = load_example(name)
        target = EXAMPLES[name]
        course_family = "linear" if name == "diamonds" else "logistic_l1"
        base, base_s = timed(lambda: recipe(frame))
        rows.append((name, "course recipe, plain scikit-learn", base_s, base))
        run, s = timed(lambda: mlkiln.train(frame, target=target, models=[course_family], seed=SEED))
        rows.append((name, f"mlkiln --models {course_family}", s, mlkiln_scores(run)))
        run, s = timed(lambda: mlkiln.train(frame, target=target, seed=SEED))
        rows.append((name, f"mlkiln default (winner: {run.card['model']['family']})", s, mlkiln_scores(run)))
    print(f"{'example':<16} {'method':<44} {'wall s':>8} {'x recipe':>9}  metrics")
    base_time = {}
    for name, method, seconds, scores in rows:
        base_time.setdefault(name, seconds)
        shown = "  ".join(f"{k}={v:.4f}" for k, v in scores.items())
        print(f"{name:<16} {method:<44} {seconds:8.2f} {seconds / base_time[name]:9.1f}  {shown}")


if __name__ == "__main__":
    main()
