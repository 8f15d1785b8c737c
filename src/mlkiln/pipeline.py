"""Build the model: the table of model families, and preprocessing + estimator as one scikit-learn Pipeline.

:data:`REGISTRY` is the one table of families (estimator, encoding, search
spaces, cost, the hyperparameter the report plots): every other module reads
it. This module imports only scikit-learn, SciPy and NumPy: the bundle's
``train.py`` embeds its source verbatim, so the reproduction script builds the
very same model without mlkiln installed.

About ``C`` in the logistic families: scikit-learn's ``C`` is the *inverse* of
the regularisation strength. The course writes the L1 objective with a weight
that multiplies the penalty term; that weight equals ``1 / C`` here. A small
``C`` means a strong penalty and more coefficients at exactly zero.
"""

import re
from functools import partial
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import loguniform, randint, uniform
from sklearn import __version__ as sklearn_version
from sklearn.base import clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier, KFold, StratifiedKFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, QuantileTransformer
from sklearn.preprocessing import StandardScaler, TargetEncoder

#: categories kept per column by the encoders; rarer ones share one "infrequent" slot
MAX_CATEGORIES = 100

#: free text (reviews, notes, names: :func:`mlkiln.schema.text_columns`): the most frequent words and pairs of
#: words kept per column, each a column of its TF-IDF weight in a row (:func:`words`): for trees, which need them
#: dense and take longer per column, and for linear models, which read them sparse. On 5,000 food reviews (test
#: rows) 10,000 for linear models against 3,000: ROC AUC 0.8635 against 0.8513, in 37.7 s against 33.8 s; 200 for
#: trees against 100: 3-fold log loss 0.778 against 0.825 on 20,761 tweets' devices (benchmarks/RESULTS.md, session 32)
TEXT_TERMS = 200
TEXT_TERMS_LINEAR = 10000
#: trees read the words of tables up to this many training rows: a dense column per word grows their fits' time
#: with the rows (ggplot2movies' 47,030 training rows and their titles: 175.4 s against 25.5 s without, test R2
#: 0.2875 against 0.2746); above it only linear models read them, sparse, at little cost
TEXT_TREE_ROWS = 20_000
#: a word (or pair) in fewer rows than this is not kept: a typo or a name learns nothing
TEXT_MIN_ROWS = 3

#: a forest's trees each see at most this many (bootstrap) rows: bounded time and memory on large tables
FOREST_MAX_ROWS = 100_000


@dataclass(frozen=True)
class Family:
    """One model family: everything mlkiln knows about it, in one entry of :data:`REGISTRY`.

    ``make(task, seed, n_classes)`` returns the unfitted estimator with
    mlkiln's defaults. ``encoding`` is ``"onehot"`` (imputed, scaled, one-hot:
    linear models), ``"ordinal"`` (raw numbers, category codes, missing
    values left to the trees) or ``"target"`` (raw numbers; each text column
    as the target's smoothed mean per category, cross-fitted on the training
    rows: scikit-learn's ``TargetEncoder``). ``grid`` is the grid search's space and
    ``distributions`` random search's (default: the grid). ``portfolio`` is
    an ordered list of estimator parameters known to be strong across many
    tables, best first: ``search="auto"`` (and ``"portfolio"``) tries them in
    that order, the first ``trials`` of them with ``--trials``. ``cost`` is
    ``"cheap"`` or ``"expensive"`` (``search="auto"`` halves the expensive
    ones without a portfolio on large tables). ``plotted`` is the
    hyperparameter the report draws the validation score against. ``bounded(n_rows)`` gives parameters that
    keep one fit bounded on a large table; they are recorded like tuned ones.
    ``grows_with_rows``: the fitted model stores about one leaf per row
    (fully grown trees), so ensembles leave it out on large tables.
    ``staged``: the model grows stages (boosted trees) and stops early on a
    validation set given to ``fit(X, y, X_val=, y_val=)``; cross-validation on
    all the training rows (not a sampled rung, not halving's rounds) then fits
    each fold with its own validation part as that set and chooses one number
    of stages (``max_iter``) for all folds, from their mean validation loss
    (:func:`mlkiln.tuning.cross_validate_candidates`).
    ``per_class``: a fit takes about as many times longer as there are
    classes (multiclass gradient boosting grows one tree per class at each
    stage; saga updates a row of coefficients per class at each step); the
    search's cost estimate before its first fit says so.
    ``applies(X, y, kinds)``: None where the family is worth searching on the
    training rows ``X``, ``y``, else why not (its leaderboard row says it);
    ``--models`` naming it searches it anyway. ``target_units``: parameters
    in the target's units, whose grid and range are in multiples of the
    training target's standard deviation (:meth:`space`'s ``unit``).
    """

    name: str
    tasks: tuple[str, ...]
    make: Callable
    encoding: str = "ordinal"
    grid: dict = field(default_factory=dict)
    distributions: dict | None = None
    portfolio: tuple[dict, ...] = ()
    cost: str = "cheap"
    plotted: str | None = None
    bounded: Callable | None = None
    grows_with_rows: bool = False
    staged: bool = False
    per_class: bool = False
    applies: Callable | None = None
    target_units: tuple[str, ...] = ()

    def space(self, random: bool = False, unit: float = 1.0) -> dict:
        """The grid, or with ``random`` what random search draws from; ``target_units`` times ``unit``."""
        space = dict(self.distributions if random and self.distributions is not None else self.grid)
        for name in set(self.target_units) & set(space):
            values = space[name]
            space[name] = ([v * unit for v in values] if isinstance(values, list)
                           else values.dist(*(a * unit for a in values.args)))  # a frozen loguniform, refrozen
        return space

    def scale_params(self, n_rows: int) -> dict:
        return self.bounded(n_rows) if self.bounded is not None else {}

    def why_not(self, X, y, kinds: dict) -> str | None:
        """Why the family is not searched on ``X``, ``y`` by default, or None."""
        return self.applies(X, y, kinds) if self.applies is not None else None

    def refit_params(self, params: dict, folds: int, n_rows: int = 0) -> dict:
        """``params`` for the final fit on ``n_rows`` training rows.

        A ``staged`` family's number of stages chosen on ``folds`` folds
        (``max_iter`` with early stopping off) was best for a fold's share of
        the rows, (k - 1) / k; the final fit grows it by k / (k - 1) as the
        rows grow (:data:`REFIT_STAGES`). One that still stops early on its
        own rows (a sampled search's) may grow up to :func:`refit_most_stages`.
        """
        if not self.staged:
            return params
        if params.get("early_stopping", True) is not False and "max_iter" not in params and n_rows:
            return {**params, "max_iter": refit_most_stages(n_rows)}
        if not (REFIT_STAGES and folds > 1 and params.get("early_stopping") is False and "max_iter" in params):
            return params
        return {**params, "max_iter": max(1, round(params["max_iter"] * folds / (folds - 1)))}


