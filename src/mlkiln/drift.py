"""Drift: is the data the model sees still the data it learned from?

At training time :func:`training_profile` summarises every input column and
the model's predictions on rows it never saw in a few numbers per column; the card
keeps that profile. Later :func:`check` (``mlkiln drift BUNDLE new.csv``)
puts new data through the same conform rules as ``predict``, scores it, and
:func:`compare` measures how far each column and the predictions moved.

The measure is the population stability index over the profile's bins,
``PSI = sum((new - train) * ln(new / train))`` over the bins' shares, with
shares below :data:`EPSILON` counted as :data:`EPSILON` (an empty bin would
make it infinite). Missing values are a bin of their own, so a column that
starts arriving empty drifts too. Read it with the usual rule of thumb
(:data:`MODERATE`, :data:`MAJOR`): below 0.1 stable, up to 0.25 a moderate
shift, above it a major one.

Profile, ``version`` 1 (plain JSON; a few hundred bytes per column)
------------------------------------------------------------------
``rows``, ``sample_rows``, ``seed``, ``bins``
    Training rows profiled; the bin edges are quantiles of a seeded sample of
    at most :data:`SAMPLE_ROWS` of them (bounded time on any table), the
    shares are counted on every row.
``columns``
    Per input column, as the pipeline saw it (datetimes are seconds since
    1970): numeric ``{"kind", "edges", "shares", "missing", "min", "max"}``
    (bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; shares are of all
    rows, so ``sum(shares) + missing == 1``); categorical ``{"kind", "categories", "shares", "other",
    "missing", "n_categories"}`` (``categories``: the most frequent, at most
    :data:`MAX_KNOWN`, so unseen values can be recognised when that is all of
    them; ``shares`` of the first :data:`TOP_CATEGORIES`, ``other`` pools the rest).
``prediction``
    The same summary of the final model's predictions on the test split (or,
    with fewer than :data:`PREDICTION_MIN_ROWS` test rows, of the out-of-fold
    predictions of the cross-validation's models): ``value`` (numeric,
    regression) or ``class`` (categorical, the predicted class at the model's
    threshold) and, for two classes, ``probability`` (numeric, P(positive
    class)); ``classes`` (the probabilities' columns) and ``threshold`` as in
    the card; ``source`` (``"test"`` or ``"out-of-fold"``; absent in bundles
    before it: out-of-fold) and ``rows``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import BundleError, InputError

PROFILE_VERSION = 1
#: quantile bins per numeric column (fewer when values repeat)
BINS = 10
#: rows the quantile edges are computed on, at most (a seeded sample)
SAMPLE_ROWS = 100_000
#: categories whose shares are kept per text column; the rest share one bin
TOP_CATEGORIES = 20
#: categories listed per text column, so that unseen ones can be told apart: at 100, a column of 5,000 codes all
#: replaced by new ones drifted "stable" (PSI 0.03, unseen not counted) and serve counted none unseen. 10,000
#: codes of 8 characters are about 120 kB of card.json
MAX_KNOWN = 10_000
#: shares below this count as this in the PSI (an empty bin would make it infinite)
EPSILON = 1e-4
#: test rows the prediction's profile needs, else it is of the out-of-fold predictions. Those come from the k
#: folds' models, not the model that scores new rows: a model of few distinct probabilities (20 small boosted
#: trees) puts each fold's at its own values, the deciles fall between them, and the model's own predictions on
#: its training table drifted "major" (PSI 5.3) against them
PREDICTION_MIN_ROWS = 200
#: PSI thresholds of the usual rule of thumb: stable below MODERATE, major above MAJOR
MODERATE, MAJOR = 0.1, 0.25
#: samples of the new rows' size drawn from a column's training shares: the PSI that 95 % of them stay below is the
#: column's sampling noise (:func:`_noise`). A few rows drift "major" by chance alone: 20 rows leave at least half
#: of ten decile bins empty, and each empty bin adds about 0.69 to the PSI
NOISE_DRAWS, NOISE_QUANTILE = 200, 0.95
_DIGITS = 5  # of a share: finer than EPSILON, which bounds what the PSI can tell apart


def training_profile(X: pd.DataFrame, kinds: dict[str, str], predictions, task: str, classes=None,
                     threshold: float | None = None, seed: int = 0, source: str = "test",
                     fresh: pd.DataFrame | None = None) -> dict:
    """The compact profile of the training rows and predictions that :func:`compare` measures new data against.

    Parameters
    ----------
    X : DataFrame
        The training rows as the pipeline saw them (after ``schema.coerce_frame``).
    kinds : dict
        Column name -> ``numeric``, ``datetime`` or ``categorical``.
    predictions : array
        Predictions on rows the model did not learn from: values (regression)
        or class probabilities, columns in the order of ``classes``
        (classification).
    task : str
    classes : sequence, optional
        The target's classes (classification).
    threshold : float, optional
        The tuned decision threshold on P(positive class), when there is one.
    seed : int
        Seeds the sample the quantile edges are computed on.
    source : str
        Where ``predictions`` come from: ``"test"`` (the model's, on the test
        split) or ``"out-of-fold"``.
    fresh : DataFrame, optional
        Rows the profile did not count (the test split): the share of their
        text values that ``X`` never holds is how many unseen values rows of
        the same table bring (``unseen``), the baseline new data is measured
        against. A column of 5,000 codes in 10,000 rows brings 4 % in its
        own test split: against a baseline of none, the table itself drifted.
    """
    rng = np.random.default_rng(seed)
    columns = {name: _profile_column(X[name], kind, rng) for name, kind in kinds.items()}
    for name, spec in columns.items():
        if spec["kind"] == "categorical" and fresh is not None and spec["n_categories"] <= len(spec["categories"]):
            present = fresh[name].dropna().astype(str)
            spec["unseen"] = _round((~present.isin(spec["categories"])).sum() / max(len(fresh), 1))
    return {
        "version": PROFILE_VERSION, "rows": int(len(X)), "sample_rows": int(min(len(X), SAMPLE_ROWS)), "seed": seed,
        "bins": BINS, "epsilon": EPSILON, "columns": columns,
        "prediction": {**_profile_predictions(predictions, task, classes, threshold, rng), "source": source,
                       "rows": int(len(predictions))},
    }


def _profile_column(col: pd.Series, kind: str, rng) -> dict:
    return _numeric(col.to_numpy(dtype="float64"), kind, rng) if kind != "categorical" else _categorical(col)


def _numeric(values: np.ndarray, kind: str, rng) -> dict:
    present = values[~np.isnan(values)]
    n = len(values)
    if len(present) == 0:
        return {"kind": kind, "edges": [], "shares": [0.0], "missing": 1.0, "min": None, "max": None}
    sample = present if len(present) <= SAMPLE_ROWS else rng.choice(present, SAMPLE_ROWS, replace=False)
    # quantiles that are data values (exact for discrete columns), to 6 significant digits (short in JSON);
    # the shares are counted with the edges as stored
    quantiles = np.quantile(sample, np.arange(1, BINS) / BINS, method="inverted_cdf")
    edges = np.unique([float(f"{q:.6g}") for q in quantiles])
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return {"kind": kind, "edges": edges.tolist(), "shares": _rounded(counts / n), "missing": _round(1 - len(present) / n),
            "min": float(present.min()), "max": float(present.max())}


def _categorical(col: pd.Series) -> dict:
    counts = col.value_counts(sort=True)
    counts = counts[counts > 0]  # a category dtype lists values of the other split too
    n = len(col)
    top = counts.iloc[:TOP_CATEGORIES]
    return {"kind": "categorical", "categories": [str(v) for v in counts.index[:MAX_KNOWN]],
            "shares": _rounded(top.to_numpy() / n), "other": _round(counts.iloc[TOP_CATEGORIES:].sum() / n),
            "missing": _round(col.isna().mean()), "n_categories": int(len(counts))}


def _profile_predictions(predictions, task: str, classes, threshold, rng) -> dict:
    predictions = np.asarray(predictions)
    if task == "regression":
        return {"value": _numeric(predictions.astype("float64"), "numeric", rng)}
    classes = [str(c) for c in classes]
    profile = {"class": _categorical(pd.Series(predicted_classes(predictions, classes, threshold))),
               "classes": classes, "threshold": threshold}
    if len(classes) == 2:
        profile["probability"] = _numeric(predictions[:, 1].astype("float64"), "numeric", rng)
    return profile


def predicted_classes(proba: np.ndarray, classes, threshold: float | None) -> np.ndarray:
    """The model's decision from its probabilities: the tuned threshold on P(positive), else the most probable class."""
    classes = np.asarray(classes, dtype=object)
    if threshold is not None:
        return np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    return classes[np.argmax(proba, axis=1)]


