"""The evaluation report: its numbers equal the card's, it is one self-contained page, and it renders in a real browser."""

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from common import cli
from PIL import Image

import mlkiln
from mlkiln import report
from mlkiln.report import plots
from mlkiln.pipeline import REGISTRY

SECTIONS = ("data", "leaderboard", "tuning", "metrics", "diagnostics", "drivers", "bundle")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium package is not installed (apt-get install chromium; .ci/run does it)"
)
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync"]
# records, once the page has loaded, whether each image decoded and what the page fetched
PROBE = """<script>addEventListener("load", () => {
  const images = [...document.images];
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    resources: performance.getEntriesByType("resource").map(r => r.name),
  }));
});</script>"""


def saved(bundle) -> dict:
    return json.loads((Path(bundle) / report.REPORT_JSON).read_text())


def test_training_report_has_the_cards_numbers(diamonds_run, diamonds_bundle):
    doc, card = saved(diamonds_bundle), diamonds_run.card.to_dict()
    assert doc["schema_version"] == report.SCHEMA_VERSION == 1 and doc["kind"] == "training"
    assert doc["metrics"] == card["metrics"] and doc["leaderboard"] == card["leaderboard"]
    assert doc["summary"]["headline"] == {"split": "test", "metric": "r2", "value": card["metrics"]["test"]["r2"]}
    assert doc["data"]["features"] == card["schema"]["columns"]
    n_test = card["split"]["n_test"]
    reg = doc["diagnostics"]["regression"]
    assert len(reg["sample"]["actual"]) == len(reg["sample"]["predicted"]) == min(n_test, report.SCATTER_POINTS)
    assert sum(reg["residuals"]["counts"]) + reg["residuals"]["outside"] == n_test
    assert sum(doc["data"]["target"]["distribution"]["counts"]) == card["data"]["rows_used"]
    importance = doc["diagnostics"]["permutation_importance"]
    assert {f["feature"] for f in importance["features"]} == {c["name"] for c in card["schema"]["columns"]}
    assert importance["features"][0]["mean"] > 0.05  # something (carat, size) drives the price
    listed = {f["file"]: f for f in doc["bundle"]["files"]}
    manifest = dict(line.split("  ")[::-1] for line in (Path(diamonds_bundle) / "MANIFEST.sha256").read_text().splitlines())
    assert set(listed) == set(manifest) - {report.REPORT_HTML, report.REPORT_JSON}
    assert all(listed[name]["sha256"] == manifest[name] for name in listed)


def test_permutation_importance_equals_one_shuffle_at_a_time(failure_run, failure_csv):
    """The shuffled copies are scored together by the compiled model: the drops are those of one copy at a time."""
    from mlkiln.metrics import Scorer
    from mlkiln.report.diagnostics import IMPORTANCE_REPEATS, _importance

    model, card = failure_run.model, failure_run.card
    rows = model.prepare(pd.read_csv(failure_csv).sample(300, random_state=1))
    y = pd.read_csv(failure_csv).sample(300, random_state=1)[card.target]
    found = _importance(model.pipeline, rows, y, card, np.random.default_rng(0), model.predictor)
    scorer = Scorer(card.task, card.metric.name, list(card.classes))
    shuffle = np.random.default_rng(card.split.seed)
    baseline = scorer(model.pipeline, rows, y)
    for column in rows.columns:
        drops = []
        for _ in range(IMPORTANCE_REPEATS):
            copy = rows.copy()
            copy[column] = rows[column].to_numpy()[shuffle.permutation(len(rows))]
            drops.append(baseline - scorer(model.pipeline, copy, y))
        row = next(f for f in found["features"] if f["feature"] == column)
        assert row["mean"] == pytest.approx(np.mean(drops), abs=1e-9) and row["std"] == pytest.approx(np.std(drops), abs=1e-9)
    assert [f["mean"] for f in found["features"]] == sorted((f["mean"] for f in found["features"]), reverse=True)