#: a sampled search's final fit stops early on 10 % of all the training rows, and more rows want more trees: on
#: nycflights13's 261,876 training rows gradient boosting reached the default's 1,000 trees still improving; allowed
#: 4,000 it stopped itself at 3,110 and test R2 rose 0.9030 -> 0.9096 (FLAML's 0.9076 at equal time), the fit 10.7 s
#: -> 26.9 s (benchmarks/RESULTS.md, session 28). Bounded by rows x trees (a tree's time grows with the rows): as
#: before from a million rows on
REFIT_MOST_TREES = 4000
REFIT_TREE_ROWS = 1_000_000_000


def refit_most_stages(n_rows: int) -> int:
    """The most trees a final fit on ``n_rows`` rows that stops early on its own rows may grow."""
    return int(min(REFIT_MOST_TREES, max(HGB_DEFAULTS["max_iter"], REFIT_TREE_ROWS // max(n_rows, 1))))


#: grow the stages counted on the folds with the rows for the final fit (:meth:`Family.refit_params`). Refitting
#: gradient boosting's chosen candidate on all the training rows of 20 benchmark table splits with its fold count
#: times 1, 1.25, 1.5 and 2 (benchmarks/bench_refit_trees.py), 1.5 scored a better test R2 / log loss than 1 on 18
#: of them (forbes2000 R2 0.739 -> 0.759, flchain log loss 0.4212 -> 0.4178, movies R2 0.2714 -> 0.2733) and
#: worse on 2 (seattle-weather, a bundesliga split); benchmarks/RESULTS.md, session 18. Not where a decision
#: threshold is tuned (Selection.final_params)
REFIT_STAGES = True

#: every model family by name, in the order they are tried and listed; :func:`register` adds one
REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family; training, tuning, the report and the bundle read it from here."""
    REGISTRY[family.name] = family
    return family


def family_names(task: str) -> tuple[str, ...]:
    """The registered families of ``task``, in the order they are tried."""
    return tuple(name for name, family in REGISTRY.items() if task in family.tasks)


def _one(estimators: dict, **defaults) -> Callable:
    """A ``make`` for a family whose estimator per task takes fixed defaults (plus ``random_state``)."""
    def make(task, seed, n_classes=2):
        estimator = estimators[task](**defaults)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=seed)
        return estimator
    return make


#: saga's stopping tolerance (scikit-learn's default is 1e-4). Weakly penalised fits (large C) crawl to 1e-4:
#: on Ecdat's Car (6 classes, 105 columns, 2,500 rows) C >= 3 ran all 2,000 epochs, 13-14 s each, and the
#: search took 124 s; at 1e-3 they stop after about 300 epochs (1.5-2.3 s) with held-out log loss equal to
#: the fourth decimal (C = 0.1 to 10)
SAGA_TOL = 1e-3


def _l1_logistic(task, seed, n_classes=2):
    # liblinear is the fast exact L1 solver for two classes; saga handles more
    if n_classes == 2:
        return LogisticRegression(l1_ratio=1.0, solver="liblinear", max_iter=2000, random_state=seed)
    return LogisticRegression(l1_ratio=1.0, solver="saga", tol=SAGA_TOL, max_iter=2000, random_state=seed)


def _forest_rows(n_rows: int) -> dict:
    """A fully grown forest has about one leaf per row: on millions of rows each tree draws a bounded sample."""
    return {"bootstrap": True, "max_samples": FOREST_MAX_ROWS / n_rows} if n_rows > FOREST_MAX_ROWS else {}


_C_GRID = [float(c) for c in np.logspace(-3, 2, 11)]
_FOREST_GRID = {"min_samples_leaf": [1, 5]}
_FOREST_DIST = {"min_samples_leaf": randint(1, 11)}

#: gradient boosting grows up to ``max_iter`` trees and stops when the validation loss has not improved for
#: ``n_iter_no_change`` trees. In cross-validation the validation set is each fold's own validation part, and one
#: number of trees for all folds is chosen from their mean loss curve (``Family.staged``) over the trees every
#: fold grew; the final fit grows that many. So the fold that stops first bounds the count: with 20 trees of
#: patience one fold's noise stopped the rest, and 50 gave the default ``train`` better test scores on 7 of 14
#: table splits (forbes2000 R2 0.7181 -> 0.7306, verbagg seed 1 log loss 0.5096 -> 0.5051, movies 0.2740 ->
#: 0.2746), the same on 6, txhousing 0.9603 -> 0.9600, for 0-15 % more time (benchmarks/RESULTS.md, session 25).
#: Where the search ran on a sample of the rows (above SAMPLE_ROWS, rungs under --budget, halving's rounds), the
#: fits stop on 10 % of their own rows instead (``validation_fraction``): more rows want more trees.
HGB_DEFAULTS = {"max_iter": 1000, "early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 50,
                "l2_regularization": 1.0}
#: the log loss of separable classes shrinks forever by amounts scikit-learn's default tolerance (1e-7) still
#: counts as progress, so such tables grew all 1000 trees; trees that gain under 1e-4 of log loss (bounded
#: by log K, unlike a regression loss in the target's units: HGB_REGRESSOR_TOL) are not worth growing
HGB_CLASSIFIER_TOL = 1e-4
#: a regression loss is in the target's units squared: scikit-learn's absolute 1e-7 stopped a target in units of
#: 1e-4 after 30 trees where the same target in units of 1 grew 98 (test R2 0.958 against 0.964). Any gain
#: counts, whatever the units; the folds' mean curve chooses the count (``Family.staged``)
HGB_REGRESSOR_TOL = 0.0


def _hgb(learning_rate: float, leaves: int, min_leaf: int, l2: float, features: float,
         trees: int | None = None) -> dict:
    """One configuration of gradient boosting: early stopping as HGB_DEFAULTS, or at most ``trees`` trees, all of
    them where the search does not choose the count on the folds (a sampled search, ``--search halving``)."""
    fixed = {} if trees is None else {"early_stopping": False, "max_iter": trees}
    return {**fixed, "learning_rate": learning_rate, "max_leaf_nodes": leaves, "min_samples_leaf": min_leaf,
            "l2_regularization": l2, "max_features": features}


#: gradient boosting's portfolio, best first: of 27 configurations cross-validated on 17 public tables (178 to
#: 20,000 rows; benchmarks/bench_portfolio.py, benchmarks/RESULTS.md), each adds most to the best normalised rank
#: so far per second of fitting, within the former grid's time. Three grow small, regularised trees to a fixed
#: count (150, 150, 100) where early stopping would use 10 % of a fit's rows, which on small tables stops on noise
#: (CV log loss 0.0516 against the former grid's 0.0585 on machine-failure). Where the search chooses the count on
#: the folds' own validation parts (about a third of the rows; ``Family.staged``), all six stop early, those three
#: at most at their count: on 13 tables the best of the six then scored 0.1-3.1 % lower CV loss on 10, 0.4-2.2 %
#: higher on the three smallest (178-569 rows; benchmarks/RESULTS.md, session 15).
HGB_PORTFOLIO = (
    _hgb(0.1, 15, 20, 1.0, 0.5),
    _hgb(0.1, 15, 50, 10.0, 0.5, trees=150),
    _hgb(0.1, 31, 5, 0.0, 1.0),
    _hgb(0.1, 31, 50, 10.0, 0.5, trees=100),
    _hgb(0.1, 7, 20, 1.0, 1.0, trees=150),
    _hgb(0.1, 31, 20, 1.0, 1.0),
    # last, added by hand after that derivation: small trees under a strong L2 penalty (each leaf's value shrunk
    # by its rows / (rows + 30)). FLAML's best on slid and psid was this shape (5-8 leaves, L2 6-27). On 21
    # tables' training rows (staged CV, then refitted and scored on the test rows; /work/exp/s29/nb3.py,
    # benchmarks/RESULTS.md session 29) CV chose it over the six above on 8, and all 8 scored better on test: R2
    # +0.0003 to +0.0147 on 6 regressions, log loss -0.013 and -0.003 on 2 classifications; the other 13 were
    # unchanged
    _hgb(0.1, 7, 20, 30.0, 0.8),
)

register(Family("linear", ("regression",),
                # the pipeline hands it a fresh matrix: centring it in place saves a copy of the design matrix
                _one({"regression": LinearRegression}, copy_X=False), encoding="onehot"))
register(Family("ridge", ("regression",), _one({"regression": Ridge}), encoding="onehot",
                grid={"alpha": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]},
                distributions={"alpha": loguniform(1e-3, 1e3)}, plotted="alpha"))
#: lasso's penalty is in the target's units (on standardised columns every coefficient is zero from alpha = the
#: largest |correlation| times the target's standard deviation): its grid is in multiples of that deviation. A
#: fixed grid of 0.01 to 100 zeroed every coefficient of a target in units of 1e-9 (CV R2 -0.015, least squares
#: 0.749) and reached down to its own end on one in thousandths (sweep 7)
register(Family("lasso", ("regression",), _one({"regression": Lasso}, max_iter=5000), encoding="onehot",
                grid={"alpha": [1e-4, 1e-3, 1e-2, 0.1, 1.0]},
                distributions={"alpha": loguniform(1e-4, 1.0)}, plotted="alpha", target_units=("alpha",)))
#: a target this skewed (the absolute sample skewness) also gets ``ridge_normal``
SKEWED_TARGET = 1.0


def _skewed(X, y, kinds: dict) -> str | None:
    if abs(y.skew()) > SKEWED_TARGET:
        return None
    return f"the target's skewness is within ±{SKEWED_TARGET:g}"


def _on_normal_scores(task, seed, n_classes=2):
    """Ridge fitted on the target's normal scores, predicting their inverse: a price or a count spread over
    orders of magnitude is often linear in its logarithm, and for a log-normal target the normal scores are its
    standardised logarithm. Unlike exp of a model of log(target), the inverse is bounded by the training
    target's range: on diamonds, exp of ridge's log model predicted up to 3e14 for a price of at most 18,823
    (an outlying row's dimensions), and its CV R2 was -1e17; on the normal scores 0.9575 (least squares on
    the raw target 0.9141; benchmarks/RESULTS.md, session 17)."""
    scores = QuantileTransformer(output_distribution="normal", random_state=seed)
    return TransformedTargetRegressor(regressor=Ridge(), transformer=scores, check_inverse=False)


#: linear regression on a skewed target's normal scores (prices, sizes, counts): a family of its own, chosen (or
#: weighed into the ensemble) by cross-validation on the target's own scale. The course's ``linear`` stays least
#: squares on the raw target; least squares on the scores is ridge's smallest alpha
register(Family("ridge_normal", ("regression",), _on_normal_scores, encoding="onehot",
                grid={"regressor__alpha": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]},
                distributions={"regressor__alpha": loguniform(1e-3, 1e3)}, plotted="regressor__alpha",
                applies=_skewed))
# per class: on 100 classes of 4,000 rows its first two candidates took 16 s under a --budget 30 that logistic_l2's
# six took 1.6 s of
register(Family("logistic_l1", ("classification",), _l1_logistic, encoding="onehot",
                grid={"C": _C_GRID}, distributions={"C": loguniform(1e-3, 1e2)}, plotted="C", per_class=True))
register(Family("logistic_l2", ("classification",),
                lambda task, seed, n_classes=2: LogisticRegression(l1_ratio=0.0, max_iter=2000), encoding="onehot",
                grid={"C": _C_GRID[::2]}, distributions={"C": loguniform(1e-3, 1e2)}, plotted="C"))
register(Family("hgb", ("regression", "classification"),
                _one({"regression": partial(HistGradientBoostingRegressor, tol=HGB_REGRESSOR_TOL),
                      "classification": partial(HistGradientBoostingClassifier, tol=HGB_CLASSIFIER_TOL)},
                     **HGB_DEFAULTS),
                grid={"learning_rate": [0.1], "max_leaf_nodes": [15, 31, 63], "min_samples_leaf": [20],
                      "l2_regularization": [1.0], "max_features": [0.5, 1.0]},
                distributions={"learning_rate": loguniform(0.02, 0.3), "max_leaf_nodes": randint(8, 128),
                               "min_samples_leaf": randint(5, 100), "l2_regularization": loguniform(1e-3, 10.0),
                               "max_features": uniform(0.3, 0.7)},
                portfolio=HGB_PORTFOLIO, cost="expensive", plotted="max_leaf_nodes", staged=True, per_class=True))
#: a text column of at least this many values is target-encoded for ``hgb_target``; fewer, and its categories
#: are split on well enough natively (the family is then not searched)
TARGET_ENCODED_VALUES = 20
#: a column of whole numbers with at least CODE_VALUES values, each in CODE_ROWS_PER_VALUE rows or more on average,
#: may be ids or codes stored as numbers (a student, a lecturer, a respondent, a state): ``hgb_target`` then also
#: gives the trees its target mean per value, beside the number itself, where that mean (cross-fitted on
#: CODE_FOLDS folds of at most CODE_ROWS training rows, shrunk towards the overall mean by CODE_SHRINK rows)
#: explains the target more than CODE_GAIN times as well as the mean per CODE_BINS bins of equal rows of the number
#: does. Splits on an id order its values by chance; an age, a count or a size is smooth in its value and stays a
#: number. On InstEval's lecturer and student ids (1,128 and 2,972 values, 73k rows, 5 classes) test ROC AUC 0.6009
#: without, 0.6438 with. Of the 17 columns of 13 benchmark tables with enough whole numbers, the target's test kept
#: the 5 ids and state codes of 3 tables and left the ages, years, hours, sizes and test scores, where encoding
#: them cost up to 42 % more time for the same scores (benchmarks/RESULTS.md, session 26). Five rows per value, not
#: ten, take a panel's person id (Males: 545 men x 8 years, 6.4 rows each in the training split; test R2 0.4424 ->
#: 0.5171) and a household's (Catsup: log loss 0.7176 -> 0.6502), and no other column of 38 tables (session 27)
CODE_VALUES = 50
CODE_ROWS_PER_VALUE = 5
CODE_ROWS = 200_000
#: ... and at most this many values in all the number columns it reads: a wide table, fewer rows (500 columns
#: of whole numbers with 60 values each, all tested, took 4 s on 20,000 rows)
CODE_CELLS = 2_000_000
CODE_FOLDS = 5
CODE_SHRINK = 20.0
CODE_BINS = 16
CODE_GAIN = 1.5
#: classification's classes the rule's target keeps (the most frequent; the others count as none of them)
CODE_CLASSES = 20


def code_columns(X, y, kinds: dict) -> tuple[str, ...]:
    """The number columns of ``X``, ``y`` (the training rows, in the split's shuffled order) that act like ids or
    codes: whole numbers of many repeated values whose target mean per value explains the target well beyond a
    smooth function of the number (:data:`CODE_GAIN`). ``hgb_target`` encodes them by the target too."""
    numbers = [name for name, kind in kinds.items() if kind == "numeric"]
    rows = max(min(CODE_ROWS, CODE_CELLS // max(len(numbers), 1)), CODE_VALUES * CODE_ROWS_PER_VALUE)
    target = _rule_target(np.asarray(y)[:rows])
    folds = np.arange(len(target)) % CODE_FOLDS
    found = []
    for name in numbers:
        values = np.asarray(X[name], dtype=np.float64)[:rows]
        has = ~np.isnan(values)
        present = values[has]
        if len(present) < CODE_VALUES * CODE_ROWS_PER_VALUE or not np.array_equal(present, np.round(present)):
            continue
        distinct, keys = np.unique(np.nan_to_num(values, nan=np.inf), return_inverse=True)  # missing: one value
        if not CODE_VALUES <= len(distinct) <= len(present) / CODE_ROWS_PER_VALUE:
            continue
        # the bins are of the values present, the missing rows a bin of their own, as they are one key: binned
        # with the rest, movies' budget (91 % missing) had 1.5 bins of values and passed as a code
        bins = np.full(len(values), CODE_BINS)
        bins[has] = np.argsort(np.argsort(present, kind="stable"), kind="stable") * CODE_BINS // len(present)
        per_value, smooth = _explained(keys, target, folds), _explained(bins, target, folds)
        if per_value > CODE_GAIN * max(smooth, 0.0):
            found.append(name)
    return tuple(found)


#: a date's parts that trees split on besides its seconds since 1970, which hold the trend but not the cycles: the
#: hour of the day, the day of the week (Monday 0; its fraction the time of day) and the day of the year, each as
#: ``(period, where it starts after 1970-01-01 00:00 UTC, its unit)`` in seconds. The device of 20,761 tweets from
#: their text and time: test ROC AUC 0.9576 -> 0.9840, log loss 0.4143 -> 0.2402 (benchmarks/RESULTS.md, session 33)
DATE_PARTS = {"hour": (86_400, 0, 3_600), "weekday": (604_800, 345_600, 86_400), "yearday": (31_556_952, 0, 86_400)}
#: the rows of the training split :func:`date_parts` looks at
DATE_ROWS = 100_000
#: a date column's days of the month must take this many values for its weekday to mean anything (not a month's
#: or a year's first day)
DATE_WEEKDAY_DAYS = 7
#: a part is read where the cross-fitted, shrunk target mean per bin of it (an hour, a day of the week, a twelfth
#: of the year) explains at least this share of the target's variance (summed over classes): a part that explains
#: nothing is noise a small table's trees fit (see :func:`date_parts`). Measured on the training rows: tweets'
#: devices 0.219 (hour), 0.082 (weekday), 0.005 (day of the year); nycflights13's delays 0.033 and 0.005;
#: seattle-weather 0.065 (day of the year) and -0.011 (weekday); bundesliga -0.001 to -0.0003; the same parts
#: against a shuffled target -0.011 to -0.0001
DATE_GAIN = 0.002
#: the width of a part's bins for that test, in its unit
DATE_BIN = {"hour": 1.0, "weekday": 1.0, "yearday": 365.2425 / 12}


def date_parts(X, y, kinds: dict) -> dict[str, tuple[str, ...]]:
    """The parts (:data:`DATE_PARTS`) of each date column of ``X`` (seconds since 1970; ``y`` the target of the
    training rows, in the split's shuffled order) that vary in it and explain the target (:data:`DATE_GAIN`).

    They vary: the hour where times of day differ on several days, the weekday where the days of the month take
    at least :data:`DATE_WEEKDAY_DAYS` values (not monthly or yearly dates), the day of the year where the dates
    span more than a year on different days of it. Weather by the day (seattle-weather) has no weekday and football
    results (bundesliga) hardly any, and trees that read them anyway scored worse (test log loss 0.6105 against
    0.6028, 0.9886 against 0.9872). Columns with no part left are left out.
    """
    found = {}
    target = _rule_target(np.asarray(y)[:DATE_ROWS])
    folds = np.arange(len(target)) % CODE_FOLDS
    for name in (name for name, kind in kinds.items() if kind == "datetime"):
        seconds = np.asarray(X[name], dtype=np.float64)[:DATE_ROWS]
        parts = tuple(part for part in _varying_parts(seconds[np.isfinite(seconds)])
                      if _explained(_part_bins(part, seconds), target, folds) >= DATE_GAIN)
        if parts:
            found[name] = parts
    return found


def _varying_parts(seconds: np.ndarray) -> list[str]:
    """The parts of a date column's (present) values that vary (:func:`date_parts`)."""
    if len(seconds) < 2:
        return []
    stamps = np.floor(seconds).astype("datetime64[s]")
    days = stamps.astype("datetime64[D]")
    parts = []
    if len(np.unique(stamps - days)) > 1 and len(np.unique(days)) > 1:
        parts.append("hour")
    if len(np.unique(days - days.astype("datetime64[M]"))) >= DATE_WEEKDAY_DAYS:
        parts.append("weekday")
    years = DATE_PARTS["yearday"][0]
    if seconds.max() - seconds.min() > years and len(np.unique(days - days.astype("datetime64[Y]"))) > 1:
        parts.append("yearday")
    return parts


def _part_bins(part: str, seconds: np.ndarray) -> np.ndarray:
    """Each row's bin of a date's part (:data:`DATE_BIN`), a missing date one bin of its own."""
    value = date_part(part).fit_transform(seconds[:, None]).ravel()
    bins = np.floor(np.nan_to_num(value, nan=-1.0) / DATE_BIN[part]).astype(np.intp)
    return bins - bins.min()


def date_part(part: str) -> FunctionTransformer:
    """Seconds since 1970 as one of a date's parts (:data:`DATE_PARTS`), in its unit: numpy's ``interp`` of a
    periodic saw, so the pipeline stays plain scikit-learn and numpy (loads without mlkiln). Exact but in the
    millisecond before the period's start, where the saw drops; a missing date stays missing."""
    period, start, unit = DATE_PARTS[part]
    edge = 1e-3
    return FunctionTransformer(np.interp, kw_args={"xp": [start, start + period - edge],
                                                   "fp": [0.0, (period - edge) / unit], "period": period})


def _date_blocks(dates: dict) -> list[tuple]:
    """The ColumnTransformer blocks of the date parts: one per part, over the columns that have it."""
    return [(part, date_part(part), [name for name, parts in dates.items() if part in parts])
            for part in DATE_PARTS if any(part in parts for parts in dates.values())]


def _rule_target(y: np.ndarray) -> np.ndarray:
    """The target as columns for :func:`code_columns`: standardised numbers, or one 0/1 column per class (a
    target of at most :data:`CODE_CLASSES` values, numbers too)."""
    if y.dtype.kind in "fiu" and len(np.unique(y)) > CODE_CLASSES:
        values = y.astype(np.float64)
        return ((values - values.mean()) / (values.std() or 1.0))[:, None]
    classes, codes = np.unique(y.astype(str), return_inverse=True)
    kept = np.argsort(-np.bincount(codes))[:CODE_CLASSES]
    return (codes[:, None] == kept[None, :]).astype(np.float64)


def _explained(keys: np.ndarray, target: np.ndarray, folds: np.ndarray) -> float:
    """The share of the target's variance the cross-fitted, shrunk mean per key explains (R2, summed over the
    target's columns)."""
    predicted = np.empty_like(target)
    n_keys = keys.max() + 1
    for k in range(folds.max() + 1):
        fit, held = folds != k, folds == k
        prior = target[fit].mean(axis=0)
        counts = np.bincount(keys[fit], minlength=n_keys)[:, None]
        sums = np.stack([np.bincount(keys[fit], weights=t, minlength=n_keys) for t in target[fit].T], axis=1)
        predicted[held] = ((sums + CODE_SHRINK * prior) / (counts + CODE_SHRINK))[keys[held]]
    spread = ((target - target.mean(axis=0)) ** 2).sum()
    return 1.0 - ((predicted - target) ** 2).sum() / spread if spread else 0.0


def _encodable(X, y, kinds: dict) -> str | None:
    text = [name for name, kind in kinds.items() if kind == "categorical"]
    if any(X[name].nunique() >= TARGET_ENCODED_VALUES for name in text) or code_columns(X, y, kinds):
        return None
    return (f"no text column of {TARGET_ENCODED_VALUES} or more values, and no column of whole numbers like ids, "
            f"to encode by the target")


#: gradient boosting on text columns encoded by the target's mean per category (CatBoost's idea, scikit-learn's
#: cross-fitted TargetEncoder), and number columns like ids (:func:`code_columns`) too, beside ``hgb``'s native
#: categories: where a column has many values, a native categorical split sorts them by the gradient of one node's rows, and few rows per value make that noisy. On the
#: best of 4 portfolio configurations, 5-fold CV (benchmarks/RESULTS.md, session 17): bundesliga's team names log
#: loss 0.9947 against 0.9997, cars' model names R2 0.854 against 0.848, forbes2000's countries 0.706 against
#: 0.714 (native better): a family of its own, chosen (or weighed into the ensemble) by cross-validation
register(Family("hgb_target", ("regression", "classification"), REGISTRY["hgb"].make, encoding="target",
                grid=REGISTRY["hgb"].grid, distributions=REGISTRY["hgb"].distributions, portfolio=HGB_PORTFOLIO,
                cost="expensive", plotted="max_leaf_nodes", staged=True, per_class=True, applies=_encodable))
#: a regression forest's trees each choose among half the features at a split (scikit-learn's default: all of
#: them; R's randomForest a third): CV R2 higher on 6 of 8 public tables by 0.007-0.022 (diabetes, boston, star,
#: slid, doctor-contacts, forbes2000), the same on computers, 0.005 lower on cars, and faster (doctor-contacts'
#: fits 10 s against 18 s); benchmarks/RESULTS.md, session 15. Classification keeps the square root
FOREST_REGRESSION_FEATURES = 0.5

register(Family("rf", ("regression", "classification"),
                _one({"regression": partial(RandomForestRegressor, max_features=FOREST_REGRESSION_FEATURES),
                      "classification": RandomForestClassifier},
                     n_estimators=100, n_jobs=1),
                grid=_FOREST_GRID, distributions=_FOREST_DIST, cost="expensive", plotted="min_samples_leaf",
                bounded=_forest_rows, grows_with_rows=True))
register(Family("extra_trees", ("regression", "classification"),
                _one({"regression": ExtraTreesRegressor, "classification": ExtraTreesClassifier},
                     n_estimators=100, n_jobs=1),
                grid=_FOREST_GRID, distributions=_FOREST_DIST, cost="expensive", plotted="min_samples_leaf",
                bounded=_forest_rows, grows_with_rows=True))


#: the regression network (``mlp``): two ReLU layers on the one-hot design (as the linear families read it), Adam
#: with its learning rate doubled for batches of 512 rows, stopped once 10 % of its training rows held out score no
#: better for 10 passes; its target standardised, as a network's loss wants it. Where the target is smooth in its
#: columns (a company's market value in its sales, profits and assets) it reaches what trees cannot: forbes2000's
#: CV R2 0.7644 (ensemble of trees and least squares) -> 0.8076 with it, test 0.7306 -> 0.7689; psid, slid,
#: budget-food +0.003 to +0.011 on test; never weighed in, and nothing changed, on 5 others, nor on 5
#: classifications by MLPClassifier (not kept); benchmarks/RESULTS.md, session 35
MLP_DEFAULTS = {"hidden_layer_sizes": (128, 64), "batch_size": 512, "learning_rate_init": 0.002,
                "early_stopping": True, "n_iter_no_change": 10, "max_iter": 300}


def _network(task, seed, n_classes=2):
    network = MLPRegressor(**MLP_DEFAULTS, random_state=seed)
    return TransformedTargetRegressor(regressor=network, transformer=StandardScaler(), check_inverse=False)


#: below this many training rows the network does not hold 10 % of a fold's rows out to stop on (fewer than 67: a
#: score of a few rows to stop on, and none at all on a 16-row table, where scikit-learn refuses the fit): it takes
#: its passes until its training loss stops falling, at most MLP_SMALL_PASSES, in batches of 200 rows
MLP_HELD_OUT_ROWS = 1_000
MLP_SMALL_PASSES = 200


def _network_rows(n_rows: int) -> dict:
    if n_rows >= MLP_HELD_OUT_ROWS:
        return {}
    # scikit-learn's batches of 200 ("auto"): a batch of 512 larger than the rows is cut, with a warning
    return {"regressor__early_stopping": False, "regressor__max_iter": MLP_SMALL_PASSES, "regressor__batch_size": "auto"}


#: the network is searched by default on at most this many training rows: its passes over them cost about 0.17 ms
#: a row on one core (budget-food's 12,800 rows a fold: 2.5 s a fit), so that on diamonds' 43,000 it would add
#: about 20 s to the example's 47 s; ``--models mlp`` searches it on any table
MLP_MOST_ROWS = 20_000


def _few_rows(X, y, kinds: dict) -> str | None:
    if len(X) <= MLP_MOST_ROWS:
        return None
    return f"more than {MLP_MOST_ROWS:,} training rows, where its passes over them cost more than it adds"


register(Family("mlp", ("regression",), _network, encoding="onehot",
                grid={"regressor__alpha": [0.01, 3.0]}, distributions={"regressor__alpha": loguniform(1e-3, 10.0)},
                cost="expensive", plotted="regressor__alpha", applies=_few_rows,
                bounded=_network_rows))

#: a single fit on fewer rows runs on one thread: OpenMP's synchronisation at every boosting iteration costs more
#: than the threads save (gradient boosting with early stopping on 240 rows: 0.48 s on 2 threads, 0.07 s on one;
#: 2,000 diamonds rows 1.4x slower on 2; 20,000 rows 0.73x); see benchmarks/RESULTS.md
THREADED_FIT_ROWS = 8_000


def fit_threads(rows: int, cores: int) -> int:
    """Threads for the final fit on ``rows`` rows: all ``cores``, or one below :data:`THREADED_FIT_ROWS`.

    train.py fits on as many: a least-squares solve sums in another order on
    another count of BLAS threads (3e-14 apart), and the rebuild is bit for bit.
    """
    return cores if rows >= THREADED_FIT_ROWS else 1


def make_estimator(task, family, seed, n_classes=2):
    """Return the unfitted estimator of ``family`` with mlkiln's defaults."""
    entry = REGISTRY.get(family)
    if entry is None or task not in entry.tasks:
        raise ValueError(f"unknown {task} family {family!r}")
    return entry.make(task, seed, n_classes)


def _target_encoder(task: str, n_classes: int, seed: int) -> TargetEncoder:
    """The target's mean per category, cross-fitted on 5 folds of the training rows shuffled by ``seed``."""
    kind = "continuous" if task == "regression" else "binary" if n_classes == 2 else "multiclass"
    if tuple(map(int, re.match(r"(\d+)\.(\d+)", sklearn_version).groups())) < (1, 9):  # a splitter as cv: 1.9 on
        return TargetEncoder(target_type=kind, shuffle=True, random_state=seed)
    folds = (KFold if task == "regression" else StratifiedKFold)(5, shuffle=True, random_state=seed)
    return TargetEncoder(target_type=kind, cv=folds)


def words(terms: int | None = None) -> Pipeline:
    """A free-text column as the TF-IDF weights of its ``terms`` (:data:`TEXT_TERMS`) most frequent words and pairs.

    A missing text is an empty one, words are lowercased
    runs of two or more letters or digits, and a word's count is damped
    (1 + log) so one repeated word does not outweigh the rest of a review.
    """
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=""),
        FunctionTransformer(np.ravel, feature_names_out="one-to-one"),  # the vectorizer reads one text per row
        TfidfVectorizer(ngram_range=(1, 2), min_df=TEXT_MIN_ROWS, max_features=terms or TEXT_TERMS,
                        sublinear_tf=True),
    )


def make_preprocessor(kinds, family, max_categories=MAX_CATEGORIES, task="classification", n_classes=2, seed=0,
                      codes=(), texts=(), tree_words=True, dates=None):
    """Impute, scale, flag missing values and one-hot for linear families; ordinal codes (or target means) for trees.

    Trees split on raw values and handle missing values natively, so they get
    no imputation or scaling; linear models need both, plus one-hot columns.
    ``max_categories=None`` (no text column has more values) leaves the
    encoders uncapped: the same output, without counting every value.
    Target encoding gives one column per class (two classes: one), fitted on
    ``seed``'s shuffled folds of the training rows so no row sees its own target;
    it also encodes the number columns in ``codes`` (:func:`code_columns`),
    which stay numbers too (block ``codes``, between numbers and text).
    The free-text columns ``texts`` come last, as the weights of their words
    (:func:`words`, blocks ``words0``, ``words1``...): :data:`TEXT_TERMS_LINEAR`
    of them for linear families, which then get a sparse matrix, and
    :data:`TEXT_TERMS` (dense) for trees; without ``tree_words`` trees leave them out (:data:`TEXT_TREE_ROWS`).
    Trees also read the parts of the date columns in ``dates`` (:func:`date_parts`), right after the numbers.
    """
    numeric = [name for name, kind in kinds.items() if kind != "categorical"]
    linear = REGISTRY[family].encoding == "onehot"
    free = [name for name in kinds if name in texts and (linear or tree_words)]
    categorical = [name for name, kind in kinds.items() if kind == "categorical" and name not in texts]
    middle = []  # blocks between the numbers and the text: missing-value flags, or the numbers encoded as codes
    if not linear:
        middle = _date_blocks({name: parts for name, parts in (dates or {}).items() if name in kinds})
    if REGISTRY[family].encoding == "onehot":
        # a callable median: numpy's O(n) selection per column, not a masked-array sort of the whole table
        num = make_pipeline(SimpleImputer(strategy=np.median), StandardScaler())
        # 0/1 like the one-hot columns, not standardised: a value missing in 2 rows of 11,214 scaled to 74.9, and
        # saga's step size (one over the largest squared row norm) shrank with it: L1 logistic regression on
        # bundesliga took 4-7 s per fit for held-out log loss within 0.0002 of the 0.4 s fit now
        # sparse with free text (below), where a block without columns is refused: a flag per number then
        middle = [("missing", MissingIndicator(error_on_new=False, features="all" if free else "missing-only"),
                   numeric)]
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_categories),
        )
    elif REGISTRY[family].encoding == "target":
        num = "passthrough"
        cat = _target_encoder(task, n_classes, seed)
        if codes:
            middle.append(("codes", _target_encoder(task, n_classes, seed), list(codes)))
    else:
        num = "passthrough"
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=float("nan"),
            encoded_missing_value=float("nan"),
            max_categories=max_categories,
        )
    text = [(f"words{i}", words(TEXT_TERMS_LINEAR if linear else TEXT_TERMS), [name]) for i, name in enumerate(free)]
    return ColumnTransformer(
        [("numeric", num, numeric), *middle, ("categorical", cat, categorical), *text],
        sparse_threshold=1.0 if linear and text else 0.0,  # a linear model reads thousands of words sparse
        # one job: the pipeline runs inside parallel CV workers, where nested parallelism oversubscribes
        n_jobs=1,
        verbose_feature_names_out=False,
    )


