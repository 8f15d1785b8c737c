"""The evaluation report: one self-contained HTML page, and the same numbers as JSON.

People would rather look than read, so every ``train`` writes ``report.html``
and ``report.json`` into the bundle. Building it takes two steps, because the
curves need predictions and those exist only while labelled data is at hand:

1. :func:`diagnostics` runs once on the test split inside
   :func:`mlkiln.workflow.train` (or on the evaluation data inside
   :meth:`mlkiln.Model.evaluate`) and returns plain numbers: curves,
   a sample of predictions, permutation importances, coefficients.
2. :func:`build` joins those with the model card into the report document
   (``report.json``); :func:`render_html` draws the page from that document
   alone. ``mlkiln report BUNDLE`` therefore rebuilds the page from the
   bundle's own files, without any data.

Every metric comes from the card (:mod:`mlkiln.metrics` computed it), so the
page, the JSON and the terminal summary show the same numbers. Plots are drawn
with matplotlib's Agg canvas (set explicitly on each figure, so the caller's
pyplot backend is left alone) and embedded as base64 PNG; the page loads no
script, font, stylesheet or image from anywhere, and its Content-Security-Policy
forbids it to.

``report.json``, ``schema_version`` 1
-------------------------------------
``schema_version``
    1; incremented when a key changes meaning or disappears.
``kind``
    ``"training"`` (test split) or ``"evaluation"`` (new labelled data).
``created_at``, ``mlkiln_version``
    When and by which mlkiln the report was built.
``summary``
    ``task``, ``target``, ``family``, ``estimator``, ``params``, ``threshold``,
    ``metric`` (selection metric), ``metric_why``, and ``headline``:
    ``{"split", "metric", "value"}``, the selection metric on ``on``.
``on``
    ``{"split": "test" | "evaluation", "source", "rows"}``: the data the
    diagnostics were computed on.
``data``
    The training table: ``source``, ``sha256``, ``rows``, ``columns``,
    ``rows_used``, ``rows_dropped_missing_target``, ``features`` (the card's
    schema columns: name, kind, dtype, share missing, categories or range),
    ``excluded`` (``[{"column", "reason"}]``), ``dropped_by_user``, ``target``
    (name, dtype, classes, and ``distribution`` on the rows of ``on``'s
    table: ``{"counts": {class: n}}`` or ``{"edges", "counts", "mean",
    "median", "min", "max"}``).
``split``
    Test share, seed, folds, row counts (as in the card).
``leaderboard``
    The card's leaderboard rows; ``rank`` 1 is the chosen model.
``tuning``
    Per tuned family: ``param`` (its main hyperparameter), ``log_scale``,
    ``chosen`` (that family's best value), ``winner``, and ``points``: one per
    candidate, ``{"value", "others", "mean", "std", "folds", "n_samples"}`` in
    the selection metric's units (``n_samples``: the rows successive halving
    scored it on, ``null`` for a full search).
``metrics``
    ``train``, ``validation`` (``mean``/``std`` over the folds), ``test`` and,
    for an evaluation, ``evaluation``: exactly the card's / evaluate's dicts.
``diagnostics``
    On ``on``'s rows. ``rows``, ``seconds``; for classification
    ``classification.curves``: per class shown (the positive class for two
    classes, every class otherwise) ``roc`` (``fpr``, ``tpr``, ``auc``),
    ``pr`` (``recall``, ``precision``, ``average_precision``), ``calibration``
    (``mean_predicted``, ``fraction_positive``, ``count`` per probability
    decile) and ``operating_point`` (``fpr``, ``tpr``, ``precision``,
    ``threshold``; from the confusion matrix in ``metrics``); for
    regression ``regression``: ``sample`` (``actual``, ``predicted``, at most
    :data:`SCATTER_POINTS` rows), ``residuals`` (histogram ``edges`` and
    ``counts`` of the central 99 %, ``outside`` it, ``mean`` and ``std`` of
    all). Always ``permutation_importance`` (``metric``,
    ``rows``, ``repeats``, ``features``: ``[{"feature", "mean", "std"}]``,
    largest first) and ``coefficients`` (linear families: ``outputs`` and
    ``features``: ``[{"feature", "values"}]`` on the scaled features, one value
    per output; ``null`` otherwise).
``bundle``
    ``files`` (``[{"file", "bytes", "sha256"}]``, the report files excepted:
    a file cannot hold its own hash), ``versions``, ``load`` and
    ``reproduce`` (shell / Python snippets).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import html
import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from . import __version__, bundle
from .errors import MlkilnError
from .pipeline import LINEAR_FAMILIES
from .summary import fmt, metric_rows
from .tuning import Scorer

SCHEMA_VERSION = 1
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"

#: points drawn in the regression scatter plots (a seeded sample of the rows)
SCATTER_POINTS = 2000
#: rows and repeats of permutation importance: enough to rank columns, quick on any table
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
#: points kept per ROC / precision-recall curve
CURVE_POINTS = 400
#: hyperparameters that tuning curves are drawn against, in order of preference
MAIN_PARAMS = ("C", "alpha", "learning_rate", "min_samples_leaf", "max_leaf_nodes")
#: bars shown in the importance and coefficient charts
MAX_BARS = 25

_BLUE, _AMBER, _RED, _GREY = "#2563eb", "#d97706", "#dc2626", "#94a3b8"
_PALETTE = [_BLUE, "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d"]
_STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelcolor": "#374151",
    "axes.edgecolor": "#9ca3af", "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "xtick.color": "#4b5563", "ytick.color": "#4b5563", "legend.frameon": False,
}


# ---- step 1: numbers that need the data ----

def diagnostics(pipeline, X: pd.DataFrame, y: pd.Series, card: dict, target: pd.Series | None = None) -> dict:
    """Curves, a prediction sample, importances and coefficients of ``pipeline`` on ``X``, ``y``.

    Parameters
    ----------
    pipeline : fitted Pipeline
        The model, as stored in the bundle.
    X, y : DataFrame, Series
        Labelled rows the model never trained on: the test split, or evaluation data.
    card : dict
        The model card (task, classes, metric, seed, family).
    target : Series, optional
        The target of every usable row, for the distribution in the data
        section; default ``y``.

    Returns
    -------
    dict
        JSON-ready numbers; see the module docstring, key ``diagnostics``.
    """
    started = time.perf_counter()
    task, seed = card["task"], card["split"]["seed"]
    classes = card["schema"]["target"].get("classes")
    rng = np.random.default_rng(seed)
    out: dict = {"rows": int(len(y)), "target": _distribution(task, y if target is None else target)}
    # these predictions are small: one thread is ten times faster than OpenMP teams spinning on busy cores
    with threadpool_limits(1):
        if task == "regression":
            out["regression"] = _regression_numbers(y.to_numpy("float64"), pipeline.predict(X), rng)
        else:
            out["classification"] = {"curves": _class_curves(y.to_numpy(), pipeline.predict_proba(X), classes)}
        out["permutation_importance"] = _importance(pipeline, X, y, card, rng)
    out["coefficients"] = _coefficients(pipeline, card)
    out["seconds"] = round(time.perf_counter() - started, 3)
    return _plain(out)


def _distribution(task: str, target: pd.Series) -> dict:
    if task == "classification":
        counts = target.value_counts().sort_index()
        return {"counts": {str(k): int(v) for k, v in counts.items()}}
    values = target.to_numpy("float64")
    counts, edges = np.histogram(values, bins=40)
    return {"edges": edges, "counts": counts, "mean": values.mean(), "median": np.median(values),
            "min": values.min(), "max": values.max()}


def _regression_numbers(actual: np.ndarray, predicted: np.ndarray, rng) -> dict:
    predicted = np.asarray(predicted, dtype="float64")
    residuals = actual - predicted
    take = np.sort(rng.choice(len(actual), min(len(actual), SCATTER_POINTS), replace=False))
    # the central 99 % of the residuals: a few outliers would squeeze the rest into one bar
    low, high = np.quantile(residuals, [0.005, 0.995])
    counts, edges = np.histogram(residuals, bins=40, range=(low, high) if high > low else None)
    return {
        "sample": {"actual": actual[take], "predicted": predicted[take]},
        "residuals": {"edges": edges, "counts": counts, "outside": int(len(residuals) - counts.sum()),
                      "mean": residuals.mean(), "std": residuals.std()},
    }


def _class_curves(y: np.ndarray, proba: np.ndarray, classes: list) -> list[dict]:
    """ROC, precision-recall and calibration one-vs-rest, for the positive class or each class."""
    shown = [1] if len(classes) == 2 else range(len(classes))
    curves = []
    for i in shown:
        positive, p = y == classes[i], proba[:, i]
        if positive.all() or not positive.any():
            continue  # a class absent from these rows has no curve
        fpr, tpr, _ = skm.roc_curve(positive, p)
        precision, recall, _ = skm.precision_recall_curve(positive, p)
        decile = np.minimum((p * 10).astype(int), 9)
        bins = [b for b in range(10) if (decile == b).any()]
        curves.append({
            "class": str(classes[i]),
            "roc": {**_thin(fpr=fpr, tpr=tpr), "auc": skm.roc_auc_score(positive, p)},
            "pr": {**_thin(recall=recall, precision=precision), "average_precision": skm.average_precision_score(positive, p)},
            "calibration": {
                "mean_predicted": [p[decile == b].mean() for b in bins],
                "fraction_positive": [positive[decile == b].mean() for b in bins],
                "count": [int((decile == b).sum()) for b in bins],
            },
        })
    return curves


def _thin(**arrays: np.ndarray) -> dict:
    """At most :data:`CURVE_POINTS` points of a curve, both ends kept."""
    n = len(next(iter(arrays.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return {name: values[keep] for name, values in arrays.items()}


def _importance(pipeline, X: pd.DataFrame, y: pd.Series, card: dict, rng) -> dict:
    """Drop in the selection metric when one input column is shuffled, on a sample of the rows."""
    metric = card["metric"]["name"]
    if len(X) > IMPORTANCE_ROWS:
        take = np.sort(rng.choice(len(X), IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[take], y.iloc[take]
    # the stored pipeline already applies the tuned threshold, so the plain metric is the right one
    scorer = Scorer(card["task"], metric, card["schema"]["target"].get("classes"))
    result = permutation_importance(
        pipeline, X, y, scoring=scorer, n_repeats=IMPORTANCE_REPEATS, random_state=card["split"]["seed"], n_jobs=1,
    )
    order = np.argsort(-result.importances_mean, kind="stable")
    return {
        "metric": metric, "rows": int(len(X)), "repeats": IMPORTANCE_REPEATS,
        "features": [{"feature": str(X.columns[i]), "mean": result.importances_mean[i], "std": result.importances_std[i]}
                     for i in order],
    }


def _coefficients(pipeline, card: dict) -> dict | None:
    """Signed coefficients of a linear family on its scaled, one-hot features, largest first."""
    if card["model"]["family"] not in LINEAR_FAMILIES:
        return None
    estimator = pipeline[-1]
    estimator = getattr(estimator, "estimator_", estimator)  # FixedThresholdClassifier wraps the fitted model
    coef = np.atleast_2d(estimator.coef_)
    names = pipeline[:-1].get_feature_names_out()
    classes = [str(c) for c in card["schema"]["target"].get("classes", [])]
    outputs = [card["target"]] if card["task"] == "regression" else (classes[1:] if coef.shape[0] == 1 else classes)
    order = np.argsort(-np.abs(coef).max(axis=0), kind="stable")
    return {"outputs": outputs, "features": [{"feature": str(names[j]), "values": coef[:, j]} for j in order]}


def _plain(value):
    """numpy -> Python, NaN/inf -> None: strict JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---- step 2: the report document ----

