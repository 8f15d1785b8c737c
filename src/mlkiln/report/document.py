"""Step 2 of the report: the report document (``report.json``) from the card and the diagnostics, and its files."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import write_all_atomic
from ..card import Card
from ..jsonio import dumps
from .html import render_html

SCHEMA_VERSION = 1
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
#: hyperparameters searched on a log scale (a penalty's strength), whose panels are drawn on one
SCALE_PARAMS = ("C", "alpha")


def build(card: Card, diag: dict, files: list[dict] | None = None, evaluation: dict | None = None,
          bundle_name: str = "model") -> dict:
    """The report document (``report.json``) from the card and :func:`diagnostics`.

    Parameters
    ----------
    card : Card
        The model card.
    diag : dict
        What :func:`diagnostics` returned for the rows the report is about.
    files : list of dict, optional
        The bundle's files (``file``, ``bytes``, ``sha256``).
    evaluation : dict, optional
        For an evaluation report: ``{"source", "metrics"}`` with the metrics
        :meth:`mlkiln.Model.evaluate` computed.
    bundle_name : str
        The bundle directory's name, for the snippets.
    """
    split = "evaluation" if evaluation else "test"
    split_metrics = {**card.metrics, **({"evaluation": evaluation["metrics"]} if evaluation else {})}
    metric, model, data = card.metric.name, card.model, card.data
    diag = copy.deepcopy(diag)  # operating points are added and the target distribution moves to "data"
    if card.task == "classification":
        _add_operating_points(diag["classification"]["curves"], split_metrics[split], model.threshold)
    plain_card = card.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "evaluation" if evaluation else "training",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mlkiln_version": __version__,
        "summary": {
            "task": card.task, "target": card.target, "family": model.family, "estimator": model.estimator,
            "params": model.params, "threshold": model.threshold, "metric": metric, "trees": model.trees,
            "latency_us": card.latency_us,
            "members": _members(model), "bagged": model.bagged,
            "codes": list(model.codes), "texts": list(model.texts), "dates": dict(model.dates),
            "metric_why": card.metric.why,
            "headline": {"split": split, "metric": metric, "value": split_metrics[split].get(metric)},
        },
        "on": {"split": split, "source": evaluation["source"] if evaluation else data.source, "rows": diag["rows"]},
        "data": {
            **{k: plain_card["data"][k] for k in ("source", "sha256", "rows", "columns", "rows_used",
                                                  "rows_dropped_missing_target")},
            "features": plain_card["schema"]["columns"],
            "excluded": [{"column": k, "reason": v} for k, v in card.excluded.items()],
            "leakage": plain_card["leakage"],
            "dropped_by_user": list(card.dropped_by_user),
            "target": {**plain_card["schema"]["target"], "distribution": diag.pop("target")},
        },
        "split": plain_card["split"],
        "leaderboard": plain_card["leaderboard"],
        "tuning": tuning_curves(card),
        "metrics": split_metrics,
        "evaluation": plain_card.get("evaluation"),
        "diagnostics": diag,
        "bundle": {
            "files": files or [],
            "versions": card.versions,
            "load": _load_snippet(bundle_name),
            "reproduce": _reproduce_snippet(card),
        },
    }


def _members(model) -> list[dict]:
    """An ensemble's members, heaviest first, with their share of the vote."""
    total = sum(m.weight for m in model.members)
    return [{"name": m.name, "family": m.family, "params": m.params, "weight": m.weight, "share": m.weight / total,
             "trees": m.trees} for m in model.members]


