"""The report page: one self-contained HTML file drawn from the report document alone.

The page frame is ``page.html`` (a Jinja2 template, autoescaped) with
``report.css`` inlined; the sections are built here, every value escaped by
markupsafe (Jinja2's own escaping), and the figures come from :mod:`.plots`.
"""

from __future__ import annotations

import functools
from importlib.resources import files

import jinja2
from markupsafe import Markup, escape

from ..jsonio import number_text, params_text
from ..options import C_NOTE
from ..summary import date_parts_text, fmt, metric_rows
from . import plots
from .plots import MAX_BARS, plot


@functools.cache
def page_template() -> jinja2.Template:
    text = (files(__package__) / "page.html").read_text(encoding="utf-8")
    return jinja2.Environment(autoescape=True).from_string(text)


@functools.cache
def stylesheet() -> str:
    return (files(__package__) / "report.css").read_text(encoding="utf-8")


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
    return page_template().render(title=f"mlkiln report: {title}", heading=title, subtitle=_subtitle(report),
                          cards=Markup(_cards(report)), nav=Markup(nav), body=Markup(body), style=Markup(stylesheet()))


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
    if s.get("latency_us") is not None:
        cards.append(("One row", f"{s['latency_us']:,.1f} \u00b5s", "median time to score it alone"))
    return "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{escape(v)}</div>'
                   f'<div class="s">{escape(sub)}</div></div>' for k, v, sub in cards)


def table_html(header: list[str], rows: list[list], numeric: tuple[int, ...] = (), marked: tuple[int, ...] = ()) -> str:
    """An HTML table; ``numeric`` columns are right-aligned, ``marked`` rows highlighted."""
    def cell(tag, i, value):
        return f'<{tag}{" class=num" if i in numeric else ""}>{escape(value)}</{tag}>'
    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(f'<tr{" class=win" if r in marked else ""}>' + "".join(cell("td", i, v) for i, v in enumerate(row))
                   + "</tr>" for r, row in enumerate(rows))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


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
            values = f"{number_text(c['min'])} … {number_text(c['max'])}" if c.get("min") is not None else "-"
        rows.append([c["name"], c["kind"], c["dtype"], f"{c['missing']:.1%}", values])
    excluded = [[e["column"], e["reason"]] for e in data["excluded"]]
    excluded += [[name, "dropped with --drop"] for name in data["dropped_by_user"]]
    parts = [_alarms(data.get("leakage", ())), facts_html(facts), f"<h3>{len(rows)} feature columns</h3>",
             table_html(["column", "kind", "dtype", "missing", "values"], rows, numeric=(3,))]
    if excluded:
        parts += [f"<h3>{len(excluded)} columns left out</h3>", table_html(["column", "why"], excluded)]
    on = report["on"]
    where = (f"the {on['rows']:,} rows of the evaluation data" if on["split"] == "evaluation"
             else f"all {data['rows_used']:,} rows used (training and test)")
    title = "Class balance" if "classes" in target else "Target distribution"
    parts += [f"<h3>{title} of {escape(target['name'])}</h3>",
              f'<p class="note">On {where}.</p>',
              plot(f"{title} of {target['name']}", (10, max(2.8, _bars_size(len(target.get("classes") or ()))[1])),
                   lambda fig: plots.draw_target(fig, target))]
    return "".join(parts)


def facts_html(pairs: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs) + "</dl>"