def build(card: dict, diag: dict, files: list[dict] | None = None, evaluation: dict | None = None,
          bundle_name: str = "model") -> dict:
    """The report document (``report.json``) from the card and :func:`diagnostics`.

    Parameters
    ----------
    card : dict
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
    split_metrics = {**card["metrics"], **({"evaluation": evaluation["metrics"]} if evaluation else {})}
    metric = card["metric"]["name"]
    model = card["model"]
    diag = copy.deepcopy(diag)  # operating points are added and the target distribution moves to "data"
    if card["task"] == "classification":
        _add_operating_points(diag["classification"]["curves"], split_metrics[split], model.get("threshold"))
    data = card["data"]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "evaluation" if evaluation else "training",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mlkiln_version": __version__,
        "summary": {
            "task": card["task"], "target": card["target"], "family": model["family"], "estimator": model["estimator"],
            "params": model["params"], "threshold": model.get("threshold"), "metric": metric,
            "metric_why": card["metric"]["why"],
            "headline": {"split": split, "metric": metric, "value": split_metrics[split].get(metric)},
        },
        "on": {"split": split, "source": evaluation["source"] if evaluation else data["source"], "rows": diag["rows"]},
        "data": {
            **{k: data.get(k) for k in ("source", "sha256", "rows", "columns", "rows_used", "rows_dropped_missing_target")},
            "features": card["schema"]["columns"],
            "excluded": [{"column": k, "reason": v} for k, v in card["excluded"].items()],
            "dropped_by_user": card.get("dropped_by_user", []),
            "target": {**card["schema"]["target"], "distribution": diag.pop("target")},
        },
        "split": card["split"],
        "leaderboard": card["leaderboard"],
        "tuning": tuning_curves(card),
        "metrics": split_metrics,
        "diagnostics": diag,
        "bundle": {
            "files": files or [],
            "versions": card["versions"],
            "load": _load_snippet(bundle_name),
            "reproduce": _reproduce_snippet(card),
        },
    }


def tuning_curves(card: dict) -> dict:
    """Validation score against each tuned family's main hyperparameter, from the card's CV results."""
    best = {row["family"]: row for row in card["leaderboard"]}
    curves = {}
    for family, candidates in card["cv_results"].items():
        numeric = [name for name in dict.fromkeys(k for c in candidates for k in c["params"])
                   if all(_is_number(c["params"].get(name)) for c in candidates)]
        if len(candidates) < 2 or not numeric or all(c["mean"] is None for c in candidates):
            continue
        param = next((p for p in MAIN_PARAMS if p in numeric), numeric[0])
        values = [c["params"][param] for c in candidates]
        points = sorted(
            ({"value": c["params"][param], "others": {k: v for k, v in c["params"].items() if k != param},
              "mean": c["mean"], "std": c["std"], "folds": c["folds"], "n_samples": c.get("n_samples")}
             for c in candidates),
            key=lambda p: (json.dumps(p["others"], sort_keys=True), p["value"]),
        )
        row = best.get(family, {})
        curves[family] = {
            "param": param,
            "log_scale": min(values) > 0 and max(values) / min(values) >= 10,
            "chosen": (row.get("params") or {}).get(param),
            "chosen_others": {k: v for k, v in (row.get("params") or {}).items() if k != param},
            "winner": row.get("rank") == 1,
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


def _reproduce_snippet(card: dict) -> str:
    source = card["data"]["source"]
    lines = []
    if source.startswith("example:"):
        lines.append(f"mlkiln example {source.split(':', 1)[1]} -o data.csv   # the bundled example table")
        source = "data.csv"
    elif source == "DataFrame":
        lines.append("# trained from an in-memory DataFrame: save that table first, e.g. frame.to_csv('data.csv', index=False)")
        source = "data.csv"
    lines.append(f"python train.py {source} -o model.joblib   # same split, hyperparameters and seed: same predictions")
    lines.append(f"# the training table's sha256: {card['data']['sha256']}")
    return "\n".join(lines)


# ---- writing ----

def bundle_files(card: dict, diag: dict, files: dict[str, bytes], bundle_name: str) -> dict[str, bytes]:
    """``report.json`` and ``report.html`` for a bundle whose other ``files`` are given."""
    listed = [{"file": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
              for name, content in sorted(files.items())]
    report = build(card, diag, listed, bundle_name=bundle_name)
    return {REPORT_JSON: _json_bytes(report), REPORT_HTML: render_html(report).encode()}


def write_evaluation(path: str | os.PathLike, card: dict, diag: dict, result: dict, source: str) -> Path:
    """Write an evaluation report to ``path`` (HTML) and its JSON beside it (same name, ``.json``).

    It goes next to the data, not into the bundle: a bundle is immutable once
    written (``MANIFEST.sha256`` vouches for every file, and ``load`` refuses
    one that changed), and an evaluation describes the data as much as the model.
    """
    path = Path(path)
    _check_outside_bundle(path)
    report = build(card, diag, evaluation={"source": source, "metrics": result})
    _write_atomic(path.with_suffix(".json"), _json_bytes(report))
    _write_atomic(path, render_html(report).encode())
    return path


def rebuild(bundle_path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Redraw a bundle's report from its card and ``report.json``; write it to ``output``.

    The default output is ``<bundle name>-report.html`` in the current
    directory; writing into the bundle itself is refused, because the file
    would no longer match the bundle's manifest.
    """
    bundle_path = Path(bundle_path)
    card = bundle.read_card(bundle_path)  # verifies every file's hash first
    if not (bundle_path / REPORT_JSON).is_file():
        raise MlkilnError(f"{bundle_path} has no {REPORT_JSON}; it was made by an mlkiln without reports, train it again")
    saved = json.loads((bundle_path / REPORT_JSON).read_text())
    if saved.get("schema_version") != SCHEMA_VERSION:
        raise MlkilnError(f"{bundle_path / REPORT_JSON} has schema_version {saved.get('schema_version')}, "
                          f"this mlkiln reads {SCHEMA_VERSION}; use the mlkiln version in its requirements")
    output = Path(output) if output else Path(f"{bundle_path.resolve().name}-report.html")
    _check_outside_bundle(output)
    diag = {**saved["diagnostics"], "target": saved["data"]["target"]["distribution"]}
    files = [{k: f[k] for k in ("file", "bytes", "sha256")} for f in bundle.file_status(bundle_path)
             if f["file"] not in (REPORT_HTML, REPORT_JSON)]
    _write_atomic(output, render_html(build(card, diag, files, bundle_name=bundle_path.name)).encode())
    return output


