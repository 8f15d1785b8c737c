"""How a drift check is shown: a table in the terminal, ``drift.html`` and ``drift.json``.

The page is the evaluation report's: its template, CSS, tables and plot
style come from :mod:`mlkiln.report`; only the drift sections are drawn here.
Everything on it comes from the JSON document (:func:`document`).

``drift.json``, ``schema_version`` 1: ``kind`` (``"drift"``), ``created_at``,
``mlkiln_version``, ``model`` (``task``, ``target``, ``family``,
``trained_on``), ``data`` (``source``, ``rows``), and
:meth:`mlkiln.drift.DriftResult.to_dict`'s keys: ``training_rows``,
``epsilon``, ``thresholds``, ``few_rows`` (a sentence where the new rows are
too few for PSI to tell drift from sampling noise, else null) and
``columns`` / ``predictions``, each shift as ``{"name", "kind", "psi",
"severity", "noise", "within_noise", "missing_train", "missing_new",
"out_of_range", "unseen", "bins", "train", "new"}`` (``noise``: the PSI that
samples of as many rows of the training data reach, 95 % of 200 draws),
columns most drifted first.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
from markupsafe import Markup, escape

from . import __version__
from .atomic import write_all_atomic
from .bundle import check_outside
from .drift import MAX_KNOWN, NOISE_DRAWS, NOISE_QUANTILE, SAMPLE_ROWS, TOP_CATEGORIES, DriftResult
from .jsonio import dumps
from .report.html import facts_html, page_template, stylesheet, table_html
from .report.plots import AMBER, BLUE, plot
from .summary import table

SCHEMA_VERSION = 1
#: columns drawn on the page (most drifted first); the table lists all
MAX_PLOTS = 12


def document(result: DriftResult, card, source: str) -> dict:
    """The drift check as plain JSON: what was compared with what, and every shift."""
    return {
        "schema_version": SCHEMA_VERSION, "kind": "drift",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "mlkiln_version": __version__,
        "model": {"task": card.task, "target": card.target, "family": card.model.family, "trained_on": card.data.source},
        "data": {"source": source, "rows": result.rows},
        **result.to_dict(),
    }


def terminal_table(doc: dict) -> str:
    """The shifts as a text table, most drifted first, the predictions last."""
    rows = [_row(s) for s in doc["columns"]] + [_row(s) for s in doc["predictions"]]
    return table(rows, ["column", "kind", "PSI", "severity", "noise", "missing train -> new", "out of range",
                         "unseen"])


def _row(s: dict) -> list:
    severity = s["severity"] + (" (noise)" if s.get("within_noise") and s["severity"] != "stable" else "")
    return [s["name"], s["kind"], f"{s['psi']:.4f}", severity, f"{s.get('noise', 0.0):.4f}",
            f"{s['missing_train']:.1%} -> {s['missing_new']:.1%}", _share(s["out_of_range"]), _share(s["unseen"])]


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def write(path: str | os.PathLike, doc: dict) -> Path:
    """Write ``drift.html`` to ``path`` and ``drift.json`` beside it (same name, ``.json``): both or neither."""
    path = check_outside(path)
    write_all_atomic({path.with_suffix(".json"): dumps(doc), path: render_html(doc).encode()})
    return path


def render_html(doc: dict) -> str:
    """The drift document as one self-contained page in the report's style."""
    model = doc["model"]
    sections = [
        ("columns", "Columns", _columns_section(doc)),
        ("predictions", "Predictions", _shift_plots(doc["predictions"], doc)),
        ("shifts", "Most drifted columns", _shift_plots(doc["columns"][:MAX_PLOTS], doc)),
        ("method", "How it is measured", _method_section(doc)),
    ]
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{title}</h2>{content}</section>' for key, title, content in sections)
    heading = f"Drift of {doc['data']['source']} against the training data"
    subtitle = (f"{model['family']} predicting {model['target']!r}, trained on {model['trained_on']} · "
                f"checked {doc['created_at']} by mlkiln {doc['mlkiln_version']}")
    return page_template().render(title=f"mlkiln drift: {doc['data']['source']}", heading=heading, subtitle=subtitle,
                          cards=Markup(_cards(doc)), nav=Markup(nav), body=Markup(body), style=Markup(stylesheet()))