@pytest.mark.parametrize("target, models", [("price", ["ridge"]), ("cut", ["logistic_l2"]), ("high", ["logistic_l1"])])
def test_a_linear_model_s_importance_from_its_column_parts_equals_scoring_each_copy(diamonds, target, models):
    """A linear model's shuffled copies are its raw outputs less one column's part plus that part shuffled: the
    same drops as the pipeline scoring every copy (regression, several classes, two with a tuned threshold)."""
    from mlkiln.report.diagnostics import _importance

    frame = diamonds.head(1200).assign(high=lambda d: np.where(d.price > 2500, "yes", "no"))
    frame = frame.drop(columns=["price"]) if target == "high" else frame
    run = mlkiln.train(frame, target=target, models=models, trials=2)
    model, card = run.model, run.card
    rows = model.prepare(frame.tail(300))
    y = frame.tail(300)[target]
    assert model.predictor.terms(rows) is not None
    parts = _importance(model.pipeline, rows, y, card, np.random.default_rng(0), model.predictor)
    copies = _importance(model.pipeline, rows, y, card, np.random.default_rng(0), None)
    assert [f["feature"] for f in parts["features"]] == [f["feature"] for f in copies["features"]]
    for a, b in zip(parts["features"], copies["features"]):
        assert a["mean"] == pytest.approx(b["mean"], abs=1e-9) and a["std"] == pytest.approx(b["std"], abs=1e-9)
    assert parts["features"][0]["mean"] > 0.01


def test_a_wide_table_s_importance_scores_a_smaller_sample(tmp_path):
    """200k rows scored at most: 50 columns shuffled 5 times each leave 796 of the 1,000 test rows."""
    from mlkiln.report.diagnostics import IMPORTANCE_REPEATS, IMPORTANCE_SCORED

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5000, 50)), columns=[f"c{i}" for i in range(50)])
    frame["y"] = 3 * frame["c4"] - frame["c9"] + rng.normal(scale=0.5, size=5000)
    run = mlkiln.train(frame, target="y", models=["ridge"], trials=1)
    expected = IMPORTANCE_SCORED // (1 + 50 * IMPORTANCE_REPEATS)
    importance = run.diagnostics["permutation_importance"]
    assert importance["rows"] == expected == run.card.evaluation.rows["importance"] < run.card.split.n_test
    assert [f["feature"] for f in importance["features"][:2]] == ["c4", "c9"]


def test_a_table_too_wide_to_shuffle_column_by_column_says_so_but_a_linear_model_s_parts_are(monkeypatch, tmp_path):
    """Past IMPORTANCE_MAX_COLUMNS every shuffled copy of every column is scored through the model (columns x
    columns values: 3,013 columns took more than 8 minutes); a linear model's additive parts are shuffled instead."""
    import sys

    monkeypatch.setattr(sys.modules["mlkiln.report.diagnostics"], "IMPORTANCE_MAX_COLUMNS", 5)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 8)), columns=[f"c{i}" for i in range(8)])
    frame["y"] = 3 * frame["c4"] - frame["c1"] + rng.normal(scale=0.5, size=600)
    trees = mlkiln.train(frame, target="y", models=["hgb"], trials=1, bagging=False)
    importance = trees.diagnostics["permutation_importance"]
    assert importance["features"] == [] and importance["skipped"].startswith("8 input columns: shuffling each of more")
    trees.save(tmp_path / "trees")
    assert "Not computed: 8 input columns" in (tmp_path / "trees" / "report.html").read_text()
    linear = mlkiln.train(frame, target="y", models=["ridge"], trials=1).diagnostics["permutation_importance"]
    assert "skipped" not in linear and [f["feature"] for f in linear["features"][:2]] == ["c4", "c1"]


def test_a_large_model_s_importance_scores_fewer_rows_and_repeats(failure_run):
    """Rows x trees are bounded: digits' 61 columns through 5,100 trees get 200 rows, shuffled twice each."""
    from mlkiln.metrics import count_trees
    from mlkiln.report.diagnostics import IMPORTANCE_REPEATS, importance_plan

    assert importance_plan(360, 61, 0) == (360, IMPORTANCE_REPEATS)
    assert importance_plan(360, 61, 5_100) == (200, 2)
    assert importance_plan(5_000, 8, 100) == importance_plan(5_000, 8, 0)  # a usual model: as before
    trees = count_trees(failure_run.pipeline)
    importance = failure_run.diagnostics["permutation_importance"]
    rows, repeats = importance_plan(failure_run.card.split.n_test, len(failure_run.card.columns), trees)
    assert (importance["rows"], importance["repeats"]) == (rows, repeats)