@dataclass
class Shift:
    """How far one column (or the predictions) moved from training.

    ``bins`` names the profile's bins, ``train`` and ``new`` are their shares
    (missing values last); ``out_of_range`` is the share of new non-missing
    values outside the training range (numeric), ``unseen`` the share of new
    non-missing values training never saw (categorical; ``None`` when training
    had more than :data:`MAX_KNOWN` categories, too many to list).
    """

    name: str
    kind: str
    psi: float
    missing_train: float
    missing_new: float
    bins: list[str]
    train: list[float]
    new: list[float]
    out_of_range: float | None = None
    unseen: float | None = None
    noise: float = 0.0  # the PSI that as many rows drawn from the training shares reach (:func:`_noise`)

    @property
    def severity(self) -> str:
        return "major" if self.psi >= MAJOR else "moderate" if self.psi >= MODERATE else "stable"

    @property
    def within_noise(self) -> bool:
        return self.psi <= self.noise

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "psi": self.psi, "severity": self.severity,
                "noise": self.noise, "within_noise": self.within_noise,
                "missing_train": self.missing_train, "missing_new": self.missing_new,
                "out_of_range": self.out_of_range, "unseen": self.unseen,
                "bins": self.bins, "train": self.train, "new": self.new}


@dataclass
class DriftResult:
    """Every column's :class:`Shift`, most drifted first, and the predictions'."""

    rows: int
    columns: list[Shift]
    predictions: list[Shift]
    profile_rows: int
    epsilon: float = EPSILON
    thresholds: dict = field(default_factory=lambda: {"moderate": MODERATE, "major": MAJOR})
    prediction_source: str = "out-of-fold"  # what the predictions are measured against: "test" or "out-of-fold"

    def few_rows(self) -> str | None:
        """What the sampling noise of few new rows means here, where it reaches a moderate shift; else None."""
        noise = max((s.noise for s in self.columns), default=0.0)
        if noise < MODERATE:
            return None
        within = sum(s.within_noise for s in self.columns)
        return (f"{self.rows:,} rows are few for PSI: samples of {self.rows:,} rows of the training data itself reach "
                f"PSI up to {noise:.2f} ({NOISE_QUANTILE:.0%} of {NOISE_DRAWS} draws), and {within} of the "
                f"{len(self.columns)} columns drifted no more than their own noise; more rows measure drift")

    def above(self, psi: float) -> list[Shift]:
        """The columns and predictions whose PSI exceeds ``psi``."""
        return [s for s in [*self.columns, *self.predictions] if s.psi > psi]

    def to_dict(self) -> dict:
        return {"rows": self.rows, "training_rows": self.profile_rows, "epsilon": self.epsilon,
                "thresholds": self.thresholds, "few_rows": self.few_rows(),
                "columns": [s.to_dict() for s in self.columns],
                "predictions": [s.to_dict() for s in self.predictions], "prediction_source": self.prediction_source}


