"""mlkiln: a table in, a tuned, evaluated, deployable scikit-learn model out.

    run = mlkiln.train("data.csv", target="price")
    run.leaderboard; run.metrics["test"]; run.save("model/")
    model = mlkiln.load("model/")       # verified before anything is unpickled
    model.predict(frame)

Names are imported on first use, so the command line starts (and answers
Ctrl-C) before scikit-learn is loaded.
"""

import importlib
import os

# OpenMP threads spin a while at every barrier before they sleep. libgomp's default (300,000 turns) keeps the cores
# from every other thread and process on a busy machine: a 2-thread gradient boosting fit of 21k rows took 17 s
# with two other jobs running. Not spinning at all (OMP_WAIT_POLICY=passive, mlkiln's setting until session 28)
# made every fit on an idle machine pay a sleep and a wake-up per barrier, thousands a tree: the final fit on
# nycflights13's 261,876 rows took 77 s against 21 s. 10,000 turns: 5.3 s for 500 trees there (passive 14.2 s,
# the default 5.1 s), and with two busy processes on the 2 cores 14.5-16.1 s (passive 9.5-11.5 s, the default
# 50.3 s). OpenMP reads these when it loads, so they take effect when mlkiln is imported before scikit-learn
# (always, on the command line); a setting of the user's wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"

_EXPORTS = {
    "EXAMPLES": "examples",
    "load_example": "examples",
    "MlkilnError": "errors",
    "InputError": "errors",
    "BundleError": "errors",
    "Card": "card",
    "Model": "predict",
    "load": "predict",
    "Run": "workflow",
    "train": "workflow",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mlkiln' has no attribute {name!r}")
