"""Plain-text summaries for the terminal: leaderboard, metrics, model card.

Only formatting lives here; every number comes from the card that
:mod:`mlkiln.workflow` and :mod:`mlkiln.metrics` computed.
"""

from __future__ import annotations

from .card import Card, Column
from .jsonio import params_text

REGRESSION_KEYS = ("r2", "rmse", "mae", "mape")
CLASSIFICATION_KEYS = (
    "accuracy", "balanced_accuracy", "precision", "recall", "f1",
    "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "roc_auc", "average_precision", "log_loss",
)


def fmt(value) -> str:
    """A number as people read it: 4 decimals, 4 significant digits for the very small or large, "-" for missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        # 4 significant digits beyond that range: an error of 1e-9 in a target of 1e-9 is not 0.0000
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 or value != value else f"{value:.4g}"
    return str(value)


def table(rows: list[list], header: list[str]) -> str:
    """A left-aligned text table."""
    cells = [header] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def metric_keys(task: str) -> tuple[str, ...]:
    return REGRESSION_KEYS if task == "regression" else CLASSIFICATION_KEYS


def metric_rows(task: str, split_metrics: dict) -> tuple[list[str], list[list[str]]]:
    """The splits present, and one formatted row per metric that has a value.

    Validation shows mean ± std over the folds. The terminal and the HTML
    report both draw their metrics table from these rows.
    """
    splits = [s for s in ("train", "validation", "test", "evaluation") if s in split_metrics]
    rows = []
    for key in metric_keys(task):
        row = [key]
        for split in splits:
            m = split_metrics[split]
            if split == "validation":
                mean = m["mean"].get(key)
                row.append("-" if mean is None else f"{fmt(mean)} ± {fmt(m['std'][key])}")
            else:
                row.append(fmt(m.get(key)))
        if any(c != "-" for c in row[1:]):
            rows.append(row)
    return splits, rows


def metrics_table(task: str, split_metrics: dict) -> str:
    """Metrics side by side for each split present."""
    splits, rows = metric_rows(task, split_metrics)
    return table(rows, ["metric", *splits])


def leaderboard_table(card: Card) -> str:
    rows = []
    for r in card.leaderboard:
        mark = "*" if r.rank == 1 else ""
        score = r.status if r.error else f"{r.cv_mean:.4f} ± {r.cv_std:.4f}"
        rows.append([f"{r.rank or '-'}{mark}", r.family, score, r.fit_time_s, r.candidates, params_text(r.params)])
    return table(rows, ["rank", "family", f"CV {card.metric.name}", "fit s", "cands", "hyperparameters"])


#: the most classes whose confusion matrix the terminal shows (120 classes made lines of 1,329 characters)
CONFUSION_COLUMNS = 20


def confusion_text(m: dict) -> str:
    labels = m["labels"]
    if len(labels) > CONFUSION_COLUMNS:
        return f"({len(labels)} classes: too wide for a terminal; the counts are in the report and its .json)"
    rows = [[f"true {label}", *counts] for label, counts in zip(labels, m["confusion_matrix"])]
    return table(rows, ["", *[f"pred {label}" for label in labels]])


def train_summary(card: Card, path, elapsed: float | None = None) -> str:
    model = card.model
    lines = [
        "",
        "Leaderboard (k-fold CV on the training rows; * = chosen):",
        leaderboard_table(card),
        "",
        f"Best model: {model.family} ({model.estimator}) {params_text(model.params)}",
    ]
    if model.bagged:
        lines.append(f"Bagged: averaged with {model.bagged} more fits of gradient boosting, each on a random part "
                     "of the training rows (--no-bagging: one fit)")
    if model.threshold is not None:
        tuned = f" for {model.threshold_metric}" if model.threshold_metric else ""
        lines.append(f"Decision threshold: {model.threshold:.4f} (tuned on validation folds{tuned})")
    if model.codes:
        lines.append(f"Also encoded by the target's mean per value (numbers that look like ids or codes): "
                     f"{', '.join(model.codes)}")
    if model.texts:
        lines.append(f"Read as words (free text: TF-IDF of its most frequent words and pairs): {', '.join(model.texts)}")
    if model.dates:
        lines.append(f"Dates' parts read by trees: {date_parts_text(model.dates)}")
    if card.latency_us is not None:
        lines.append(f"One row scored in {card.latency_us:,.1f} us (median; what serve's /predict spends on the model)")
    lines += ["", metrics_table(card.task, card.metrics)]
    if card.task == "classification":
        lines += ["", "Test confusion matrix:", confusion_text(card.metrics["test"])]
    if path is not None:
        lines += ["", f"Bundle written to {path}/ (model.joblib, model.skops, train.py, requirements.txt, card.json, report.html, report.json)"]
    if elapsed is None:
        lines.append(f"Done in {card.train_seconds:.1f}s.")
    else:  # the command's own time: training, then the report's figures and the bundle's files
        lines.append(f"Done in {elapsed:.1f}s (training {card.train_seconds:.1f}s; then the report and the bundle).")
    return "\n".join(lines)


def evaluation_summary(card: Card, result: dict) -> str:
    lines = [metrics_table(card.task, {"test": card.metrics["test"], "evaluation": result})]
    if card.task == "classification":
        lines += ["", "Confusion matrix:", confusion_text(result)]
    return "\n".join(lines)


def card_summary(card: Card, files: list[dict]) -> str:
    model, data, split = card.model, card.data, card.split
    lines = [
        f"task:       {card.task} of {card.target!r}",
        f"model:      {model.family} ({model.estimator}) {params_text(model.params)}",
        f"metric:     {card.metric.why}",
    ]
    if model.threshold is not None:
        lines.append(f"threshold:  {model.threshold:.4f}")
    if model.bagged:
        lines.append(f"bagged:     {model.bagged} more fits, each on a random part of the training rows")
    if model.texts:
        lines.append(f"words of:   {', '.join(model.texts)} (free text)")
    if model.dates:
        lines.append(f"date parts: {date_parts_text(model.dates)}")
    if card.latency_us is not None:
        lines.append(f"latency:    {card.latency_us:,.1f} us to score one row (median)")
    lines += [
        f"data:       {data.source} ({data.rows} rows, {data.columns} columns, sha256 {data.sha256[:16]}...)",
        f"split:      test {split.test_size}, {split.folds}-fold CV, seed {split.seed}",
        f"created:    {card.created_at} with mlkiln {card.mlkiln_version} (card version {card.card_version})",
        "versions:   " + ", ".join(f"{k} {v}" for k, v in card.versions.items()),
        "",
        metrics_table(card.task, card.metrics),
        "",
        "Input schema:",
        table([[c.name, c.kind, c.dtype, _schema_detail(c), c.missing] for c in card.columns],
              ["column", "kind", "dtype", "values", "missing"]),
    ]
    if card.excluded:
        lines += ["", "Excluded columns:"] + [f"  {k}: {v}" for k, v in card.excluded.items()]
    lines += ["", "Files:", table([[f["file"], f["bytes"], f["sha256"][:16] + "..." if f["sha256"] else "-", f["status"]] for f in files],
                                   ["file", "bytes", "sha256", "verified"])]
    return "\n".join(lines)


#: a category longer than this is cut (with "...") in ``inspect``'s schema: one of 5,000 characters padded every
#: row of the table to its width
CATEGORY_CHARS = 40


def _schema_detail(column: Column) -> str:
    if column.kind == "categorical":
        shown = ", ".join(c if len(c) <= CATEGORY_CHARS else c[:CATEGORY_CHARS - 3] + "..."
                          for c in column.categories[:5])
        more = column.n_categories - min(5, len(column.categories))
        return f"{shown}{f' (+{more})' if more > 0 else ''}"
    if column.min is not None:
        return f"{column.min:g} .. {column.max:g}"
    return ""


def date_parts_text(dates: dict) -> str:
    """``created_at: hour, weekday``; ...: the parts of each date column trees read (pipeline.date_parts)."""
    return "; ".join(f"{name}: {', '.join(parts)}" for name, parts in dates.items())