def _leaderboard_section(report: dict) -> str:
    metric = report["summary"]["metric"]
    rows, marked = [], []
    for i, r in enumerate(report["leaderboard"]):
        if r["rank"] == 1:
            marked.append(i)
        score = r["error"] or f"{fmt(r['cv_mean'])} ± {fmt(r['cv_std'])}"
        rank = Markup(f"{r['rank']} <span class=badge>chosen</span>") if r["rank"] == 1 else (r["rank"] or "-")
        rows.append([rank, r["family"], score, _seconds(r["fit_time_s"]), _seconds(r["search_time_s"]),
                     f"{r['candidates']} ({r['search']})" if r.get("search") else r["candidates"], params_text(r["params"])])
    split = report["split"]
    ensemble = any(r["family"] == "ensemble" for r in report["leaderboard"])
    return (f'<p class="note">Every family tuned by {split["folds"]}-fold cross-validation on the training rows; '
            f"the best mean validation {escape(metric)} picks the hyperparameters, then the family. "
            "Fit time is one fit of the chosen candidate, in seconds."
            + (" The ensemble weighs the best candidates of every family by ensemble selection (Caruana et al., "
               "2004) on their out-of-fold predictions; its hyperparameters are each member's share of the vote. "
               "Its score is slightly optimistic: the weights were chosen on the same folds." if ensemble else "")
            + "</p>"
            + (f'<p class="note">Bagged: the chosen model is the average of its fit on all training rows and '
               f'{report["summary"]["bagged"]} more fits, each on a random part of them (drawn without '
               "replacement), as AutoGluon averages its fold models. The cross-validated score is the single "
               "fit's.</p>" if report["summary"].get("bagged") else "")
            + (f'<p class="note">Number columns that look like ids or codes, also encoded by the target\'s mean per '
               f'value for the chosen model: {escape(", ".join(report["summary"]["codes"]))}.</p>'
               if report["summary"].get("codes") else "")
            + (f'<p class="note">Free text read as words (the TF-IDF weights of its most frequent words and pairs '
               f'of words): {escape(", ".join(report["summary"]["texts"]))}.</p>'
               if report["summary"].get("texts") else "")
            + (f'<p class="note">Dates read by the trees also as their parts (hour of the day, day of the week, '
               f'day of the year), besides their time: {escape(date_parts_text(report["summary"]["dates"]))}.</p>'
               if report["summary"].get("dates") else "")
            + table_html(["rank", "family", f"CV {metric} (mean ± std)", "fit s", "search s", "candidates", "hyperparameters"],
                     rows, numeric=(3, 4, 5), marked=tuple(marked))
            + _memberstable_html(report["summary"]))


def _memberstable_html(summary: dict) -> str:
    """The chosen ensemble's members and their weights, heaviest first."""
    members = summary.get("members") or []
    if not members:
        return ""
    rows = [[m["name"], m["family"], f"{m['share']:.1%}", m["weight"], "-" if m["trees"] is None else m["trees"],
             params_text(m["params"])] for m in members]
    return ("<h3>Members of the chosen ensemble</h3>"
            '<p class="note">A weighted vote: predictions (probabilities, for classification) averaged with these '
            "weights, each member refitted on all training rows.</p>"
            + table_html(["member", "family", "share", "picks", "trees", "hyperparameters"], rows, numeric=(2, 3, 4)))


def _tuning_section(report: dict) -> str:
    curves, metric, folds = report["tuning"], report["summary"]["metric"], report["split"]["folds"]
    if not curves:
        return '<p class="note">No family with hyperparameters was tuned.</p>'
    parts = ['<p class="note">Mean validation score of every candidate (line), the spread over the '
             f'{folds} folds (band: ± one std; dots: each fold), and the value each family chose (dashed).']
    if "C" in {c["param"] for c in curves.values()}:
        parts.append(" " + escape(C_NOTE))
    parts.append("</p>")
    # the course's picture (score against C for the L1 logistic family) comes first, full width
    ordered = sorted(curves.items(), key=lambda item: item[0] != "logistic_l1")
    small = []
    for family, curve in ordered:
        wide = family == "logistic_l1"
        img = plot(f"CV {metric} against {curve['param']} for {family}", (10, 3.8) if wide else (5, 3.4),
                    lambda fig, f=family, c=curve: plots.draw_tuning(fig, f, c, metric))
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
    return note + _evaluation_note(report.get("evaluation")) + table_html(header, rows, numeric=tuple(range(1, len(header))))


def _evaluation_note(evaluation: dict | None) -> str:
    """Which rows the metrics and the samples saw (cards before it say nothing)."""
    if not evaluation:
        return ""
    rows = evaluation["rows"]
    return (f'<p class="note">Metrics and the curves: {escape(evaluation["metrics"])} '
            f'({rows["train"]:,} train and {rows["test"]:,} test rows). Permutation importance on a seeded sample of '
            f'{rows["importance"]:,} test rows, scatter plots on {rows["scatter"]:,} (seed {evaluation["seed"]}).</p>')