def _check_outside_bundle(path: Path) -> None:
    if (path.resolve().parent / bundle.MANIFEST).exists():
        raise MlkilnError(f"{path} is inside a bundle and would break its {bundle.MANIFEST}; choose a path outside it")


def _json_bytes(report: dict) -> bytes:
    return json.dumps(_plain(report), indent=1, allow_nan=False).encode()


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- the page ----

class _Html(str):
    """Text that is already HTML and must not be escaped again."""


def _esc(value) -> str:
    return value if isinstance(value, _Html) else html.escape(str(value))


def render_html(report: dict) -> str:
    """The report document as one self-contained HTML page."""
    summary = report["summary"]
    sections = [
        ("data", "Data", _data_section(report)),
        ("leaderboard", "Leaderboard", _leaderboard_section(report)),
        ("tuning", "Tuning", _tuning_section(report)),
        ("metrics", "Metrics", _metrics_section(report)),
        ("diagnostics", "Diagnostics", _diagnostics_section(report)),
        ("drivers", "What drives the model", _drivers_section(report)),
        ("bundle", "The bundle", _bundle_section(report)),
    ]
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{title}</h2>{content}</section>' for key, title, content in sections)
    title = (f"Evaluation of {summary['family']} on {report['on']['source']}" if report["kind"] == "evaluation"
             else f"{summary['family']} predicting {summary['target']}")
    return _PAGE.format(
        title=_esc(f"mlkiln report: {title}"), heading=_esc(title), subtitle=_esc(_subtitle(report)),
        cards=_cards(report), nav=nav, body=body, style=_CSS,
    )