def compare(profile: dict, X: pd.DataFrame, predictions) -> DriftResult:
    """Measure new data (conformed as for ``predict``) and its predictions against a training profile.

    ``predictions`` are what :func:`training_profile` took: values or class
    probabilities. Columns come back sorted by PSI, largest first; ties by
    the share of unseen or out-of-range values.
    """
    shifts = [_shift(name, spec, X[name]) for name, spec in profile["columns"].items()]
    shifts.sort(key=lambda s: (-s.psi, -((s.unseen or 0) + (s.out_of_range or 0)), s.name))
    predictions = np.asarray(predictions)
    expected = profile["prediction"]
    if "value" in expected:
        outputs = [_shift("prediction", expected["value"], pd.Series(predictions, dtype="float64"))]
    else:
        labels = predicted_classes(predictions, expected["classes"], expected["threshold"])
        outputs = [_shift("predicted class", expected["class"], pd.Series(labels))]
        if "probability" in expected:
            outputs.append(_shift("P(positive class)", expected["probability"], pd.Series(predictions[:, 1])))
    return DriftResult(int(len(X)), shifts, outputs, int(profile["rows"]),
                       prediction_source=expected.get("source", "out-of-fold"))


def _shift(name: str, spec: dict, col: pd.Series) -> Shift:
    if spec["kind"] == "categorical":
        return _categorical_shift(name, spec, col)
    values = col.to_numpy(dtype="float64")
    missing = np.isnan(values)
    present = values[~missing]
    n = max(len(values), 1)
    edges = np.asarray(spec["edges"], dtype="float64")
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    train = [*spec["shares"], spec["missing"]]
    new = [*(counts / n), missing.sum() / n]
    outside = None
    if spec["min"] is not None and len(present):
        outside = _round(((present < spec["min"]) | (present > spec["max"])).mean())
    return Shift(name, spec["kind"], _psi(train, new), spec["missing"], _round(new[-1]),
                 [*_interval_labels(edges, spec["kind"]), "missing"], train, _rounded(new), out_of_range=outside,
                 noise=_noise(train, len(values)))