#: coordinate descent (lasso) on a design at most this wide works on its Gram matrix X'X, computed once per fit
#: (``precompute``), not on X's rows at every pass: on 100,000 nycflights13 rows with its two columns known only
#: after landing kept, lasso at 1e-4 of the target's deviation ran all 5,000 passes in 60.5 s, and in 0.7 s on the
#: Gram matrix, the same fit (R2 0.84199); where it converged in 14 passes, 0.5 s against 0.6 s. Its cost grows
#: with the square of the width (benchmarks/RESULTS.md, session 28)
GRAM_MAX_COLUMNS = 512


def onehot_width(kinds: dict, max_categories: int | None = MAX_CATEGORIES, texts=()) -> int:
    """The most columns the one-hot preprocessing makes of ``kinds``: each number and its missing-value flag,
    each text column's kept categories and its missing slot (``None``: none has more than MAX_CATEGORIES), and
    each free-text column's words (``texts``)."""
    n_text = sum(kind == "categorical" for kind in kinds.values())
    n_free = sum(name in texts for name in kinds)
    return (2 * (len(kinds) - n_text) + (n_text - n_free) * ((max_categories or MAX_CATEGORIES) + 1)
            + n_free * TEXT_TERMS_LINEAR)


def build_pipeline(task, family, kinds, params=None, seed=0, n_classes=2, threshold=None, max_categories=MAX_CATEGORIES,
                   codes=(), bagged=0, texts=(), tree_words=True, dates=None):
    """Preprocessing + estimator as one Pipeline, with ``params`` set on the estimator.

    ``threshold`` (binary classification only) wraps the estimator so that
    ``predict`` uses the tuned probability cut-off instead of 0.5. ``codes``:
    the number columns a target-encoding family also encodes (:func:`code_columns`).
    ``bagged``: that many more fits averaged with the estimator (:func:`bag`).
    ``texts``: the free-text columns, read as words (:func:`words`), by trees too with ``tree_words``.
    ``dates``: the parts trees read of each date column (:func:`date_parts`).
    """
    estimator = make_estimator(task, family, seed, n_classes)
    prep = make_preprocessor(kinds, family, max_categories, task, n_classes, seed, codes, texts, tree_words, dates)
    native = REGISTRY[family].encoding == "ordinal"
    if native and "categorical_features" in estimator.get_params():  # gradient boosting splits on categories natively
        # the columns before the categories: the numbers, then the dates' parts the preprocessing reads
        n_numeric = sum(len(columns) for name, _, columns in prep.transformers
                        if name == "numeric" or name in DATE_PARTS)
        n_categorical = sum(kind == "categorical" and name not in texts for name, kind in kinds.items())
        categories = [False] * n_numeric + [True] * n_categorical
        # the words' columns follow the categories, as many as the vocabulary holds: places, not a mask
        if tree_words and any(name in texts for name in kinds):
            categories = list(range(n_numeric, len(categories)))
        estimator.set_params(categorical_features=categories if n_categorical else None)
    if (REGISTRY[family].encoding == "onehot" and "precompute" in estimator.get_params()
            and onehot_width(kinds, max_categories, texts) <= GRAM_MAX_COLUMNS):
        estimator.set_params(precompute=True)
    estimator.set_params(**(params or {}))
    if bagged:
        estimator = bag(task, estimator, bagged, seed)
    if threshold is not None:
        estimator = FixedThresholdClassifier(estimator, threshold=threshold, response_method="predict_proba")
    return Pipeline([("prep", prep), ("model", estimator)])