def _cards(doc: dict) -> str:
    columns = doc["columns"]
    major = sum(s["severity"] == "major" and not s.get("within_noise") for s in columns)
    moderate = sum(s["severity"] == "moderate" and not s.get("within_noise") for s in columns)
    worst = columns[0] if columns else None
    cards = [
        ("Rows checked", f"{doc['data']['rows']:,}", f"against {doc['training_rows']:,} training rows"),
        ("Columns drifted", f"{major} major", f"{moderate} moderate, {len(columns) - major - moderate} stable"
                                              + (" or within sampling noise" if doc.get("few_rows") else "")),
        ("Largest PSI", f"{worst['psi']:.3f}" if worst else "-", worst["name"] if worst else ""),
        *[(f"PSI of {s['name']}", f"{s['psi']:.3f}", s["severity"]) for s in doc["predictions"]],
    ]
    return "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div>'
                   f'<div class="s">{escape(sub)}</div></div>' for k, v, sub in cards)


def _columns_section(doc: dict) -> str:
    rows = [_row(s) for s in doc["columns"]]
    marked = tuple(i for i, s in enumerate(doc["columns"]) if s["severity"] == "major" and not s.get("within_noise"))
    t = doc["thresholds"]
    few = f'<p class="note"><strong>{escape(doc["few_rows"])}.</strong></p>' if doc.get("few_rows") else ""
    return few + (f'<p class="note">Every input column, most drifted first (highlighted: PSI ≥ {t["major"]}, a major '
            f"shift; {t['moderate']} to {t['major']} is moderate). Out of range: new values outside the training "
            "minimum and maximum; unseen: categories training never saw (they are encoded as unknown); noise: the PSI "
            f"that as many rows drawn from the training data itself reach in {NOISE_QUANTILE:.0%} of {NOISE_DRAWS} "
            "draws, \"(noise)\" where the shift is no larger.</p>"
            + table_html(["column", "kind", "PSI", "severity", "noise", "missing train → new", "out of range",
                          "unseen"], rows, numeric=(2, 4, 6, 7), marked=marked))


def _shift_plots(shifts: list[dict], doc: dict) -> str:
    if not shifts:
        return '<p class="note">Nothing to show.</p>'
    figures = [f"<div>{plot(s['name'] + ': training and new shares per bin', (5, 3.4), lambda fig, s=s: draw_shift(fig, s))}</div>"
               for s in shifts]
    note = (f'<p class="note">Share of rows in each bin of the training profile (bins: training deciles, or the '
            f"most frequent categories) for the {doc['training_rows']:,} training rows and the {doc['data']['rows']:,} new ones.</p>")
    return note + f'<div class="grid2">{"".join(figures)}</div>'


def draw_shift(fig, shift: dict) -> None:
    """Training and new shares side by side for each bin of one column."""
    ax = fig.subplots()
    x = np.arange(len(shift["bins"]))
    ax.bar(x - 0.2, shift["train"], 0.4, color=BLUE, label="training")
    ax.bar(x + 0.2, shift["new"], 0.4, color=AMBER, label="new")
    ax.set_xticks(x, shift["bins"], rotation=45, ha="right", fontsize=7.5)
    ax.set_ylabel("share of rows")
    ax.set_title(f"{shift['name']}  PSI {shift['psi']:.3f} ({shift['severity']})", loc="left")
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=8)


def _method_section(doc: dict) -> str:
    return facts_html([
        ("PSI", "sum over bins of (new − training) × ln(new / training), on the bins' shares of rows"),
        ("empty bins", f"shares below {doc['epsilon']:g} count as {doc['epsilon']:g}, so an empty bin adds a large but finite amount"),
        ("bins", f"numeric and date columns: deciles of the training rows (from a seeded sample of at most "
                 f"{SAMPLE_ROWS:,}), plus one bin for missing values; text columns: the {TOP_CATEGORIES} most "
                 "frequent training categories, the other training categories pooled, values never seen in training "
                 f"(when training had at most {MAX_KNOWN:,} categories, all listed), and missing"),
        ("predictions", "the model's predictions on the new rows against "
                        + ("its predictions on the test split" if doc.get("prediction_source", "out-of-fold") == "test"
                           else "the cross-validation's out-of-fold predictions on the training rows")),
        ("rule of thumb", f"below {doc['thresholds']['moderate']}: stable; up to {doc['thresholds']['major']}: moderate; above: major"),
    ])