def tuning_curves(card: Card) -> dict:
    """Validation score against each tuned family's plotted hyperparameter (the card's), from its CV results."""
    best = {row.family: row for row in card.leaderboard}
    plotted = card.tuning.plotted
    curves = {}
    for family, candidates in card.cv_results.items():
        numeric = [name for name in dict.fromkeys(k for c in candidates for k in c["params"])
                   if all(_is_number(c["params"].get(name)) for c in candidates)]
        if len(candidates) < 2 or not numeric or all(c["mean"] is None for c in candidates):
            continue
        # a card older than the plotted field names none: the first numeric hyperparameter then
        param = plotted[family] if plotted.get(family) in numeric else numeric[0]
        values = [c["params"][param] for c in candidates]
        points = sorted(
            ({"value": c["params"][param], "others": {k: v for k, v in c["params"].items() if k != param},
              "mean": c["mean"], "std": c["std"], "folds": c["folds"], "n_samples": c.get("n_samples")}
             for c in candidates),
            key=lambda p: (json.dumps(p["others"], sort_keys=True), p["value"]),
        )
        row = best.get(family)
        chosen = row.params if row is not None else {}
        curves[family] = {
            "param": param,
            # a penalty's strength is searched in decades: on a log axis however few values were tried (two C
            # values 3.2 apart drew one family's panel on a linear axis beside another's on a log one, sweep 11)
            "log_scale": min(values) > 0 and (max(values) / min(values) >= 10 or param in SCALE_PARAMS),
            "chosen": chosen.get(param),
            "chosen_others": {k: v for k, v in chosen.items() if k != param},
            "winner": row is not None and row.rank == 1,
            "points": points,
        }
    return curves


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _add_operating_points(curves: list[dict], split_metrics: dict, threshold: float | None) -> None:
    """Where the model's own decisions sit on each curve, read from the confusion matrix."""
    cm = np.asarray(split_metrics["confusion_matrix"], dtype="float64")
    labels = split_metrics["labels"]
    for curve in curves:
        i = labels.index(curve["class"])
        tp = cm[i, i]
        fn, fp = cm[i].sum() - tp, cm[:, i].sum() - tp
        tn = cm.sum() - tp - fn - fp
        curve["operating_point"] = {
            "fpr": fp / (fp + tn) if fp + tn else None,
            "tpr": tp / (tp + fn) if tp + fn else None,
            "precision": tp / (tp + fp) if tp + fp else None,
            "threshold": (0.5 if threshold is None else threshold) if len(labels) == 2 else None,
        }


def _load_snippet(name: str) -> str:
    return (
        "import mlkiln\n"
        f'model = mlkiln.load("{name}")   # checks MANIFEST.sha256, audits model.skops, then loads\n'
        "model.predict(table)   # a DataFrame or a CSV / Parquet path\n\n"
        "# without mlkiln (pip install -r requirements.txt); unpickling runs code: trusted bundles only\n"
        "import joblib\n"
        f'pipeline = joblib.load("{name}/model.joblib")'
    )


def _reproduce_snippet(card: Card) -> str:
    source = card.data.source
    lines = []
    if source.startswith("example:"):
        lines.append(f"mlkiln example {source.split(':', 1)[1]} -o data.csv   # the bundled example table")
        source = "data.csv"
    elif source == "DataFrame":
        lines.append("# trained from an in-memory DataFrame: save that table first, e.g. frame.to_csv('data.csv', index=False)")
        source = "data.csv"
    lines.append(f"python train.py {source} -o model.joblib   # same split, hyperparameters and seed: same predictions")
    lines.append(f"# the training table's sha256: {card.data.sha256}")
    return "\n".join(lines)


def bundle_files(card: Card, diag: dict, files: dict[str, bytes], bundle_name: str) -> dict[str, bytes]:
    """``report.json`` and ``report.html`` for a bundle whose other ``files`` are given."""
    listed = [{"file": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
              for name, content in sorted(files.items())]
    report = build(card, diag, listed, bundle_name=bundle_name)
    return {REPORT_JSON: dumps(report), REPORT_HTML: render_html(report).encode()}


def write_evaluation(path: str | os.PathLike, card: Card, diag: dict, result: dict, source: str) -> Path:
    """Write an evaluation report to ``path`` (HTML) and its JSON beside it (same name, ``.json``).

    It goes next to the data, not into the bundle: a bundle is immutable once
    written (``MANIFEST.sha256`` vouches for every file, and ``load`` refuses
    one that changed), and an evaluation describes the data as much as the model.
    """
    path = Path(path)
    report = build(card, diag, evaluation={"source": source, "metrics": result})
    write_all_atomic({path.with_suffix(".json"): dumps(report), path: render_html(report).encode()})  # both or neither
    return path