#: a bagged model's extra fits each see this share of the training rows: as the training part of 5 folds.
#: Averaged with the fit on all rows, they beat that fit alone on 25 of 35 public tables' test rows (males R2
#: +0.020, medexp +0.020, catsup log loss -0.022, forbes2000 R2 -0.010; benchmarks/RESULTS.md, session 30)
BAG_ROWS = 0.8
BAG_FITS = 5


def bag(task, estimator, fits=BAG_FITS, seed=0):
    """``estimator`` fitted on all rows, averaged with ``fits`` copies each fitted on :data:`BAG_ROWS` of them.

    What AutoGluon does with its fold models, as plain scikit-learn: a vote
    (soft for classification) of the estimator and a bagging ensemble of it,
    weighted so that each of the ``fits + 1`` models counts the same. The
    bagging draws its rows (without replacement) from ``seed``, so ``fit``
    rebuilds it bit for bit.
    """
    kind = BaggingRegressor if task == "regression" else BaggingClassifier
    bagging = kind(bagged_fit(estimator), n_estimators=fits, max_samples=BAG_ROWS, bootstrap=False, random_state=seed)
    members, weights = [("refit", estimator), ("bagged", bagging)], [1, fits]
    if task == "regression":
        return VotingRegressor(members, weights=weights)
    return VotingClassifier(members, voting="soft", weights=weights)