def _subtitle(report: dict) -> str:
    s, data = report["summary"], report["data"]
    return (f"{s['task'].capitalize()} of {s['target']!r} · trained on {data['source']} ({data['rows_used']:,} rows) · "
            f"report built {report['created_at']} by mlkiln {report['mlkiln_version']}")


def _cards(report: dict) -> str:
    s, split = report["summary"], report["split"]
    headline = s["headline"]
    cards = [
        ("Task", s["task"], f"target {s['target']}"),
        ("Best model", s["family"], s["estimator"]),
        (f"{headline['split']} {headline['metric']}", fmt(headline["value"]), f"on {report['on']['rows']:,} rows"),
        ("Rows", f"{split['n_train'] + split['n_test']:,}", f"{split['n_train']:,} train, {split['n_test']:,} test; {split['folds']}-fold CV"),
    ]
    if s["threshold"] is not None:
        cards.append(("Decision threshold", f"{s['threshold']:.3f}", "tuned on the validation folds"))
    return "".join(f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div>'
                   f'<div class="s">{_esc(sub)}</div></div>' for k, v, sub in cards)


def _table(header: list[str], rows: list[list], numeric: tuple[int, ...] = (), marked: tuple[int, ...] = ()) -> str:
    """An HTML table; ``numeric`` columns are right-aligned, ``marked`` rows highlighted."""
    def cell(tag, i, value):
        return f'<{tag}{" class=num" if i in numeric else ""}>{_esc(value)}</{tag}>'
    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(f'<tr{" class=win" if r in marked else ""}>' + "".join(cell("td", i, v) for i, v in enumerate(row))
                   + "</tr>" for r, row in enumerate(rows))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _params(params: dict) -> str:
    return ", ".join(f"{k}={_num(v)}" for k, v in params.items()) or "-"