def test_trees_are_counted_per_class_member_and_forest():
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlkiln.metrics import count_trees

    X, y = load_iris(return_X_y=True)
    boosted = HistGradientBoostingClassifier(max_iter=7, early_stopping=False).fit(X, y)
    forest = RandomForestClassifier(n_estimators=11, random_state=0).fit(X, y)
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert count_trees(boosted) == 7 * 3 and count_trees(forest) == 11 and count_trees(linear) == 0
    vote = VotingClassifier([("b", make_pipeline(StandardScaler(), boosted)), ("f", forest), ("l", linear)],
                            voting="soft").fit(X, y)
    assert count_trees(vote) == 21 + 11
    binary = y == 1
    cut = FixedThresholdClassifier(RandomForestClassifier(n_estimators=5, random_state=0), threshold=0.3).fit(X, binary)
    assert count_trees(make_pipeline(StandardScaler(), cut)) == 5


def test_tuning_curve_of_the_course_has_one_point_per_c(failure_run, failure_bundle):
    curve = saved(failure_bundle)["tuning"]["logistic_l1"]
    grid = REGISTRY["logistic_l1"].grid["C"]
    assert curve["param"] == "C" and curve["log_scale"]
    values = sorted(p["value"] for p in curve["points"])  # the path's values, up to its stop past the best
    assert len(values) >= 8 and values == sorted(grid)[:len(values)]
    chosen = next(r.__dict__ for r in failure_run.card.leaderboard if r.family == "logistic_l1")
    assert curve["chosen"] == chosen["params"]["C"]
    best = next(p for p in curve["points"] if p["value"] == curve["chosen"])
    assert best["mean"] == pytest.approx(chosen["cv_mean"])
    assert all(len(p["folds"]) == failure_run.card.split.folds for p in curve["points"])
    assert np.mean(best["folds"]) == pytest.approx(best["mean"])


def test_classification_curves_agree_with_the_metrics(failure_run, failure_bundle):
    doc, card = saved(failure_bundle), failure_run.card.to_dict()
    test = card["metrics"]["test"]
    [curve] = doc["diagnostics"]["classification"]["curves"]  # two classes: the positive one
    assert curve["class"] == "1"
    assert curve["roc"]["auc"] == pytest.approx(test["roc_auc"])
    assert curve["pr"]["average_precision"] == pytest.approx(test["average_precision"])
    point = curve["operating_point"]
    assert point["tpr"] == pytest.approx(test["recall"]) and point["precision"] == pytest.approx(test["precision"])
    assert point["threshold"] == card["model"]["threshold"] is not None
    assert sum(curve["calibration"]["count"]) == card["split"]["n_test"]
    balance = doc["data"]["target"]["distribution"]["counts"]
    assert balance == {c: card["metrics"]["train"]["per_class"][c]["support"] + test["per_class"][c]["support"]
                       for c in ("0", "1")}


def test_coefficients_of_a_linear_model_are_signed_on_scaled_features(diamonds_csv, tmp_path):
    run = mlkiln.train(diamonds_csv, target="price", models=["ridge"])
    coef = run.diagnostics["coefficients"]
    names = list(run.pipeline[:-1].get_feature_names_out())
    values = dict(zip(names, run.pipeline[-1].coef_))
    assert coef["outputs"] == ["price"] and {f["feature"] for f in coef["features"]} == set(names)
    assert all(f["values"] == [pytest.approx(values[f["feature"]])] for f in coef["features"])
    assert coef["features"][0]["values"][0] > 0  # the largest effect: a bigger stone costs more
    sizes = [abs(f["values"][0]) for f in coef["features"]]
    assert sizes == sorted(sizes, reverse=True)
    page = (run.save(tmp_path / "ridge") / report.REPORT_HTML).read_text()
    assert "Coefficients of ridge" in page


def test_several_classes_get_a_curve_and_coefficients_each(diamonds):
    run = mlkiln.train(diamonds.head(1500), target="cut", models=["logistic_l2"])
    classes = [str(c) for c in run.card.classes]
    diag = run.diagnostics
    assert [c["class"] for c in diag["classification"]["curves"]] == classes == diag["coefficients"]["outputs"]
    assert all(len(f["values"]) == len(classes) for f in diag["coefficients"]["features"])
    doc = report.build(run.card, diag)
    per_class = run.card.metrics["test"]["per_class"]
    for curve in doc["diagnostics"]["classification"]["curves"]:
        assert curve["operating_point"]["tpr"] == pytest.approx(per_class[curve["class"]]["recall"])
        assert curve["operating_point"]["threshold"] is None  # the most probable class wins, no cut-off
    page = report.render_html(doc)
    assert all(f'<section id="{s}">' in page for s in SECTIONS) and page.count("<img ") == 8


