"""The report's figures: matplotlib (no pyplot state), embedded in the page as SVG.

Why SVG rather than PNG: the browser draws it sharp at any zoom, and it is
about a fifth quicker to make (no rasterising, no PNG compression; a figure's
time is mostly matplotlib's text layout, which both need). Text stays text
(``svg.fonttype: none``), drawn in the reader's sans-serif. Point clouds,
whose thousands of markers would make the SVG large, are rasterised inside it
(``rasterized=True`` where they are drawn). The SVG is deterministic: fixed
element ids (``svg.hashsalt``) and no date, so a rebuilt page is the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from markupsafe import Markup, escape

from ..jsonio import number_text, params_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: bars shown in the importance and coefficient charts
MAX_BARS = 25
#: a point cloud larger than this is rasterised inside the SVG
RASTER_POINTS = 300

BLUE, AMBER, RED, GREY = "#2563eb", "#d97706", "#dc2626", "#94a3b8"
PALETTE = [BLUE, "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d"]
_STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelcolor": "#374151",
    "axes.edgecolor": "#9ca3af", "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "xtick.color": "#4b5563", "ytick.color": "#4b5563", "legend.frameon": False,
    "svg.fonttype": "none", "svg.hashsalt": "mlkiln",
}
#: resolution of the rasterised parts of a figure (point clouds)
DPI = 144
#: at most this many intervals between the labelled ticks of a linear axis (matplotlib's own choice is up to
#: 9): a tick is several artists that take about a millisecond to build, and ticks were a third of a figure's time
TICK_BINS = 5


def plot(alt: str, size: tuple[float, float], draw) -> Markup:
    """Run ``draw(figure)`` on a fresh figure and return it as an inline SVG ``<img>``.

    matplotlib is imported here, on the first figure: nothing else needs it.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with rc_context(_STYLE), warnings.catch_warnings():
        # a figure too small for its labels is drawn without the layout: said by matplotlib with its source line
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        # a category with an emoji or a script the font lacks: drawn as a box, said with the source line per glyph
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig = Figure(figsize=size, layout="constrained", facecolor="white")
        canvas = FigureCanvasSVG(fig)  # explicitly: no GUI, no global pyplot state
        draw(fig)
        _fewer_ticks(fig)
        # The layout once, then frozen, then one draw. savefig would draw twice
        # (once to lay out, once to write) and lay out both times: a fifth
        # more time for the same bytes. Measuring text leaves the figure at 72
        # dpi; the rasterised point clouds need DPI back.
        fig.get_layout_engine().execute(fig)
        fig.set_layout_engine("none")
        fig.set_dpi(DPI)
        buffer = io.BytesIO()
        canvas.print_svg(buffer, metadata={"Date": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Markup(f'<img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">')


def _fewer_ticks(fig: Figure) -> None:
    """At most :data:`TICK_BINS` intervals on every axis that matplotlib places itself on a linear scale."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locator = axis.get_major_locator()
            if isinstance(locator, MaxNLocator):  # set ticks (categories, classes) and log axes keep theirs
                locator.set_params(nbins=TICK_BINS)


def draw_target(fig: Figure, target: dict) -> None:
    ax = fig.subplots()
    dist = target["distribution"]
    if "edges" not in dist:
        labels, counts = list(dist["counts"]), list(dist["counts"].values())
        total = sum(counts)
        if len(labels) > MAX_BARS:  # the most frequent classes, then the rest as one bar
            order = sorted(range(len(labels)), key=lambda k: -counts[k])
            rest = sum(counts[k] for k in order[MAX_BARS - 1:])
            labels = [labels[k] for k in order[: MAX_BARS - 1]] + [f"{len(order) - MAX_BARS + 1} other classes"]
            counts = [counts[k] for k in order[: MAX_BARS - 1]] + [rest]
        bars = ax.barh(labels, counts, color=BLUE)
        ax.bar_label(bars, labels=[f"{c:,} ({c / total:.1%})" for c in counts], padding=4, fontsize=9)
        ax.set_xlabel("rows")
        ax.set_ylabel(target["name"])
        ax.margins(x=0.15)
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        return
    edges = np.asarray(dist["edges"])
    ax.bar(edges[:-1], dist["counts"], width=np.diff(edges), align="edge", color=BLUE, edgecolor="white", linewidth=0.5)
    ax.axvline(dist["mean"], color=AMBER, linestyle="--", label=f"mean {number_text(dist['mean'])}")
    ax.axvline(dist["median"], color=RED, linestyle=":", label=f"median {number_text(dist['median'])}")
    ax.set_xlabel(target["name"])
    ax.set_ylabel("rows")
    ax.legend()


#: the longest line name the tuning panels' legend holds (their other parameters' values): beyond it, points
LEGEND_CHARS = 48


def draw_tuning(fig: Figure, family: str, curve: dict, metric: str) -> None:
    ax = fig.subplots()
    scored = [p for p in curve["points"] if p["mean"] is not None]
    # each setting of the other parameters a line, named by those that differ between the lines
    varying = {k for p in scored for k in (p["others"] or {})
               if len({repr((q["others"] or {}).get(k)) for q in scored}) > 1}
    groups: dict[str, list] = {}
    for p in scored:
        differ = {k: v for k, v in (p["others"] or {}).items() if k in varying}
        groups.setdefault(params_text(differ) if differ else "", []).append(p)
    # a random or portfolio search: too many settings of the other parameters, or one point each, for lines, or
    # names too long for a legend in the panel (a portfolio's six settings of six parameters pushed the panel aside)
    connect = (len(groups) <= len(PALETTE) and any(len(points) > 1 for points in groups.values())
               and max(map(len, groups), default=0) <= LEGEND_CHARS)
    if not connect:
        groups = {"": scored}
    full = max((p.get("n_samples") or 0) for p in scored)
    log = curve["log_scale"]
    values = [p["value"] for p in scored]
    width = (np.log10(max(values) / min(values)) if log else max(values) - min(values)) or 1.0
    where = {}
    for k, ((label, points), color) in enumerate(zip(groups.items(), PALETTE)):
        # groups side by side, so their spreads at a shared value do not hide each other
        shift = (k - (len(groups) - 1) / 2) * 0.018 * width
        for p in points:
            where[id(p)] = p["value"] * 10 ** shift if log else p["value"] + shift
        x = np.array([where[id(p)] for p in points])
        mean = np.array([p["mean"] for p in points])
        std = np.array([p["std"] or 0.0 for p in points])
        ax.plot(x, mean, "o-" if connect else "o", color=color, markersize=4, linewidth=1.8, label=label or None)
        if len(groups) == 1 and connect:
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        else:  # overlapping bands would hide each other, and unconnected points have no band: error bars
            ax.errorbar(x, mean, yerr=std, fmt="none", ecolor=color, elinewidth=1, capsize=2, alpha=0.6)
        folds = [(where[id(p)], f) for p in points for f in p["folds"] if f is not None]
        ax.scatter(*zip(*folds), s=9, color=color, alpha=0.45, linewidths=0, rasterized=len(folds) > RASTER_POINTS)
        early = [p for p in points if (p.get("n_samples") or full) < full]
        ax.scatter([where[id(p)] for p in early], [p["mean"] for p in early], s=30, facecolors="white", edgecolors=color, zorder=4)
    if any((p.get("n_samples") or full) < full for p in scored):
        ax.scatter([], [], s=30, facecolors="white", edgecolors=GREY, label="scored on fewer rows (halving)")
    best = next((p for p in scored if p["value"] == curve["chosen"] and p["others"] == curve["chosen_others"]), None)
    if best is not None:
        ax.axvline(where[id(best)], color=AMBER, linestyle="--", linewidth=1.2)
        ax.plot([where[id(best)]], [best["mean"]], marker="*", markersize=14, color=AMBER, markeredgecolor="white", zorder=5)
        ax.annotate(f"chosen {curve['param']} = {number_text(curve['chosen'])}", (where[id(best)], best["mean"]), xytext=(8, -16),
                    textcoords="offset points", color="#92400e", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    if log:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, width)
    ax.set_xlabel(curve["param"] + (" (log scale)" if log else ""))
    ax.set_ylabel(f"CV {metric}")
    ax.set_title(family + ("  (chosen family)" if curve["winner"] else ""), loc="left")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8)


def _plain_log_ticks(axis, decades: float) -> None:
    """Label a log axis 0.01, 0.1, 1, 10, as the hyperparameters are written, not 10 to a power.

    matplotlib's powers are mathtext, parsed per label: a third of a tuning figure's time.
    Over more than two decades the unlabelled minor ticks (2 to 9 of each decade) are
    left out: matplotlib builds each tick for about a millisecond, and they were a fifth
    of the report's figures' time on a small table.
    """
    from matplotlib.ticker import LogFormatter, NullLocator

    class Plain(LogFormatter):  # LogFormatter still decides which ticks get a label
        def _num_to_string(self, x, vmin, vmax):
            return number_text(float(x))

    axis.set_major_formatter(Plain())
    if decades > 2:
        axis.set_minor_locator(NullLocator())
    else:
        axis.set_minor_formatter(Plain(labelOnlyBase=False))


#: the most classes whose confusion matrix shows a number in each cell and every label: 120 classes drew 28,800
#: numbers on top of each other, 14.3 MB of the page's SVG
CONFUSION_NUMBERS = 20


def draw_confusion(fig: Figure, matrix: list, labels: list, target: str) -> None:
    counts = np.asarray(matrix, dtype="float64")
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    for ax, values, title, text in zip(
        fig.subplots(1, 2), (counts, shares), ("counts", "share of each true class"),
        ([f"{int(v):,}" for v in counts.ravel()], [f"{v:.1%}" for v in shares.ravel()]),
    ):
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if len(labels) <= CONFUSION_NUMBERS:  # beyond, numbers overlap (the counts are in report.json)
            for k, label in enumerate(text):
                i, j = divmod(k, len(labels))
                ax.text(j, i, label, ha="center", va="center", fontsize=10 if len(labels) <= 6 else 7,
                        color="white" if shares[i, j] > 0.55 else "#111827")
        _thinned_ticks(ax.set_xticks, labels, rotate=True)
        _thinned_ticks(ax.set_yticks, labels)
        ax.set_xlabel(f"predicted {target}")
        ax.set_ylabel(f"true {target}")
        ax.set_title(title, loc="left")
        ax.grid(False)
        ax.spines[:].set_visible(False)


def _thinned_ticks(set_ticks, labels: list, rotate: bool = False) -> None:
    """Label at most about :data:`CONFUSION_NUMBERS` of ``labels``' positions (every k-th), small and (on the
    x axis) upright where thinned; every one where they fit."""
    every = max(1, -(-len(labels) // CONFUSION_NUMBERS))
    ticks = range(0, len(labels), every)
    extra = {"rotation": 90} if rotate and every > 1 else {}
    set_ticks(ticks, [labels[t] for t in ticks], fontsize=None if every == 1 else 6, **extra)


def draw_roc_pr(fig: Figure, curves: list[dict]) -> None:
    roc, pr = fig.subplots(1, 2)
    for curve, color in zip(curves, PALETTE * len(curves)):
        name = f"class {curve['class']}"
        roc.plot(curve["roc"]["fpr"], curve["roc"]["tpr"], color=color, linewidth=1.8, label=f"{name}: AUC {curve['roc']['auc']:.3f}")
        pr.plot(curve["pr"]["recall"], curve["pr"]["precision"], color=color, linewidth=1.8, drawstyle="steps-post",
                label=f"{name}: AP {curve['pr']['average_precision']:.3f}")
        op = curve.get("operating_point") or {}
        mark = f"threshold {op['threshold']:.3f}" if op.get("threshold") is not None else "decisions"
        if op.get("fpr") is not None and op.get("tpr") is not None:
            roc.plot(op["fpr"], op["tpr"], "o", color=AMBER, markersize=8, markeredgecolor="white",
                     label=mark if curve is curves[0] else None, zorder=5)
        if op.get("precision") is not None and op.get("tpr") is not None:
            pr.plot(op["tpr"], op["precision"], "o", color=AMBER, markersize=8, markeredgecolor="white",
                    label=mark if curve is curves[0] else None, zorder=5)
    roc.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1)
    roc.set(xlabel="false positive rate", ylabel="true positive rate (recall)", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    pr.set(xlabel="recall", ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    roc.set_title("ROC", loc="left")
    pr.set_title("precision-recall", loc="left")
    roc.legend(loc="lower right", fontsize=8.5)
    pr.legend(loc="lower left", fontsize=8.5)


def draw_per_class(fig: Figure, per_class: dict) -> None:
    ax = fig.subplots()
    labels = list(per_class)
    x = np.arange(len(labels))
    width = 0.26
    for k, (key, color) in enumerate(zip(("precision", "recall", "f1"), (BLUE, "#059669", AMBER))):
        ax.bar(x + (k - 1) * width, [per_class[c][key] for c in labels], width, color=color, label=key)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("class")
    ax.legend(ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8.5)
    ax.grid(axis="x", visible=False)


def draw_calibration(fig: Figure, curves: list[dict]) -> None:
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle=":", linewidth=1, label="perfectly calibrated")
    total = max(sum(c["calibration"]["count"]) for c in curves)
    for curve, color in zip(curves, PALETTE * len(curves)):
        cal = curve["calibration"]
        ax.plot(cal["mean_predicted"], cal["fraction_positive"], "-", color=color, linewidth=1.5, label=f"class {curve['class']}")
        ax.scatter(cal["mean_predicted"], cal["fraction_positive"], s=[10 + 240 * math.sqrt(n / total) for n in cal["count"]],
                   color=color, alpha=0.7, edgecolors="white", zorder=3)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="mean predicted probability", ylabel="observed share of the class")
    ax.legend(loc="upper left", fontsize=8.5)


def draw_regression(fig: Figure, reg: dict, target: str) -> None:
    scatter, residual, hist = fig.subplots(1, 3)
    actual, predicted = np.asarray(reg["sample"]["actual"]), np.asarray(reg["sample"]["predicted"])
    alpha = 0.35 if len(actual) > 500 else 0.7
    dense = len(actual) > RASTER_POINTS
    scatter.scatter(actual, predicted, s=6, alpha=alpha, color=BLUE, linewidths=0, rasterized=dense)
    low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
    scatter.plot([low, high], [low, high], color=AMBER, linestyle="--", linewidth=1.2)
    scatter.set(xlabel=f"actual {target}", ylabel=f"predicted {target}")
    scatter.set_title("predicted against actual", loc="left")
    residual.scatter(predicted, actual - predicted, s=6, alpha=alpha, color=BLUE, linewidths=0, rasterized=dense)
    residual.axhline(0, color=AMBER, linestyle="--", linewidth=1.2)
    residual.set(xlabel=f"predicted {target}", ylabel="residual (actual − predicted)")
    residual.set_title("residuals against predicted", loc="left")
    res = reg["residuals"]
    edges = np.asarray(res["edges"])
    hist.bar(edges[:-1], res["counts"], width=np.diff(edges), align="edge", color=BLUE, edgecolor="white", linewidth=0.4)
    hist.axvline(0, color=AMBER, linestyle="--", linewidth=1.2)
    hist.set(xlabel=f"residual (mean {number_text(res['mean'])}, std {number_text(res['std'])})", ylabel="rows")
    hist.set_title("residual histogram", loc="left")
    if res["outside"]:
        hist.text(0.98, 0.97, f"{res['outside']:,} outliers\nbeyond the axis", transform=hist.transAxes, ha="right", va="top",
                  fontsize=8.5, color="#6b7280")


def draw_importance(fig: Figure, imp: dict) -> None:
    ax = fig.subplots()
    rows = imp["features"][:MAX_BARS][::-1]
    means = [r["mean"] or 0.0 for r in rows]
    ax.barh([r["feature"] for r in rows], means, xerr=[r["std"] or 0.0 for r in rows],
            color=[BLUE if m >= 0 else GREY for m in means], error_kw={"ecolor": "#374151", "elinewidth": 1, "capsize": 2})
    ax.axvline(0, color="#6b7280", linewidth=0.8)
    ax.set_xlabel(f"drop in {imp['metric']} when the column is shuffled")
    ax.grid(axis="y", visible=False)


def draw_coefficients(fig: Figure, coef: dict) -> None:
    ax = fig.subplots()
    rows = coef["features"][:MAX_BARS]  # largest first
    if len(coef["outputs"]) == 1:
        values = [r["values"][0] for r in reversed(rows)]  # barh draws its first bar at the bottom
        ax.barh([r["feature"] for r in reversed(rows)], values, color=[BLUE if v >= 0 else RED for v in values])
        ax.axvline(0, color="#6b7280", linewidth=0.8)
        ax.set_xlabel(f"coefficient ({coef['outputs'][0]}) per standard deviation / per category")
        ax.grid(axis="y", visible=False)
        return
    values = np.array([r["values"] for r in rows], dtype="float64")
    limit = np.abs(values).max() or 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    _thinned_ticks(ax.set_xticks, [f"class {c}" for c in coef["outputs"]], rotate=True)
    ax.set_yticks(range(len(rows)), [r["feature"] for r in rows])
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="coefficient", shrink=0.8)