def _categorical_shift(name: str, spec: dict, col: pd.Series) -> Shift:
    n = max(len(col), 1)
    counts = col.value_counts()
    top = spec["categories"][: len(spec["shares"])]
    top_counts = counts.reindex(top, fill_value=0).to_numpy()
    missing = float(col.isna().sum()) / n
    other = 1.0 - missing - top_counts.sum() / n
    train = [*spec["shares"], spec["other"], spec["missing"]]
    new = [*(top_counts / n), max(other, 0.0), missing]
    labels = [*top, "(other)", "missing"]
    unseen = None
    if spec["n_categories"] <= len(spec["categories"]):
        present = counts[counts > 0]
        new_rows = present[~present.index.isin(spec["categories"])].sum()
        unseen = _round(new_rows / max(present.sum(), 1))
        # more unseen values than rows of the same table bring (the test split's share, see training_profile's
        # fresh) get a bin of their own: pooled with the rare known ones in "(other)", every value of a column of
        # 5,000 codes replaced by new ones moved no share at all. Fewer (the training file itself, whose rows the
        # profile counted) keep the pooled bins: against the test split's 21 %, its 4 % drifted "major"
        expected = spec.get("unseen", 0.0)
        if new_rows / n > expected:
            train = [*(share * (1 - expected) for share in train[:-1]), expected, train[-1] * (1 - expected)]
            new = [*new[:-2], max(other - new_rows / n, 0.0), new_rows / n, missing]
            labels = [*labels[:-1], "(unseen)", "missing"]
    return Shift(name, "categorical", _psi(train, new), spec["missing"], _round(missing),
                 labels, train, _rounded(new), unseen=unseen, noise=_noise(train, len(col)))


def _noise(train, n_rows: int) -> float:
    """The PSI that :data:`NOISE_QUANTILE` of :data:`NOISE_DRAWS` samples of ``n_rows`` rows drawn from the
    ``train`` shares stay below: a shift no larger is what a sample of that size shows without any drift."""
    shares = np.maximum(np.asarray(train, dtype="float64"), 0.0)
    if n_rows < 1 or shares.sum() <= 0:
        return 0.0
    counts = np.random.default_rng(0).multinomial(n_rows, shares / shares.sum(), size=NOISE_DRAWS)
    return _round(float(np.quantile(_psi_of(train, counts / n_rows), NOISE_QUANTILE)))


def _psi(train, new) -> float:
    return _round(float(_psi_of(train, new)))


def _psi_of(train, new) -> np.ndarray:
    """The PSI of ``new`` shares (each row of them, for several) against the ``train`` shares."""
    expected = np.maximum(np.asarray(train, dtype="float64"), EPSILON)
    actual = np.maximum(np.asarray(new, dtype="float64"), EPSILON)
    return np.sum((actual - expected) * np.log(actual / expected), axis=-1)


def _interval_labels(edges: np.ndarray, kind: str) -> list[str]:
    if len(edges) == 0:
        return ["any value"]
    text = [_edge_text(e, kind) for e in edges]
    return [f"≤ {text[0]}", *(f"{a} – {b}" for a, b in zip(text, text[1:])), f"> {text[-1]}"]


def _edge_text(value: float, kind: str) -> str:
    if kind == "datetime":
        return pd.Timestamp(value, unit="s").strftime("%Y-%m-%d %H:%M")
    return f"{value:.4g}"


def _round(value: float) -> float:
    return round(float(value), _DIGITS)


def _rounded(values) -> list[float]:
    return [_round(v) for v in values]


def profile_of(card) -> dict:
    """The training profile a bundle's card carries; refuses a bundle made before profiles existed."""
    profile = getattr(card, "profile", None)
    if not profile:
        raise BundleError("this bundle has no training profile (it was made by an mlkiln without drift checks); "
                          "train it again to check drift")
    if profile.get("version") != PROFILE_VERSION:
        raise BundleError(f"the bundle's training profile is version {profile.get('version')}; this mlkiln reads "
                          f"version {PROFILE_VERSION}: use the mlkiln version in its requirements or train it again")
    return profile


def check(model, data: pd.DataFrame) -> DriftResult:
    """Conform new data as ``predict`` does, score it with the bundle's model, and compare both with the profile.

    Raises :class:`BundleError` for a bundle without a profile and
    :class:`InputError` for data that lacks the model's columns or has no rows.
    """
    profile = profile_of(model.card)
    if len(data) == 0:
        raise InputError("the data has no rows to compare with the training profile")
    X = model.prepare(data)
    prediction, proba = model.predictor.score(X)
    return compare(profile, X, proba if model.task == "classification" else prediction)