@pytest.mark.parametrize("bundle", ["diamonds_bundle", "failure_bundle"])
def test_page_is_one_self_contained_file(bundle, request):
    page = (Path(request.getfixturevalue(bundle)) / report.REPORT_HTML).read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "<script" not in page.lower() and "@import" not in page
    targets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert targets and all(t.startswith(("data:image/svg+xml;base64,", "#")) for t in targets)  # inline images, links
    rasters = []
    for target in targets:  # every figure is well-formed SVG, drawing no image from anywhere but itself
        if target.startswith("data:"):
            svg = ElementTree.fromstring(base64.b64decode(target.split(",", 1)[1]))
            assert svg.tag == "{http://www.w3.org/2000/svg}svg"
            linked = [v for e in svg.iter() for k, v in e.attrib.items() if k.endswith("href")]
            assert all(v.startswith(("#", "data:image/png;base64,")) for v in linked), linked
            rasters += [(e, v) for e in svg.iter() for k, v in e.attrib.items() if k.endswith("href") and v[0] != "#"]
    assert rasters or bundle == "failure_bundle"  # diamonds' predicted-against-actual cloud is rasterised
    for image, href in rasters:  # a rasterised point cloud is as sharp as plots.DPI says, not the screen's 72 dpi
        width = int.from_bytes(base64.b64decode(href.split(",", 1)[1])[16:20], "big")  # the PNG's IHDR width
        assert width == pytest.approx(float(image.get("width")) * plots.DPI / 72, abs=2)
    assert not re.search(r"url\(", page.replace("url(#", ""))  # SVG clip paths name their own elements
    assert "default-src 'none'" in page  # and the browser is told to fetch nothing
    assert page.count("<img ") >= 4  # data, tuning, diagnostics, importance
    text = _Text()
    text.feed(page)  # markup escaped into the text (a str added to markupsafe's Markup) would show as words
    assert not re.search(r"</?(p|h3|div|span|table|code)\b|class=", " ".join(text.parts)), text.parts


class _Text(HTMLParser):
    """The page's text, as the reader sees it (entities decoded)."""

    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def test_report_command_rebuilds_outside_the_bundle(diamonds_bundle, tmp_path):
    out = tmp_path / "again.html"
    result = cli("report", diamonds_bundle, "-o", out)
    assert result.returncode == 0, result.stderr
    rebuilt, original = out.read_text(), (Path(diamonds_bundle) / report.REPORT_HTML).read_text()
    assert rebuilt.count("<img ") == original.count("<img ")
    refused = cli("report", diamonds_bundle, "-o", Path(diamonds_bundle) / "copy.html")
    assert refused.returncode == 2 and "MANIFEST" in refused.stderr
    assert not (Path(diamonds_bundle) / "copy.html").exists()
    assert cli("inspect", diamonds_bundle).returncode == 0


def test_evaluate_writes_a_report_beside_the_data(diamonds_bundle, diamonds_csv, tmp_path):
    data = tmp_path / "holdout.csv"
    shutil.copy(diamonds_csv, data)
    result = cli("evaluate", diamonds_bundle, data, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "holdout-report.json").read_text())
    assert doc["kind"] == "evaluation" and doc["on"] == {"split": "evaluation", "source": "holdout.csv", "rows": 3000}
    assert doc["metrics"]["evaluation"] == json.loads(result.stdout)
    assert doc["summary"]["headline"]["value"] == json.loads(result.stdout)["r2"]
    assert doc["diagnostics"]["rows"] == 3000
    assert "Evaluation of" in (tmp_path / "holdout-report.html").read_text()


def test_evaluation_on_a_single_class_still_reports(failure_bundle, failure_csv, tmp_path):
    frame = pd.read_csv(failure_csv)
    only_ok = frame[frame["Machine failure"] == 0].head(300)
    result = mlkiln.load(failure_bundle).evaluate(only_ok, report=tmp_path / "ok.html")
    doc = json.loads((tmp_path / "ok.json").read_text())
    assert doc["diagnostics"]["classification"]["curves"] == []  # no positives: no ROC
    assert doc["metrics"]["evaluation"] == result and result["n"] == 300
    assert "Not available: these rows hold a single class" in (tmp_path / "ok.html").read_text()


