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

# OpenMP threads that spin while they wait (libgomp's default) keep the cores from every other thread and process
# on a busy machine: a 2-thread gradient boosting fit of 21k rows took 17 s spinning and 0.3 s waiting passively,
# with two other jobs running. OpenMP reads this when it loads, so it takes effect when mlkiln is imported before
# scikit-learn (always, on the command line); a setting of the user's wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

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