def _diagnostics_section(report: dict) -> str:
    on, diag, s = report["on"], report["diagnostics"], report["summary"]
    intro = (f'<p class="note">On the {on["rows"]:,} rows of {"the evaluation data (" + escape(on["source"]) + ")" if on["split"] == "evaluation" else "the held-out test split"}; '
             "the model never trained on them.</p>")
    if s["task"] == "regression":
        reg = diag["regression"]
        n = len(reg["sample"]["actual"])
        shown = f"{n:,} of the {on['rows']:,} rows (a seeded random sample)" if n < on["rows"] else f"all {n:,} rows"
        # joined, not added: str + Markup would escape the str
        return "".join([intro, f'<p class="note">Scatter plots show {shown}; the histogram uses every row.</p>',
                        plot("Predicted against actual, residuals against predicted, residual histogram", (10, 3.5),
                             lambda fig: plots.draw_regression(fig, reg, s["target"]))])
    m = report["metrics"][on["split"]]
    curves = diag["classification"]["curves"]
    per_class = [[label, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), f"{v['support']:,}"]
                 for label, v in m["per_class"].items()]
    op = ""
    if s["threshold"] is not None:
        op = f" The marker on each curve is the model's operating point: P({escape(s['target'])}={escape(curves[0]['class'])}) ≥ {s['threshold']:.3f}, tuned on the validation folds." if curves else ""
    elif len(m["labels"]) == 2:
        op = " The marker on each curve is the model's operating point (probability 0.5)."
    else:
        op = " Markers are where the model's own (most probable class) decisions sit."
    parts = [intro, "<h3>Confusion matrix</h3>",
             plot("Confusion matrix: counts and normalised by true class", _confusion_size(len(m["labels"])),
                   lambda fig: plots.draw_confusion(fig, m["confusion_matrix"], m["labels"], s["target"]))]
    curves, fewer = _most_frequent(curves, m["per_class"])
    if curves:
        parts += ["<h3>ROC and precision-recall curves</h3>", f'<p class="note">{"Class " + escape(curves[0]["class"]) + " is the positive class." if len(m["labels"]) == 2 else "One curve per class, one-vs-rest."}{op}{fewer}</p>',
                  plot("ROC and precision-recall curves", (10, 4.2), lambda fig: plots.draw_roc_pr(fig, curves))]
    parts += ['<div class="grid2"><div><h3>Per-class precision, recall, F1</h3>',
              table_html(["class", "precision", "recall", "f1", "support"], per_class, numeric=(1, 2, 3, 4)),
              plot("Per-class precision, recall and F1", (5, 3.2),
                   lambda fig: plots.draw_per_class(fig, {c["class"]: m["per_class"][c["class"]] for c in curves}
                                                    if fewer else m["per_class"])),
              "</div><div><h3>Calibration</h3>"]
    if curves:
        parts.append('<p class="note">Predicted probability against the observed share of the class, by probability '
                     f"decile (bigger dot: more rows). On the diagonal = calibrated.{fewer}</p>")
        parts.append(plot("Calibration curve", (5, 4.2), lambda fig: plots.draw_calibration(fig, curves)))
    else:
        parts.append('<p class="note">Not available: these rows hold a single class.</p>')
    parts.append("</div></div>")
    return "".join(parts)


#: classes drawn in the per-class curves and bars (the most frequent in the rows): 100 classes' curves are 100
#: lines no one can tell apart, and took 4 of the page's 7 s. Every class is in the table and in report.json
MAX_PLOTTED_CLASSES = 10


def _most_frequent(curves: list[dict], per_class: dict) -> tuple[list[dict], str]:
    """At most :data:`MAX_PLOTTED_CLASSES` curves, those of the most frequent classes, and the note saying so."""
    if len(curves) <= MAX_PLOTTED_CLASSES:
        return curves, ""
    support = [per_class.get(c["class"], {}).get("support", 0) for c in curves]
    kept = set(sorted(range(len(curves)), key=lambda k: -support[k])[:MAX_PLOTTED_CLASSES])
    note = (f" Drawn for the {MAX_PLOTTED_CLASSES} most frequent of the {len(curves)} classes in these rows; "
            "the table and report.json have every class.")
    return [c for k, c in enumerate(curves) if k in kept], note  # in the classes' order