@needs_chromium
@pytest.mark.parametrize("bundle", ["diamonds_bundle", "failure_bundle"])
def test_page_renders_in_headless_chromium(bundle, request, tmp_path):
    page = Path(request.getfixturevalue(bundle)) / report.REPORT_HTML
    shot = tmp_path / f"{Path(page.parent).name}.png"
    browse(page, tmp_path / "profile-1", f"--screenshot={shot}", "--window-size=1280,4000")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 4000)
    assert len(image.getcolors(maxcolors=1 << 20)) > 500  # text and plots, not a blank or error page

    # the probe copy drops the page's Content-Security-Policy, so anything the page
    # referenced would really be fetched, and show up in the network log
    probe = tmp_path / "probe.html"
    html = page.read_text()
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', PROBE, html, count=1))
    net_log = tmp_path / "net.json"
    dom = browse(probe, tmp_path / "profile-2", f"--log-net-log={net_log}", "--dump-dom")
    state = json.loads(re.search(r'data-probe="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert state["images"] == html.count("<img ") and state["broken"] == [], state
    assert state["resources"] == []
    assert page_requests(net_log) == []


def browse(page: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium on ``page`` with a throw-away profile; return its stdout."""
    result = subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_requests(net_log: Path) -> list[str]:
    """URLs the page asked the network for; Chromium's own background requests have no origin and are left out."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    return [p["url"] for p in starts if "url" in p and p.get("initiator") != "not an origin"
            and not p["url"].startswith(("data:", "file:"))]


def test_a_figure_too_small_for_its_labels_draws_without_a_raw_warning():
    """matplotlib says "constrained_layout not applied" with its own source line; the figure is drawn anyway."""
    import warnings

    def draw(fig):
        ax = fig.subplots()
        ax.set_ylabel("a label far longer than the figure is tall " * 3)
        ax.set_xlabel("and another one " * 5)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        img = plots.plot("tiny", (0.6, 0.4), draw)
    assert not [w for w in shown if "constrained_layout" in str(w.message)]
    assert img.startswith('<img alt="tiny" src="data:image/svg+xml;base64,')


@pytest.mark.parametrize("low, high, labels", [(1e-3, 1e3, {"0.001", "0.1", "1", "10", "1000"}),
                                               (0.05, 0.5, {"0.1", "0.2", "0.3"})])  # within a decade: minor ticks too
def test_log_axes_are_labelled_as_hyperparameters_are_written(low, high, labels):
    """Not 10 to a power: matplotlib's mathtext, parsed label by label, was a third of a tuning figure's time."""
    curve = {"param": "alpha", "log_scale": True, "chosen": low, "chosen_others": {}, "winner": True,
             "points": [{"value": v, "mean": 0.5, "std": 0.1, "folds": [0.4, 0.6], "others": {}} for v in (low, high)]}
    img = plots.plot("tuning", (5, 3.4), lambda fig: plots.draw_tuning(fig, "ridge", curve, "r2"))
    svg = ElementTree.fromstring(base64.b64decode(img.split("base64,", 1)[1].split('"', 1)[0]))
    texts = {"".join(e.itertext()).strip() for e in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert labels <= texts and not {"−1", "−2", "−3"} & texts, texts  # a power would be drawn as '10' and '−3'


def test_a_confusion_matrix_of_many_classes_stays_readable():
    """120 classes drew 28,800 overlapping numbers (a 15 MB page) and 1,329-character terminal lines."""
    from matplotlib.figure import Figure

    from mlkiln.report.plots import CONFUSION_NUMBERS, draw_confusion
    from mlkiln.summary import confusion_text

    for k in (3, CONFUSION_NUMBERS + 1, 120):
        labels = [f"c{i}" for i in range(k)]
        matrix = (np.eye(k, dtype=int) * 5 + 1).tolist()
        fig = Figure()
        draw_confusion(fig, matrix, labels, "y")
        texts = sum(len(ax.texts) for ax in fig.axes)
        shown = len(fig.axes[0].get_xticklabels())
        assert texts == (2 * k * k if k <= CONFUSION_NUMBERS else 0) and shown <= CONFUSION_NUMBERS + 1
        line = confusion_text({"labels": labels, "confusion_matrix": matrix})
        assert max(map(len, line.splitlines())) < 200 and (("pred c2" in line) == (k <= CONFUSION_NUMBERS))


def test_many_classes_draw_the_most_frequent_and_keep_every_class_in_the_table():
    """40 classes: curves and bars of the 10 most frequent, the class balance's 24 largest and the rest as one bar;
    the per-class table still lists all 40."""
    from mlkiln.report.html import MAX_PLOTTED_CLASSES

    rng = np.random.default_rng(0)
    labels = np.array([f"k{i:02d}" for i in range(40)])[np.minimum(rng.geometric(0.08, 1500) - 1, 39)]
    frame = pd.DataFrame(rng.normal(size=(1500, 4)), columns=list("abcd")).assign(y=labels)
    frame["a"] += np.array([int(v[1:]) for v in labels]) * 0.3
    run = mlkiln.train(frame, target="y", models=["logistic_l2"], trials=1)
    doc = report.build(run.card, run.diagnostics)
    page = report.render_html(doc)
    n = len(run.card.classes)
    assert n > 30 and f"Drawn for the {MAX_PLOTTED_CLASSES} most frequent of the {n} classes" in page
    texts = []
    for img in re.findall(r'base64,([^"]+)"', page):
        svg = ElementTree.fromstring(base64.b64decode(img))
        texts.append(["".join(e.itertext()).strip() for e in svg.iter("{http://www.w3.org/2000/svg}text")])
    support = pd.Series(run.card.metrics["test"]["per_class"]).map(lambda v: v["support"])
    top = set(support.sort_values(ascending=False, kind="stable").index[:MAX_PLOTTED_CLASSES])
    roc = next(t for t in texts if any(s.endswith("AUC") or "AUC " in s for s in t))
    assert {s.split(":")[0].removeprefix("class ") for s in roc if ": AUC" in s} == top
    balance = next(t for t in texts if any(s.endswith("other classes") for s in t))
    assert f"{n - 24} other classes" in balance
    assert all(f"<td>{c}</td>" in page for c in run.card.classes)


def test_residuals_that_nearly_all_equal_one_number_still_get_a_histogram():
    """A tiny table (hypothesis found it) left residuals -0.75 and -0.75 + 4e-16: NumPy refused 40 bins over that
    range, and training failed in its report. Every value is counted, in a unit-wide range around it."""
    from mlkiln.report.diagnostics import _histogram

    for values in ([-0.75, -0.75 + 4e-16], [3.0, 3.0], [1e12, 1e12 + 1e-3]):
        values = np.array(values)
        counts, edges = _histogram(values, *np.quantile(values, [0.005, 0.995]))
        assert counts.sum() == len(values) and edges[0] < values.min() and edges[-1] > values.max()
    counts, edges = _histogram(np.arange(10.0), 0.0, 9.0)  # a real range is kept
    assert counts.sum() == 10 and (edges[0], edges[-1]) == (0.0, 9.0)


def _legend_texts(curve: dict) -> set[str]:
    img = plots.plot("tuning", (5, 3.4), lambda fig: plots.draw_tuning(fig, "hgb", curve, "log_loss"))
    svg = ElementTree.fromstring(base64.b64decode(img.split("base64,", 1)[1].split('"', 1)[0]))
    return {"".join(e.itertext()).strip() for e in svg.iter("{http://www.w3.org/2000/svg}text")}


def test_tuning_lines_are_named_by_the_parameters_that_differ_and_long_names_make_points():
    """A portfolio's six settings of six other parameters named each line in full, and the legend pushed the
    panel aside (sweep 11)."""
    def point(leaves, **others):
        return {"value": leaves, "mean": 0.7, "std": 0.1, "folds": [0.6, 0.8], "others": others}

    short = {"param": "max_leaf_nodes", "log_scale": False, "chosen": 15, "chosen_others": {}, "winner": True,
             "points": [point(v, learning_rate=r, max_iter=100) for v in (7, 15) for r in (0.05, 0.1)]}
    texts = _legend_texts(short)
    assert {"learning_rate=0.05", "learning_rate=0.1"} <= texts and not any("max_iter" in t for t in texts)
    settings = [dict(learning_rate=r, min_samples_leaf=m, l2_regularization=l, max_features=f, max_iter=i)
                for r, m, l, f, i in [(0.1, 20, 1, 0.5, 46), (0.05, 50, 10, 1.0, 221), (0.1, 5, 0, 0.8, 10)]]
    long = {**short, "points": [point(v, **s) for v in (7, 15) for s in settings]}
    assert not any("learning_rate" in t for t in _legend_texts(long))  # points, no legend


def test_two_values_of_c_are_drawn_on_a_log_axis(failure_csv):
    """--trials 2 tried C 0.32 and 1 for one family (a linear axis) and 0.1 and 1 for another (a log one)."""
    from mlkiln.report.document import tuning_curves

    frame = pd.read_csv(failure_csv).head(2000)
    run = mlkiln.train(frame, target="Machine failure", models=["logistic_l1"], trials=2, drop=["UDI", "Product ID"])
    curve = tuning_curves(run.card)["logistic_l1"]
    values = sorted(p["value"] for p in curve["points"])
    assert len(values) == 2 and values[1] / values[0] < 10 and curve["log_scale"]
