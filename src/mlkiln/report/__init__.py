"""The evaluation report: one self-contained HTML page, and the same numbers as JSON.

People would rather look than read, so every ``train`` writes ``report.html``
and ``report.json`` into the bundle. Building it takes two steps, because the
curves need predictions and those exist only while labelled data is at hand:

1. :func:`diagnostics` (``report/diagnostics.py``) runs once on the test split inside
   :func:`mlkiln.workflow.train` (or on the evaluation data inside
   :meth:`mlkiln.Model.evaluate`) and returns plain numbers: curves,
   a sample of predictions, permutation importances, coefficients.
2. :func:`build` (``report/document.py``) joins those with the model card into the report document
   (``report.json``); :func:`render_html` (``report/html.py``, with ``page.html`` and
   ``report.css`` beside it, and ``report/plots.py``) draws the page from that document
   alone. ``mlkiln report BUNDLE`` therefore rebuilds the page from the
   bundle's own files, without any data.

Every metric comes from the card (:mod:`mlkiln.metrics` computed it), so the
page, the JSON and the terminal summary show the same numbers. Plots are drawn
with matplotlib on an SVG canvas (set explicitly on each figure, so the caller's
pyplot backend is left alone) and embedded as base64 SVG; the page loads no
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
    ``metric`` (selection metric), ``metric_why``, ``trees`` (gradient
    boosting: the trees of the final fit, chosen by cross-validation or by
    early stopping, else ``null``), ``latency_us``
    (median microseconds to score one row alone; ``null`` in older cards), ``members``
    (an ensemble's: ``[{"name", "family", "params", "weight", "share",
    "trees"}]``, heaviest first; ``[]`` for one model), ``bagged`` (the
    chosen model's extra fits on part of the rows, 0: none), ``codes`` (number
    columns also encoded by the target), ``texts`` (free-text columns read as
    words), and ``headline``:
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
    Per tuned family: ``param`` (the hyperparameter its registry entry plots), ``log_scale``,
    ``chosen`` (that family's best value), ``winner``, and ``points``: one per
    candidate, ``{"value", "others", "mean", "std", "folds", "n_samples"}`` in
    the selection metric's units (``n_samples``: the rows successive halving
    scored it on, ``null`` for a full search).
``metrics``
    ``train``, ``validation`` (``mean``/``std`` over the folds), ``test`` and,
    for an evaluation, ``evaluation``: exactly the card's / evaluate's dicts.
``evaluation``
    The card's: ``metrics`` (how the train and test metrics and the curves were
    computed: every test row, every training row or a seeded sample of them, in row blocks), ``rows`` (``train``,
    ``test``, and the seeded samples ``importance`` and ``scatter``) and
    ``seed``; ``null`` for bundles made before it.
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


from .diagnostics import CURVE_POINTS, IMPORTANCE_REPEATS, IMPORTANCE_ROWS, SCATTER_POINTS, diagnostics, evaluation_info
from .document import REPORT_HTML, REPORT_JSON, SCHEMA_VERSION, build, bundle_files, tuning_curves, write_evaluation
from .html import render_html

__all__ = ["CURVE_POINTS", "IMPORTANCE_REPEATS", "IMPORTANCE_ROWS", "SCATTER_POINTS", "REPORT_HTML", "REPORT_JSON", "SCHEMA_VERSION", "build", "bundle_files", "diagnostics", "evaluation_info", "render_html",
           "tuning_curves", "write_evaluation"]
