"""Issue 12: refit on all training rows, or average fold models (bagging, as AutoGluon does)? Measured, not built.

For each table of ``bench_automl.py`` (its ``train.parquet`` / ``test.parquet``, written by a run of it under
``/tmp/mlkiln-bench-automl``): gradient boosting's portfolio is cross-validated as ``mlkiln train`` does (staged,
3 folds, seed 0); the CV's best configuration is then refitted on all training rows (mlkiln's final fit), fitted
on each of 3 or 5 folds' training parts (the 3-fold ones with CV's trees, the 5-fold ones with the refit's), and
scored on the test rows: the refit alone, the fold models' average, and that average with the refit.

    python benchmarks/bench_bagging.py TABLE,TABLE,... [NAME]     # one JSON line per table; bag_NAME.json
"""
import sys, json, time
import numpy as np, pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score, log_loss, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from mlkiln.metrics import Scorer
from mlkiln.options import TrainOptions
from mlkiln.pipeline import HGB_PORTFOLIO, REGISTRY, build_pipeline
from mlkiln.tuning import Compute, cross_validate_candidates, make_cv
from mlkiln.understand import understand
sys.path.insert(0, "/work/main/benchmarks")
from bench_automl import TABLES, HOLDOUT; TABLES = {**TABLES, **HOLDOUT}

def scores(task, yte, pred, classes):
    if task == "regression":
        return {"r2": round(r2_score(yte, pred), 5)}
    auc = roc_auc_score(yte, pred[:, 1]) if len(classes) == 2 else roc_auc_score(yte, pred, multi_class="ovr", labels=classes)
    return {"auc": round(auc, 5), "ll": round(log_loss(yte, pred, labels=classes), 5)}

def fitpred(pipe, params, X, y, Xte, task):
    p = clone(pipe).set_params(**{f"model__{k}": v for k, v in params.items()}).fit(X, y)
    return p.predict(Xte) if task == "regression" else p.predict_proba(Xte)

rows = []
with Compute() as compute:
    for name in sys.argv[1].split(","):
        tr = pd.read_parquet(f"/tmp/mlkiln-bench-automl/{name}/train.parquet")
        te = pd.read_parquet(f"/tmp/mlkiln-bench-automl/{name}/test.parquet")
        target = TABLES[name].target
        both = understand(pd.concat([tr, te], ignore_index=True), target, TrainOptions())
        table = understand(tr, target, TrainOptions())
        Xte = both.X.iloc[len(tr):][table.X.columns]; yte = both.y.iloc[len(tr):]
        classes, task = table.classes, table.task
        scorer = Scorer(task, table.metric.name, classes)
        cv = make_cv(task, 3, 0)
        pipe = build_pipeline(task, "hgb", table.kinds, seed=0, n_classes=len(classes) if classes else 2)
        cands = [{f"model__{k}": v for k, v in c.items()} for c in HGB_PORTFOLIO]
        res, _, _ = cross_validate_candidates(pipe, cands, table.X, table.y, cv, scorer, task, compute, keep=1, staged=True)
        i = int(np.nanargmax(res["mean_test_score"]))
        params = {k.removeprefix("model__"): v for k, v in res["params"][i].items()}
        fam = REGISTRY["hgb"]
        full = fam.refit_params(params, 3)
        t = time.perf_counter(); refit = fitpred(pipe, full, table.X, table.y, Xte, task); t_refit = time.perf_counter() - t
        out = {"refit": scores(task, yte, refit, classes)}
        for k in (3, 5):
            split = (StratifiedKFold if task != "regression" else KFold)(k, shuffle=True, random_state=0)
            fold_params = params if k == 3 else full
            t = time.perf_counter()
            preds = [fitpred(pipe, fold_params, table.X.iloc[a], table.y.iloc[a], Xte, task) for a, _ in split.split(table.X, table.y)]
            tk = time.perf_counter() - t
            bag = np.mean(preds, axis=0)
            out[f"bag{k}"] = scores(task, yte, bag, classes)
            out[f"bag{k}+refit"] = scores(task, yte, (bag * k + refit) / (k + 1), classes)
            out[f"t_bag{k}/refit"] = round(tk / t_refit, 2)
        # the form built: the pipeline's model a vote of the refit and a BaggingRegressor/-Classifier of 5 fits on 80 %
        # of the rows (other rows weighted 0), preprocessing fitted once
        from sklearn.ensemble import BaggingClassifier, BaggingRegressor, VotingClassifier, VotingRegressor
        model = clone(pipe[-1]).set_params(**full)
        bag = (BaggingRegressor if task == "regression" else BaggingClassifier)(
            clone(model), n_estimators=5, max_samples=0.8, bootstrap=False, random_state=0)
        vote = (VotingRegressor([("refit", model), ("bagged", bag)], weights=[1, 5]) if task == "regression" else
                VotingClassifier([("refit", model), ("bagged", bag)], voting="soft", weights=[1, 5]))
        p = clone(pipe); p.steps[-1] = ("model", vote)
        t = time.perf_counter(); p.fit(table.X, table.y); tb = time.perf_counter() - t
        out["vote"] = scores(task, yte, p.predict(Xte) if task == "regression" else p.predict_proba(Xte), classes)
        out["t_vote/refit"] = round(tb / t_refit, 2)
        r = dict(table=name, config=i, iters=params.get("max_iter"), **out)
        print(json.dumps(r), flush=True)
        rows.append(r)
json.dump(rows, open(f"bag_{sys.argv[2] if len(sys.argv) > 2 else 'out'}.json", "w"))