def _drivers_section(report: dict) -> str:
    diag, s = report["diagnostics"], report["summary"]
    imp = diag["permutation_importance"]
    if imp.get("skipped"):
        parts = [f'<h3>Permutation importance</h3><p class="note">Not computed: {escape(imp["skipped"])}.</p>']
    else:
        parts = [f'<h3>Permutation importance</h3><p class="note">How much {escape(imp["metric"])} drops when one '
                 f'input column is shuffled, on {imp["rows"]:,} rows of the {report["on"]["split"]} data, '
                 f'{imp["repeats"]} shuffles each (bar: mean, line: std). Near zero = the model does not rely on the '
                 'column.</p>',
                 plot("Permutation importance", _bars_size(len(imp["features"])),
                      lambda fig: plots.draw_importance(fig, imp))]
    coef = diag["coefficients"]
    if coef:
        parts += [f'<h3>Coefficients of {escape(s["family"])}</h3><p class="note">On the scaled (standardised) and '
                  "one-hot features, so their sizes compare: positive pushes the prediction up"
                  + (f" (towards class {escape(coef['outputs'][0])})" if s["task"] == "classification" and len(coef["outputs"]) == 1 else "")
                  + f", negative down. Largest {min(MAX_BARS, len(coef['features']))} of {len(coef['features'])} by size"
                  + (f"; {sum(all(v == 0 for v in f['values']) for f in coef['features'])} are exactly zero (L1)." if s["family"] == "logistic_l1" else ".")
                  + "</p>",
                  plot("Coefficients", _bars_size(len(coef["features"])),
                        lambda fig: plots.draw_coefficients(fig, coef))]
    return "".join(parts)


def _bundle_section(report: dict) -> str:
    b = report["bundle"]
    parts = []
    if b["files"]:
        rows = [[f["file"], _size(f["bytes"]), Markup(f'<code class="hash">{f["sha256"]}</code>')] for f in b["files"]]
        parts += ['<h3>Files</h3><p class="note">Checked against MANIFEST.sha256 by <code>mlkiln inspect</code> and '
                  "before every load. report.html and report.json are in the manifest too (a file cannot list its own hash).</p>",
                  table_html(["file", "size", "sha256"], rows, numeric=(1,))]
    parts += ["<h3>Versions</h3>", facts_html(list(b["versions"].items())),
              "<h3>Load it</h3>", f"<pre>{escape(b['load'])}</pre>",
              "<h3>Reproduce it</h3><p class=note>train.py needs only pandas and scikit-learn "
              "(<code>pip install -r requirements.txt</code>), not mlkiln.</p>", f"<pre>{escape(b['reproduce'])}</pre>"]
    return "".join(parts)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _size(n: int) -> str:
    return f"{n:,} B" if n < 1024 else (f"{n / 1024:,.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:,.1f} MiB")


def _confusion_size(k: int) -> tuple[float, float]:
    return (10, min(9, max(3.6, 0.45 * k + 1.8)))


def _bars_size(n: int) -> tuple[float, float]:
    return (10, 0.28 * min(n, MAX_BARS) + 1.1)


def _alarms(evidence) -> Markup:
    """Leakage alarms first: a near-perfect score, test rows that copy training rows, and columns that rebuild the
    target together."""
    boxes = []
    for item in evidence:
        if item["kind"] == "ceiling":
            boxes.append(Markup('<div class="alarm"><b>Too good to be true?</b> {}</div>').format(item["message"]))
        elif item["kind"] == "copies":
            boxes.append(Markup('<div class="alarm"><b>Test rows seen in training:</b> {}</div>').format(item["message"]))
        else:
            boxes.append(Markup('<div class="alarm"><b>Excluded as a leak over several columns:</b> {} '
                                '({} {:.4f} on {:,} rows)</div>').format(
                item["relation"], item["metric"], item["score"], item["rows"]))
    return Markup("").join(boxes)

