"""Issue 12: what bagging the final model gains on test rows, and what it costs, where the clock would not allow it.

For each table of ``bench_automl.py`` (its CSV file under ``/tmp/mlkiln-bench-automl/<table>/``, written by a run
of it), ``mlkiln.train`` as the default command runs it, twice: with bagging forced wherever it applies (the
time rule's share set past any run: ``selection.BAG_SHARE``) and with ``bagging=False``. Prints one JSON line per
table: the test metrics, the training seconds of each, whether it bagged, and the chosen model.

    python benchmarks/bench_bagging_rule.py TABLE,TABLE,...
"""
import json
import sys
import time

sys.path.insert(0, "/work/main/benchmarks")
import mlkiln  # noqa: E402
import mlkiln.selection  # noqa: E402
from bench_automl import HOLDOUT, TABLES  # noqa: E402

TABLES = {**TABLES, **HOLDOUT}


def run(name: str, forced: bool) -> dict:
    table = TABLES[name]
    mlkiln.selection.BAG_SHARE = 1e9 if forced else 0.4
    start = time.perf_counter()
    result = mlkiln.train(f"/tmp/mlkiln-bench-automl/{name}/{name}.csv", target=table.target,
                          drop=list(table.drop or ()), bagging=forced)
    seconds = time.perf_counter() - start
    test = result.metrics["test"]
    keep = {k: round(test[k], 5) for k in ("r2", "roc_auc", "log_loss") if isinstance(test.get(k), float)}
    return {"seconds": round(seconds, 1), "bagged": result.card.model.bagged, "family": result.card.model.family, **keep}


for name in sys.argv[1].split(","):
    record = {"table": name, "bagged": run(name, True), "once": run(name, False)}
    print(json.dumps(record), flush=True)