def _num(value) -> str:
    """A hyperparameter, range end or plot label: as short as exact allows (``0.05``, ``0.001``, ``1e+04``)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _data_section(report: dict) -> str:
    data, split, target = report["data"], report["split"], report["data"]["target"]
    facts = [
        ("source", data["source"]), ("sha256", data["sha256"]),
        ("table", f"{data['rows']:,} rows × {data['columns']} columns"),
        ("rows used", f"{data['rows_used']:,} ({data['rows_dropped_missing_target'] or 0} dropped: target missing)"),
        ("split", f"{split['n_train']:,} rows for training and {split['folds']}-fold CV, {split['n_test']:,} held out "
                  f"for test ({split['test_size']:.0%}, seed {split['seed']}{', stratified' if split['stratified'] else ''})"),
    ]
    rows = []
    for c in data["features"]:
        if c["kind"] == "categorical":
            shown = ", ".join(c["categories"][:6])
            values = f"{c['n_categories']} categories: {shown}{' …' if c['n_categories'] > 6 else ''}"
        else:
            values = f"{_num(c['min'])} … {_num(c['max'])}" if "min" in c else "-"
        rows.append([c["name"], c["kind"], c["dtype"], f"{c['missing']:.1%}", values])
    excluded = [[e["column"], e["reason"]] for e in data["excluded"]]
    excluded += [[name, "dropped with --drop"] for name in data["dropped_by_user"]]
    parts = [_facts(facts), f"<h3>{len(rows)} feature columns</h3>",
             _table(["column", "kind", "dtype", "missing", "values"], rows, numeric=(3,))]
    if excluded:
        parts += [f"<h3>{len(excluded)} columns left out</h3>", _table(["column", "why"], excluded)]
    on = report["on"]
    where = (f"the {on['rows']:,} rows of the evaluation data" if on["split"] == "evaluation"
             else f"all {data['rows_used']:,} rows used (training and test)")
    title = "Class balance" if "classes" in target else "Target distribution"
    parts += [f"<h3>{title} of {_esc(target['name'])}</h3>",
              f'<p class="note">On {where}.</p>',
              _plot(f"{title} of {target['name']}", (10, 2.8), lambda fig: _draw_target(fig, target))]
    return "".join(parts)


def _facts(pairs: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in pairs) + "</dl>"


def _leaderboard_section(report: dict) -> str:
    metric = report["summary"]["metric"]
    rows, marked = [], []
    for i, r in enumerate(report["leaderboard"]):
        if r["rank"] == 1:
            marked.append(i)
        score = r["error"] or f"{fmt(r['cv_mean'])} ± {fmt(r['cv_std'])}"
        rank = _Html(f"{r['rank']} <span class=badge>chosen</span>") if r["rank"] == 1 else (r["rank"] or "-")
        rows.append([rank, r["family"], score, _seconds(r["fit_time_s"]), _seconds(r["search_time_s"]),
                     f"{r['candidates']} ({r['search']})" if r.get("search") else r["candidates"], _params(r["params"])])
    split = report["split"]
    return (f'<p class="note">Every family tuned by {split["folds"]}-fold cross-validation on the training rows; '
            f"the best mean validation {_esc(metric)} picks the hyperparameters, then the family. "
            "Fit time is one fit of the chosen candidate, in seconds.</p>"
            + _table(["rank", "family", f"CV {metric} (mean ± std)", "fit s", "search s", "candidates", "hyperparameters"],
                     rows, numeric=(3, 4, 5), marked=tuple(marked)))


def _tuning_section(report: dict) -> str:
    curves, metric, folds = report["tuning"], report["summary"]["metric"], report["split"]["folds"]
    if not curves:
        return '<p class="note">No family with hyperparameters was tuned.</p>'
    parts = ['<p class="note">Mean validation score of every candidate (line), the spread over the '
             f'{folds} folds (band: ± one std; dots: each fold), and the value each family chose (dashed).']
    if "C" in {c["param"] for c in curves.values()}:
        parts.append(" <b>C</b> is scikit-learn's: the <i>inverse</i> of the regularisation strength; the course's "
                     "penalty weight is 1/C, so small C means strong penalty and more zero coefficients.")
    parts.append("</p>")
    # the course's picture (score against C for the L1 logistic family) comes first, full width
    ordered = sorted(curves.items(), key=lambda item: item[0] != "logistic_l1")
    small = []
    for family, curve in ordered:
        wide = family == "logistic_l1"
        img = _plot(f"CV {metric} against {curve['param']} for {family}", (10, 3.8) if wide else (5, 3.4),
                    lambda fig, f=family, c=curve: _draw_tuning(fig, f, c, metric))
        if wide:
            parts.append(img)
        else:
            small.append(f"<div>{img}</div>")
    if small:
        parts.append(f'<div class="grid2">{"".join(small)}</div>')
    return "".join(parts)


def _metrics_section(report: dict) -> str:
    task, split_metrics = report["summary"]["task"], report["metrics"]
    splits, rows = metric_rows(task, split_metrics)
    header = ["metric"] + [f"validation ({split_metrics['validation']['folds']}-fold CV)" if s == "validation"
                           else f"{s} ({split_metrics[s]['n']:,} rows)" for s in splits]
    note = ('<p class="note">For two classes, precision, recall and f1 are those of the positive class. '
            "Train is the refitted model on its own training rows (optimistic); validation is out-of-fold.</p>"
            if task == "classification" else
            '<p class="note">Train is the refitted model on its own training rows (optimistic); validation is out-of-fold.</p>')
    return note + _table(header, rows, numeric=tuple(range(1, len(header))))


def _diagnostics_section(report: dict) -> str:
    on, diag, s = report["on"], report["diagnostics"], report["summary"]
    intro = (f'<p class="note">On the {on["rows"]:,} rows of {"the evaluation data (" + _esc(on["source"]) + ")" if on["split"] == "evaluation" else "the held-out test split"}; '
             "the model never trained on them.</p>")
    if s["task"] == "regression":
        reg = diag["regression"]
        n = len(reg["sample"]["actual"])
        shown = f"{n:,} of the {on['rows']:,} rows (a seeded random sample)" if n < on["rows"] else f"all {n:,} rows"
        return (intro + f'<p class="note">Scatter plots show {shown}; the histogram uses every row.</p>'
                + _plot("Predicted against actual, residuals against predicted, residual histogram", (10, 3.5),
                        lambda fig: _draw_regression(fig, reg, s["target"])))
    m = report["metrics"][on["split"]]
    curves = diag["classification"]["curves"]
    per_class = [[label, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), f"{v['support']:,}"]
                 for label, v in m["per_class"].items()]
    op = ""
    if s["threshold"] is not None:
        op = f" The marker on each curve is the model's operating point: P({_esc(s['target'])}={_esc(curves[0]['class'])}) ≥ {s['threshold']:.3f}, tuned on the validation folds." if curves else ""
    elif len(m["labels"]) == 2:
        op = " The marker on each curve is the model's operating point (probability 0.5)."
    else:
        op = " Markers are where the model's own (most probable class) decisions sit."
    parts = [intro, "<h3>Confusion matrix</h3>",
             _plot("Confusion matrix: counts and normalised by true class", _confusion_size(len(m["labels"])),
                   lambda fig: _draw_confusion(fig, m["confusion_matrix"], m["labels"], s["target"]))]
    if curves:
        parts += ["<h3>ROC and precision-recall curves</h3>", f'<p class="note">{"Class " + _esc(curves[0]["class"]) + " is the positive class." if len(m["labels"]) == 2 else "One curve per class, one-vs-rest."}{op}</p>',
                  _plot("ROC and precision-recall curves", (10, 4.2), lambda fig: _draw_roc_pr(fig, curves))]
    parts += ['<div class="grid2"><div><h3>Per-class precision, recall, F1</h3>',
              _table(["class", "precision", "recall", "f1", "support"], per_class, numeric=(1, 2, 3, 4)),
              _plot("Per-class precision, recall and F1", (5, 3.2), lambda fig: _draw_per_class(fig, m["per_class"])),
              "</div><div><h3>Calibration</h3>"]
    if curves:
        parts.append('<p class="note">Predicted probability against the observed share of the class, by probability '
                     "decile (bigger dot: more rows). On the diagonal = calibrated.</p>")
        parts.append(_plot("Calibration curve", (5, 4.2), lambda fig: _draw_calibration(fig, curves)))
    else:
        parts.append('<p class="note">Not available: these rows hold a single class.</p>')
    parts.append("</div></div>")
    return "".join(parts)


def _drivers_section(report: dict) -> str:
    diag, s = report["diagnostics"], report["summary"]
    imp = diag["permutation_importance"]
    parts = [f'<h3>Permutation importance</h3><p class="note">How much {_esc(imp["metric"])} drops when one input column '
             f'is shuffled, on {imp["rows"]:,} rows of the {report["on"]["split"]} data, {imp["repeats"]} shuffles each '
             "(bar: mean, line: std). Near zero = the model does not rely on the column.</p>",
             _plot("Permutation importance", _bars_size(len(imp["features"])), lambda fig: _draw_importance(fig, imp))]
    coef = diag["coefficients"]
    if coef:
        parts += [f'<h3>Coefficients of {_esc(s["family"])}</h3><p class="note">On the scaled (standardised) and '
                  "one-hot features, so their sizes compare: positive pushes the prediction up"
                  + (f" (towards class {_esc(coef['outputs'][0])})" if s["task"] == "classification" and len(coef["outputs"]) == 1 else "")
                  + f", negative down. Largest {min(MAX_BARS, len(coef['features']))} of {len(coef['features'])} by size"
                  + (f"; {sum(all(v == 0 for v in f['values']) for f in coef['features'])} are exactly zero (L1)." if s["family"] == "logistic_l1" else ".")
                  + "</p>",
                  _plot("Coefficients", _bars_size(len(coef["features"])),
                        lambda fig: _draw_coefficients(fig, coef))]
    return "".join(parts)


def _bundle_section(report: dict) -> str:
    b = report["bundle"]
    parts = []
    if b["files"]:
        rows = [[f["file"], _size(f["bytes"]), _Html(f'<code class="hash">{f["sha256"]}</code>')] for f in b["files"]]
        parts += ['<h3>Files</h3><p class="note">Checked against MANIFEST.sha256 by <code>mlkiln inspect</code> and '
                  "before every load. report.html and report.json are in the manifest too (a file cannot list its own hash).</p>",
                  _table(["file", "size", "sha256"], rows, numeric=(1,))]
    parts += ["<h3>Versions</h3>", _facts(list(b["versions"].items())),
              "<h3>Load it</h3>", f"<pre>{_esc(b['load'])}</pre>",
              "<h3>Reproduce it</h3><p class=note>train.py needs only pandas and scikit-learn "
              "(<code>pip install -r requirements.txt</code>), not mlkiln.</p>", f"<pre>{_esc(b['reproduce'])}</pre>"]
    return "".join(parts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else (f"{n / 1024:,.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:,.1f} MiB")


def _confusion_size(k: int) -> tuple[float, float]:
    return (10, min(9, max(3.6, 0.45 * k + 1.8)))


def _bars_size(n: int) -> tuple[float, float]:
    return (10, 0.28 * min(n, MAX_BARS) + 1.1)


# ---- the plots ----

def _plot(alt: str, size: tuple[float, float], draw) -> str:
    """Run ``draw(figure)`` on a fresh Agg figure and return it as an inline PNG ``<img>``."""
    with rc_context(_STYLE):
        fig = Figure(figsize=size, layout="constrained", facecolor="white")
        FigureCanvasAgg(fig)  # Agg, explicitly: no GUI, no global pyplot state
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=144)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _draw_target(fig: Figure, target: dict) -> None:
    ax = fig.subplots()
    dist = target["distribution"]
    if "edges" not in dist:
        labels, counts = list(dist["counts"]), list(dist["counts"].values())
        total = sum(counts)
        bars = ax.barh(labels, counts, color=_BLUE)
        ax.bar_label(bars, labels=[f"{c:,} ({c / total:.1%})" for c in counts], padding=4, fontsize=9)
        ax.set_xlabel("rows")
        ax.set_ylabel(target["name"])
        ax.margins(x=0.15)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        return
    edges = np.asarray(dist["edges"])
    ax.bar(edges[:-1], dist["counts"], width=np.diff(edges), align="edge", color=_BLUE, edgecolor="white", linewidth=0.5)
    ax.axvline(dist["mean"], color=_AMBER, linestyle="--", label=f"mean {_num(dist['mean'])}")
    ax.axvline(dist["median"], color=_RED, linestyle=":", label=f"median {_num(dist['median'])}")
    ax.set_xlabel(target["name"])
    ax.set_ylabel("rows")
    ax.legend()


def _draw_tuning(fig: Figure, family: str, curve: dict, metric: str) -> None:
    ax = fig.subplots()
    scored = [p for p in curve["points"] if p["mean"] is not None]
    groups: dict[str, list] = {}
    for p in scored:
        groups.setdefault(_params(p["others"]) if p["others"] else "", []).append(p)
    connect = len(groups) <= len(_PALETTE)
    if not connect:  # a random search: too many settings of the other parameters for one line each
        groups = {"": scored}
    full = max((p.get("n_samples") or 0) for p in scored)
    log = curve["log_scale"]
    values = [p["value"] for p in scored]
    width = (np.log10(max(values) / min(values)) if log else max(values) - min(values)) or 1.0
    where = {}
    for k, ((label, points), color) in enumerate(zip(groups.items(), _PALETTE)):
        # groups side by side, so their spreads at a shared value do not hide each other
        shift = (k - (len(groups) - 1) / 2) * 0.018 * width
        for p in points:
            where[id(p)] = p["value"] * 10 ** shift if log else p["value"] + shift
        x = np.array([where[id(p)] for p in points])
        mean = np.array([p["mean"] for p in points])
        std = np.array([p["std"] or 0.0 for p in points])
        ax.plot(x, mean, "o-" if connect else "o", color=color, markersize=4, linewidth=1.8, label=label or None)
        if len(groups) == 1:
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        else:  # overlapping bands would hide each other: error bars instead
            ax.errorbar(x, mean, yerr=std, fmt="none", ecolor=color, elinewidth=1, capsize=2, alpha=0.6)
        folds = [(where[id(p)], f) for p in points for f in p["folds"] if f is not None]
        ax.scatter(*zip(*folds), s=9, color=color, alpha=0.45, linewidths=0)
        early = [p for p in points if (p.get("n_samples") or full) < full]
        ax.scatter([where[id(p)] for p in early], [p["mean"] for p in early], s=30, facecolors="white", edgecolors=color, zorder=4)
    if any((p.get("n_samples") or full) < full for p in scored):
        ax.scatter([], [], s=30, facecolors="white", edgecolors=_GREY, label="scored on fewer rows (halving)")
    best = next((p for p in scored if p["value"] == curve["chosen"] and p["others"] == curve["chosen_others"]), None)
    if best is not None:
        ax.axvline(where[id(best)], color=_AMBER, linestyle="--", linewidth=1.2)
        ax.plot([where[id(best)]], [best["mean"]], marker="*", markersize=14, color=_AMBER, markeredgecolor="white", zorder=5)
        ax.annotate(f"chosen {curve['param']} = {_num(curve['chosen'])}", (where[id(best)], best["mean"]), xytext=(8, -16),
                    textcoords="offset points", color="#92400e", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(curve["param"] + (" (log scale)" if log else ""))
    ax.set_ylabel(f"CV {metric}")
    ax.set_title(family + ("  (chosen family)" if curve["winner"] else ""), loc="left")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8)


def _draw_confusion(fig: Figure, matrix: list, labels: list, target: str) -> None:
    counts = np.asarray(matrix, dtype="float64")
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    for ax, values, title, text in zip(
        fig.subplots(1, 2), (counts, shares), ("counts", "share of each true class"),
        ([f"{int(v):,}" for v in counts.ravel()], [f"{v:.1%}" for v in shares.ravel()]),
    ):
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for k, label in enumerate(text):
            i, j = divmod(k, len(labels))
            ax.text(j, i, label, ha="center", va="center", fontsize=10 if len(labels) <= 6 else 7,
                    color="white" if shares[i, j] > 0.55 else "#111827")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel(f"predicted {target}")
        ax.set_ylabel(f"true {target}")
        ax.set_title(title, loc="left")
        ax.grid(False)
        ax.spines[:].set_visible(False)


def _draw_roc_pr(fig: Figure, curves: list[dict]) -> None:
    roc, pr = fig.subplots(1, 2)
    for curve, color in zip(curves, _PALETTE * len(curves)):
        name = f"class {curve['class']}"
        roc.plot(curve["roc"]["fpr"], curve["roc"]["tpr"], color=color, linewidth=1.8, label=f"{name}: AUC {curve['roc']['auc']:.3f}")
        pr.plot(curve["pr"]["recall"], curve["pr"]["precision"], color=color, linewidth=1.8, drawstyle="steps-post",
                label=f"{name}: AP {curve['pr']['average_precision']:.3f}")
        op = curve.get("operating_point") or {}
        mark = f"threshold {op['threshold']:.3f}" if op.get("threshold") is not None else "decisions"
        if op.get("fpr") is not None and op.get("tpr") is not None:
            roc.plot(op["fpr"], op["tpr"], "o", color=_AMBER, markersize=8, markeredgecolor="white",
                     label=mark if curve is curves[0] else None, zorder=5)
        if op.get("precision") is not None and op.get("tpr") is not None:
            pr.plot(op["tpr"], op["precision"], "o", color=_AMBER, markersize=8, markeredgecolor="white",
                    label=mark if curve is curves[0] else None, zorder=5)
    roc.plot([0, 1], [0, 1], color=_GREY, linestyle=":", linewidth=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    pr.set(xlabel="recall", ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    roc.set_title("ROC", loc="left")
    pr.set_title("precision-recall", loc="left")
    roc.legend(loc="lower right", fontsize=8.5)
    pr.legend(loc="lower left", fontsize=8.5)


def _draw_per_class(fig: Figure, per_class: dict) -> None:
    ax = fig.subplots()
    labels = list(per_class)
    x = np.arange(len(labels))
    width = 0.26
    for k, (key, color) in enumerate(zip(("precision", "recall", "f1"), (_BLUE, "#059669", _AMBER))):
        ax.bar(x + (k - 1) * width, [per_class[c][key] for c in labels], width, color=color, label=key)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("class")
    ax.legend(ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8.5)
    ax.grid(axis="x", visible=False)


def _draw_calibration(fig: Figure, curves: list[dict]) -> None:
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle=":", linewidth=1, label="perfectly calibrated")
    total = max(sum(c["calibration"]["count"]) for c in curves)
    for curve, color in zip(curves, _PALETTE * len(curves)):
        cal = curve["calibration"]
        ax.plot(cal["mean_predicted"], cal["fraction_positive"], "-", color=color, linewidth=1.5, label=f"class {curve['class']}")
        ax.scatter(cal["mean_predicted"], cal["fraction_positive"], s=[10 + 240 * math.sqrt(n / total) for n in cal["count"]],
                   color=color, alpha=0.7, edgecolors="white", zorder=3)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="mean predicted probability", ylabel="observed share of the class")
    ax.legend(loc="upper left", fontsize=8.5)


def _draw_regression(fig: Figure, reg: dict, target: str) -> None:
    scatter, residual, hist = fig.subplots(1, 3)
    actual, predicted = np.asarray(reg["sample"]["actual"]), np.asarray(reg["sample"]["predicted"])
    alpha = 0.35 if len(actual) > 500 else 0.7
    scatter.scatter(actual, predicted, s=6, alpha=alpha, color=_BLUE, linewidths=0)
    low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
    scatter.plot([low, high], [low, high], color=_AMBER, linestyle="--", linewidth=1.2)
    scatter.set(xlabel=f"actual {target}", ylabel=f"predicted {target}")
    scatter.set_title("predicted against actual", loc="left")
    residual.scatter(predicted, actual - predicted, s=6, alpha=alpha, color=_BLUE, linewidths=0)
    residual.axhline(0, color=_AMBER, linestyle="--", linewidth=1.2)
    residual.set(xlabel=f"predicted {target}", ylabel="residual (actual − predicted)")
    residual.set_title("residuals against predicted", loc="left")
    res = reg["residuals"]
    edges = np.asarray(res["edges"])
    hist.bar(edges[:-1], res["counts"], width=np.diff(edges), align="edge", color=_BLUE, edgecolor="white", linewidth=0.4)
    hist.axvline(0, color=_AMBER, linestyle="--", linewidth=1.2)
    hist.set(xlabel=f"residual (mean {_num(res['mean'])}, std {_num(res['std'])})", ylabel="rows")
    hist.set_title("residual histogram", loc="left")
    if res["outside"]:
        hist.text(0.98, 0.97, f"{res['outside']:,} outliers\nbeyond the axis", transform=hist.transAxes, ha="right", va="top",
                  fontsize=8.5, color="#6b7280")
    for ax in (scatter, residual, hist):
        ax.locator_params(axis="x", nbins=5)


def _draw_importance(fig: Figure, imp: dict) -> None:
    ax = fig.subplots()
    rows = imp["features"][:MAX_BARS][::-1]
    means = [r["mean"] or 0.0 for r in rows]
    ax.barh([r["feature"] for r in rows], means, xerr=[r["std"] or 0.0 for r in rows],
            color=[_BLUE if m >= 0 else _GREY for m in means], error_kw={"ecolor": "#374151", "elinewidth": 1, "capsize": 2})
    ax.axvline(0, color="#6b7280", linewidth=0.8)
    ax.set_xlabel(f"drop in {imp['metric']} when the column is shuffled")
    ax.grid(axis="y", visible=False)


def _draw_coefficients(fig: Figure, coef: dict) -> None:
    ax = fig.subplots()
    rows = coef["features"][:MAX_BARS]  # largest first
    if len(coef["outputs"]) == 1:
        values = [r["values"][0] for r in reversed(rows)]  # barh draws its first bar at the bottom
        ax.barh([r["feature"] for r in reversed(rows)], values, color=[_BLUE if v >= 0 else _RED for v in values])
        ax.axvline(0, color="#6b7280", linewidth=0.8)
        ax.set_xlabel(f"coefficient ({coef['outputs'][0]}) per standard deviation / per category")
        ax.grid(axis="y", visible=False)
        return
    values = np.array([r["values"] for r in rows], dtype="float64")
    limit = np.abs(values).max() or 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(coef["outputs"])), [f"class {c}" for c in coef["outputs"]])
    ax.set_yticks(range(len(rows)), [r["feature"] for r in rows])
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="coefficient", shrink=0.8)


_CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--accent:#2563eb;--bg:#f3f4f6;--win:#fef3c7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.wrap{max-width:1120px;margin:0 auto;padding:0 28px}
header{background:#0f172a;color:#f8fafc;padding:30px 0 26px}
header .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:#93c5fd;font-weight:600}
header h1{margin:4px 0 6px;font-size:28px;font-weight:650;letter-spacing:-.01em}
header p{margin:0;color:#cbd5e1;font-size:14px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin-top:22px}
.card{background:#1e293b;border:1px solid #334155;border-radius:10px;padding:12px 16px}
.card .k{font-size:11.5px;text-transform:uppercase;letter-spacing:.08em;color:#94a3b8}
.card .v{font-size:22px;font-weight:650;margin:2px 0 1px;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.card .s{font-size:12.5px;color:#94a3b8;overflow-wrap:anywhere}
nav{position:sticky;top:0;z-index:1;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line)}
nav .wrap{display:flex;flex-wrap:wrap;gap:4px 18px;padding-top:10px;padding-bottom:10px}
nav a{color:#374151;text-decoration:none;font-size:14px;font-weight:500}
nav a:hover{color:var(--accent)}
section{background:#fff;border:1px solid var(--line);border-radius:12px;padding:22px 28px 24px;margin:22px 0}
h2{font-size:21px;margin:0 0 10px;letter-spacing:-.01em}
h3{font-size:15.5px;margin:22px 0 6px}
.note{color:var(--muted);font-size:14px;margin:4px 0 10px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px;margin:6px 0 8px}
th,td{padding:6px 12px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f9fafb;color:#4b5563;font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.05em;white-space:nowrap}
tbody tr:nth-child(even) td{background:#fafafa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.win td{background:var(--win)!important;font-weight:600}
.badge{display:inline-block;margin-left:6px;padding:0 7px;border-radius:999px;background:#d97706;color:#fff;font-size:11px;font-weight:600;vertical-align:1px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;margin:4px 0 8px;font-size:14px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
img{display:block;max-width:100%;height:auto;margin:8px auto}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:8px 28px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:13px}
pre{background:#0f172a;color:#e2e8f0;padding:14px 16px;border-radius:8px;overflow-x:auto;line-height:1.5}
code.hash{font-size:12px;color:#374151;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:13px;padding:4px 0 30px}
@media (max-width:800px){.grid2{grid-template-columns:1fr}}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header><div class="wrap"><div class="brand">mlkiln report</div><h1>{heading}</h1><p>{subtitle}</p><div class="cards">{cards}</div></div></header>
<nav><div class="wrap">{nav}</div></nav>
<main class="wrap">{body}</main>
<footer class="wrap">Made by mlkiln. This page is one self-contained file: it loads nothing from anywhere.</footer>
</body>
</html>
"""