def bagged_fit(estimator) -> Pipeline:
    """``estimator`` as each of a bagging's fits: in a pipeline of its own, so that the bagging hands it its rows.

    Given an estimator whose ``fit`` takes sample weights, scikit-learn's
    bagging passes all rows, weighing those not drawn 0, and gradient
    boosting then bins every column at weighted percentiles, a Python loop
    of 254 per column (scikit-learn 1.9): one tree on 43,000 rows x 9 columns
    took 3.0 s against 0.13 s on the drawn rows, on 8,000 x 55 7.9 s against
    0.11 s, on 800 x 3,000 311 s against 3.6 s. A pipeline's ``fit`` takes
    no ``sample_weight``, so the bagging indexes the rows it drew.
    """
    return Pipeline([("model", clone(estimator))])


def bag_member(fit):
    """The estimator one of a bagging's fits is (:func:`bagged_fit`); bundles before it held the estimator itself."""
    return fit.steps[-1][1] if isinstance(fit, Pipeline) else fit


def is_bagged(model) -> bool:
    """Whether ``model`` (an estimator, not a Pipeline) is one :func:`bag` made."""
    return (isinstance(model, (VotingRegressor, VotingClassifier))
            and [name for name, _ in model.estimators] == ["refit", "bagged"])


def unbagged(model):
    """The fit on all rows of a fitted model :func:`bag` made; any other model itself."""
    return model.named_estimators_["refit"] if is_bagged(model) else model


def build_ensemble(task, members, kinds, seed=0, n_classes=2, threshold=None, max_categories=MAX_CATEGORIES, codes=(),
                   texts=(), tree_words=True, dates=None):
    """The weighted vote of member pipelines: ``members`` are ``(name, family, params, weight)``.

    Regression averages the members' predictions, classification their
    probabilities (soft voting), each weighted; ``threshold`` (binary only)
    cuts the averaged probability of the positive class.
    """
    estimators = [(name, build_pipeline(task, family, kinds, params, seed, n_classes, max_categories=max_categories,
                                        codes=codes, texts=texts, tree_words=tree_words, dates=dates))
                  for name, family, params, _ in members]
    weights = [weight for *_, weight in members]
    if task == "regression":
        return VotingRegressor(estimators, weights=weights)
    vote = VotingClassifier(estimators, voting="soft", weights=weights)
    if threshold is None:
        return vote
    return FixedThresholdClassifier(vote, threshold=threshold, response_method="predict_proba")
