"""Compile a fitted mlkiln Pipeline into plain arrays: one-row predictions in microseconds.

A scikit-learn Pipeline spends milliseconds on one row, nearly all of it in
pandas and input checks around the model. :func:`compile_pipeline` reads the
fitted steps once and folds them into NumPy arrays and Python tables:

* linear families: imputation, scaling, missing-value indicators, one-hot
  encoding and the linear model become, per input column, a scaled weight
  (numbers) or a table of weight contributions indexed by category (text);
  one fitted on the target's normal scores is mapped back through them;
* tree families: categories become the encoder's codes through the same kind
  of table, and all trees are flattened into node arrays walked by NumPy, all
  trees at once: small trees (gradient boosting, at most 64 leaves) by the
  bitvector method of QuickScorer (Lucchese et al., SIGIR 2015), whose cost
  does not grow with depth; deeper trees (random forests) level by level.
  Batches of tree models reuse the compiled encoding and hand the matrix to
  the estimator's own compiled tree code, which no NumPy walk beats on many rows;
* neural networks (``mlp``): the first layer is linear in the one-hot
  design, so it folds into per-column tables as a linear model does (one
  output per hidden unit); the other layers are small matrix products;
* ensembles: each member pipeline compiled as above, their outputs averaged
  with the vote's weights.

Inputs are the values :func:`mlkiln.schema.conform_record` (one row, a dict)
or :func:`mlkiln.schema.conform` (a batch: a DataFrame or any mapping of
column name to array) return: float64 numbers, text or NaN. A pipeline with a
step this module does not know is not compiled: predictions then come from
the pipeline itself, :attr:`Predictor.reason` says why, and a message is logged.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy.special import ndtr
from sklearn.compose import TransformedTargetRegressor
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
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)

from .card import Column
from .pipeline import DATE_PARTS, bag_member, is_bagged

log = logging.getLogger("mlkiln")

#: trees with at most this many leaves are walked by 64-bit bitvectors
MAX_BITVECTOR_LEAVES = 64
_ALL_LEAVES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
#: QuantileTransformer's margin at the ends of [0, 1] (scikit-learn's BOUNDS_THRESHOLD): within it, the outermost quantile
QUANTILE_BOUND = 1e-7
#: a text value no fitted encoder has seen, to learn how each encodes unknown input
_UNSEEN = "\x00mlkiln-unseen\x00"

_LINEAR = (LinearRegression, Ridge, Lasso, LogisticRegression)
_HGB = (HistGradientBoostingRegressor, HistGradientBoostingClassifier)
#: forests of scikit-learn decision trees (random forests and extra trees share the tree structure)
_FOREST = (RandomForestRegressor, RandomForestClassifier, ExtraTreesRegressor, ExtraTreesClassifier)
_VOTE = (VotingRegressor, VotingClassifier)
_BAGGING = (BaggingRegressor, BaggingClassifier)


class _NotCompilable(Exception):
    """The pipeline holds something this module does not fold; the message says what."""


class Predictor:
    """Predictions of a fitted pipeline, from compiled arrays when it could be compiled.

    Build it with :func:`compile_pipeline`. ``compiled`` tells which path is
    used; ``reason`` says why scikit-learn is used instead (else ``None``).
    """

    def __init__(self, pipeline, columns: Sequence[Column], body=None, reason: str | None = None):
        self.pipeline = pipeline
        self.columns = columns
        self.body = body
        self.reason = reason
        self.compiled = body is not None

    def score_row(self, row: dict) -> tuple:
        """``(prediction, probabilities or None)`` for one conformed row.

        The prediction is a Python scalar; probabilities are a list in the
        order of the estimator's ``classes_``.
        """
        if self.body is None:
            labels, proba = self.score(_one_row_frame(row, self.columns))
            return labels.tolist()[0], None if proba is None else proba[0].tolist()
        raw = self.body.raw_row(row)
        if self.body.head.task == "regression":
            return (raw if type(raw) is float else float(raw[0])), None
        labels, proba = self.body.head.finish(np.reshape(raw, (1, -1)))
        return labels.tolist()[0], proba[0].tolist()

    def score(self, X) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predictions, probabilities or None)`` for a conformed batch of rows."""
        if self.body is None:
            frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
            frame = frame[[c.name for c in self.columns]]
            proba = self.pipeline.predict_proba(frame) if hasattr(self.pipeline, "predict_proba") else None
            return self.pipeline.predict(frame), proba
        return self.body.score(X)

    @property
    def additive(self) -> bool:
        """Whether :meth:`terms` splits the raw outputs into each input column's part: a compiled linear model."""
        return isinstance(self.body, _Linear)

    def terms(self, X) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """A linear model's raw outputs of ``X`` and each column's additive part of them (see
        :meth:`_Linear.terms`), with :meth:`finish` to turn raw outputs into ``score``'s; None for other models."""
        return self.body.terms(X) if self.additive else None

    def finish(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predictions, probabilities or None)`` from raw outputs, as :meth:`score` gives them."""
        return self.body.head.finish(raw)


#: rows timed one at a time for the card's single-row latency (after as many again to warm up)
LATENCY_ROWS = 200
#: seconds each of the warm-up and the timing may take: a row scikit-learn scores alone takes milliseconds,
#: and 400 of them through an ensemble's pipelines took 8 s of a 900-row training run
LATENCY_SECONDS = 0.25
#: rows timed however long they take
LATENCY_MIN_ROWS = 5


def row_latency_us(predictor: Predictor, X: pd.DataFrame) -> float:
    """Median microseconds to score one conformed row of ``X`` alone: what a ``/predict`` request's model costs.

    Timed on up to :data:`LATENCY_ROWS` rows (fewer when they take more than
    :data:`LATENCY_SECONDS`), each scored once after the same rows warmed the
    caches; without a compiled form it times scikit-learn's own path, which
    is what would serve the row.
    """
    records = X.head(LATENCY_ROWS).to_dict("records")
    times: list[int] = []
    for _ in ("warm-up", "timing"):  # the second pass's times are the ones kept
        times.clear()
        end = time.perf_counter_ns() + int(LATENCY_SECONDS * 1e9)
        for record in records:
            start = time.perf_counter_ns()
            predictor.score_row(record)
            times.append(time.perf_counter_ns() - start)
            if len(times) >= LATENCY_MIN_ROWS and start > end:
                break
    return round(float(np.median(times)) / 1e3, 1) if times else float("nan")


def compile_pipeline(pipeline, columns: Sequence[Column]) -> Predictor:
    """Fold a fitted mlkiln Pipeline (or ensemble of them) into arrays; fall back to scikit-learn when it cannot.

    Parameters
    ----------
    pipeline : Pipeline or voting ensemble
        A fitted pipeline as :func:`mlkiln.pipeline.build_pipeline` makes it,
        or an ensemble as :func:`mlkiln.pipeline.build_ensemble` makes it.
    columns : sequence of Column
        The input schema of the bundle's card (``card.columns``).
    """
    try:
        body = _compile(pipeline, columns)
    except _NotCompilable as exc:
        log.info("predictions use scikit-learn, not the compiled path: %s", exc)
        return Predictor(pipeline, columns, reason=str(exc))
    return Predictor(pipeline, columns, body)


def _compile(model, columns):
    estimator, threshold = _unwrap(model)
    if isinstance(estimator, _VOTE):
        return _Ensemble(estimator, threshold, columns)
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise _NotCompilable("not a two-step (preprocessing, model) Pipeline nor an ensemble of them")
    prep, final = model.steps[0][1], model.steps[1][1]
    estimator, threshold = _unwrap(final)
    blocks = _blocks(prep, columns)
    if blocks["words"] and not isinstance(getattr(estimator, "regressor_", estimator), _LINEAR):
        raise _NotCompilable("free-text columns read as words by trees")
    if is_bagged(estimator):
        return _Bagged(blocks, estimator, threshold)
    head = _Head(estimator, threshold)
    if isinstance(estimator, _LINEAR):
        return _Linear(blocks, estimator, head)
    if isinstance(estimator, TransformedTargetRegressor) and isinstance(estimator.regressor_, MLPRegressor):
        return _Network(blocks, estimator.regressor_, estimator.transformer_)
    if isinstance(estimator, TransformedTargetRegressor) and isinstance(estimator.regressor_, _LINEAR):
        return _FromNormalScores(_Linear(blocks, estimator.regressor_, _Head(estimator.regressor_, None)),
                                 estimator.transformer_)
    if isinstance(estimator, (*_HGB, *_FOREST)):
        return _Trees(blocks, estimator, final, head)
    raise _NotCompilable(f"no compiled form for {type(estimator).__name__}")


def _unwrap(final) -> tuple:
    """``(estimator, threshold)``: the model inside a FixedThresholdClassifier and its cut-off, else ``(final, None)``."""
    if not isinstance(final, FixedThresholdClassifier):
        return final, None
    if final.pos_label is not None:
        raise _NotCompilable("a decision threshold with an explicit pos_label")
    return final.estimator_, final.threshold


class _Ensemble:
    """The weighted vote of compiled member pipelines, averaged as scikit-learn's voting estimators average.

    Regression averages the members' predictions; classification their
    probabilities (soft voting), then the head picks the class, or cuts at
    the threshold. Members of a VotingClassifier were fitted on the class
    indices, so only their probabilities are read.
    """

    def __init__(self, vote, threshold, columns):
        if isinstance(vote, VotingClassifier) and vote.voting != "soft":
            raise _NotCompilable("a hard-voting ensemble")
        self.members = [_compile(member, columns) for member in vote.estimators_]
        self.weights = None if vote.weights is None else np.asarray(vote.weights, dtype=np.float64)
        self.head = _Head(vote, threshold, kind="proba")

    def raw_row(self, row: dict):
        if self.head.task == "regression":
            values = [np.ravel(member.raw_row(row))[0] for member in self.members]
            return float(np.average(values, weights=self.weights))
        probas = [member.head.finish(np.reshape(member.raw_row(row), (1, -1)))[1][0] for member in self.members]
        return np.average(probas, axis=0, weights=self.weights)

    def score(self, X, labels: bool = True):
        classification = self.head.task == "classification"
        outputs = [member.score(X, labels=not classification) for member in self.members]
        if not classification:
            return np.average(np.column_stack([pred for pred, _ in outputs]), axis=1, weights=self.weights), None
        return self.head.finish(np.average(np.stack([proba for _, proba in outputs]), axis=0, weights=self.weights))


class _Bagged(_Ensemble):
    """A model averaged with its fits on part of the rows (:func:`mlkiln.pipeline.bag`): each fit compiled over the
    preprocessing they share, and voted as :class:`_Ensemble` votes; a batch by scikit-learn's own vote on the one
    preprocessed matrix."""

    def __init__(self, blocks, vote, threshold):
        refit, bagging = vote.named_estimators_["refit"], vote.named_estimators_["bagged"]
        if not isinstance(bagging, _BAGGING) or getattr(vote, "voting", "soft") != "soft":
            raise _NotCompilable("a bagged model other than a soft vote of a fit and its bagging")
        if any(not np.array_equal(f, np.arange(bagging.n_features_in_)) for f in bagging.estimators_features_):
            raise _NotCompilable("a bagged model whose fits each saw some of the features")
        fits = [refit, *map(bag_member, bagging.estimators_)]
        if not all(isinstance(fit, (*_HGB, *_FOREST)) for fit in fits):
            raise _NotCompilable("a bagged model other than of trees")
        self.members = [_Trees(blocks, fit, fit, _Head(fit, None)) for fit in fits]
        whole, bagged = vote.weights or (1, 1)
        self.weights = np.array([whole, *[bagged / len(bagging.estimators_)] * len(bagging.estimators_)])
        self.head = _Head(vote, threshold, kind="proba")
        self.vote = vote

    def score(self, X, labels: bool = True):
        matrix = self.members[0].matrix(X)
        if self.head.task == "regression":
            return self.vote.predict(matrix), None
        proba = self.vote.predict_proba(matrix)
        return (self.head.labels(proba, proba) if labels else None), proba


def _blocks(prep, columns) -> dict:
    """``{"numeric": (transformer, names), "categorical": (...), ...}`` from the fitted ColumnTransformer
    (``codes``: number columns also encoded by the target, :func:`mlkiln.pipeline.code_columns`; ``dates``: the
    parts of date columns, :func:`mlkiln.pipeline.date_part`, as ``(np.interp's keywords, names)``)."""
    numeric = [c.name for c in columns if c.kind != "categorical"]
    blocks = {"numeric": (None, []), "missing": (None, []), "codes": (None, []), "categorical": (None, []),
              "words": [], "dates": []}
    read = set()  # every column a block reads: free text may be read by none (trees above pipeline.TEXT_TREE_ROWS)
    for name, transformer, names in getattr(prep, "transformers_", []):
        if transformer == "drop" or len(names) == 0:
            continue
        read.update(names)
        if name.startswith("words"):  # pipeline.words: a column's vocabulary, read row by row (:class:`_Words`)
            blocks["words"].append(_Words(transformer, list(names)))
        elif name in DATE_PARTS:
            if not (isinstance(transformer, FunctionTransformer) and transformer.func is np.interp
                    and set(names) <= set(numeric)):
                raise _NotCompilable(f"a date's {name} other than pipeline.date_part's")
            # xp and fp as arrays once, not converted from lists on every row np.interp reads (the same values)
            part = {key: np.asarray(value, dtype=np.float64) if isinstance(value, list) else value
                    for key, value in transformer.kw_args.items()}
            blocks["dates"].append((part, list(names)))
        elif name not in blocks:
            raise _NotCompilable(f"unexpected preprocessing block {name!r}")
        else:
            blocks[name] = (transformer, list(names))
    texts = {words.name for words in blocks["words"]}
    categorical = [c.name for c in columns if c.kind == "categorical" and c.name not in texts and c.name in read]
    if (blocks["numeric"][1] != numeric or blocks["missing"][1] not in ([], numeric)
            or blocks["categorical"][1] != categorical or not set(blocks["codes"][1]) <= set(numeric)):
        raise _NotCompilable("the preprocessing columns do not match the schema")
    return blocks


class _Words:
    """A free-text column read as words (:func:`mlkiln.pipeline.words`): a row's TF-IDF weights computed here from
    the fitted vectorizer's vocabulary and idf (its analyzer, counts damped by 1 + log, then the unit norm), a
    batch's by the fitted block itself."""

    def __init__(self, block, names: list[str]):
        vectorizer = block[-1] if isinstance(block, Pipeline) else None
        if (not isinstance(vectorizer, TfidfVectorizer) or not vectorizer.sublinear_tf or vectorizer.norm != "l2"
                or not vectorizer.use_idf or len(names) != 1):
            raise _NotCompilable("free text read other than as pipeline.words reads it")
        self.name, self.block, self.width = names[0], block, len(vectorizer.vocabulary_)
        self.analyze, self.vocabulary, self.idf = vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_

    def row(self, value) -> tuple[np.ndarray, np.ndarray]:
        """One text's ``(word indices, TF-IDF weights)``; a missing text is an empty one (no words)."""
        counts = Counter(self.vocabulary[w] for w in self.analyze(value if isinstance(value, str) else "")
                         if w in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        index = np.fromiter(counts, dtype=np.intp, count=len(counts))
        weight = (np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts))) + 1.0) * self.idf[index]
        return index, weight / np.sqrt(weight @ weight)

    def matrix(self, X):
        """A batch's TF-IDF weights (sparse), as the pipeline computes them."""
        values = X[self.name] if isinstance(X, pd.DataFrame) else pd.Series(X[self.name])
        return self.block.transform(pd.DataFrame({self.name: np.asarray(values, dtype=object)}))


class _Categories:
    """Text values of one column as integer ids: 0..n-1 known, ``n`` unknown, ``n + 1`` missing."""

    dtype = object  # how _probe writes the values it asks the encoder about

    def __init__(self, name: str, categories):
        self.name = name
        self.categories = [c for c in categories if isinstance(c, str)]
        self.lookup = {c: i for i, c in enumerate(self.categories)}
        self.unknown = len(self.categories)
        self.missing = self.unknown + 1

    def probe(self) -> list:
        """One value per id, in id order, to learn how a fitted encoder treats each."""
        return [*self.categories, _UNSEEN, np.nan]

    def row_id(self, value) -> int:
        return self.lookup.get(value, self.unknown) if value == value else self.missing

    def ids(self, values) -> np.ndarray:
        if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
            # a training frame's column: look up its few categories, not its many values (10x faster)
            lookup = np.append(self.ids(np.asarray(values.cat.categories, dtype=object)), self.missing)
            return lookup[values.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
        values = np.asarray(values, dtype=object)
        ids = pd.Index(self.categories, dtype=object).get_indexer(values)
        ids[ids < 0] = self.unknown
        ids[pd.isna(values)] = self.missing
        return ids


class _Numbers(_Categories):
    """Number values of one column as integer ids (a target encoder's categories of a number column):
    0..n-1 known, ``n`` unknown, ``n + 1`` missing."""

    dtype = np.float64

    def __init__(self, name: str, categories):
        known = np.asarray(categories, dtype=np.float64)
        self.name, self.categories = name, np.sort(known[~np.isnan(known)])
        self.lookup = {float(v): i for i, v in enumerate(self.categories)}
        self.unknown = len(self.categories)
        self.missing = self.unknown + 1

    def probe(self) -> list:
        unseen = self.categories[-1] + 1.0 if len(self.categories) else 0.0
        return [*self.categories, unseen, np.nan]

    def row_id(self, value) -> int:
        return self.lookup.get(float(value), self.unknown) if value == value else self.missing

    def ids(self, values) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        at = np.minimum(np.searchsorted(self.categories, values), max(len(self.categories) - 1, 0))
        found = self.categories[at] == values if len(self.categories) else np.zeros(len(values), dtype=bool)
        ids = np.where(found, at, self.unknown)
        ids[np.isnan(values)] = self.missing
        return ids


def _probe(transformer, categories: list[_Categories]) -> list[np.ndarray]:
    """The fitted categorical block's output for every id of every column, one array per column."""
    length = max(len(c.probe()) for c in categories)
    frame = pd.DataFrame(
        {c.name: pd.Series(c.probe() + [c.probe()[0]] * (length - len(c.probe())), dtype=c.dtype)
         for c in categories}
    )
    out = transformer.transform(frame)
    out = np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)
    return [out[: len(c.probe())] for c in categories], out


class _Head:
    """From raw model outputs to predictions and probabilities, as the estimator does it."""

    def __init__(self, estimator, threshold, kind: str | None = None):
        self.task = "classification" if hasattr(estimator, "classes_") else "regression"
        self.threshold = threshold
        self.classes = getattr(estimator, "classes_", None)
        if kind is not None:
            self.kind = kind
        elif isinstance(estimator, _FOREST):
            self.kind = "proba"
        elif isinstance(estimator, _HGB):
            expected = "log_loss" if self.task == "classification" else "squared_error"
            if estimator.loss != expected:
                raise _NotCompilable(f"gradient boosting with loss {estimator.loss!r}")
            self.kind = "logit"
        else:
            self.kind = "logit"
        if threshold is not None and (self.classes is None or len(self.classes) != 2):
            raise _NotCompilable("a decision threshold on a model that is not a binary classifier")

    def finish(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(predictions, probabilities)`` from raw outputs of shape (n_rows, n_outputs)."""
        if self.task == "regression":
            return raw[:, 0], None
        if self.kind == "proba":
            proba = raw
        elif raw.shape[1] == 1:
            p = _expit(raw[:, 0])
            proba = np.column_stack([1.0 - p, p])
        else:
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            proba = shifted / shifted.sum(axis=1, keepdims=True)
        return self.labels(raw, proba), proba

    def labels(self, raw: np.ndarray, proba: np.ndarray) -> np.ndarray:
        """The predicted classes of a classifier's raw outputs and their probabilities."""
        if self.threshold is not None:
            return self.classes[(proba[:, 1] >= self.threshold).astype(int)]
        if self.kind == "logit" and raw.shape[1] == 1:
            # as scikit-learn: "> 0" on the raw score, so a tie goes to the first class
            return self.classes[(raw[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(proba if self.kind == "proba" else raw, axis=1)]


def _expit(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


class _FromNormalScores:
    """A regressor fitted on the target's normal scores: the compiled body's output mapped back to the target
    as QuantileTransformer.inverse_transform does it (normal CDF, interpolation in the training quantiles, the
    outermost quantile beyond them); a batch by that method itself."""

    def __init__(self, body, scores):
        if not isinstance(scores, QuantileTransformer) or scores.output_distribution != "normal":
            raise _NotCompilable("a target transformation other than normal scores")
        self.body, self.head, self.scores = body, body.head, scores
        self.references, self.quantiles = scores.references_, scores.quantiles_[:, 0]

    def raw_row(self, row: dict):
        u = float(ndtr(np.ravel(self.body.raw_row(row))[0]))
        if u - QUANTILE_BOUND < 0:
            return float(self.quantiles[0])
        if u + QUANTILE_BOUND > 1:
            return float(self.quantiles[-1])
        return float(np.interp(u, self.references, self.quantiles))

    def score(self, X, labels: bool = True):
        return self.scores.inverse_transform(self.body.score(X, labels)[0][:, None])[:, 0], None


class _Network:
    """A regression network on the one-hot design, its target standardised (:func:`mlkiln.pipeline.make_estimator`'s
    ``mlp``): the first layer folded per input column by :class:`_Linear` (each hidden unit an output), ReLU, the
    other layers as matrix products, then the target's scale and mean restored as StandardScaler does it."""

    def __init__(self, blocks, network, target):
        if network.activation != "relu" or network.out_activation_ != "identity":
            raise _NotCompilable(f"a network with {network.activation!r} units")
        if not isinstance(target, StandardScaler) or not target.with_mean or not target.with_std:
            raise _NotCompilable("a network's target transformed other than by standardising it")
        first = SimpleNamespace(coef_=network.coefs_[0].T, intercept_=network.intercepts_[0])
        self.first = _Linear(blocks, first, _Head(first, None))
        self.layers = [(np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64))
                       for w, b in zip(network.coefs_[1:], network.intercepts_[1:])]
        self.mean, self.scale = float(target.mean_[0]), float(target.scale_[0])
        self.head = _Head(network, None)

    def _rest(self, hidden: np.ndarray) -> np.ndarray:
        for weights, bias in self.layers:
            hidden = np.maximum(hidden, 0.0) @ weights + bias
        return hidden * self.scale + self.mean

    def raw_row(self, row: dict):
        return float(self._rest(np.atleast_2d(self.first.raw_row(row)))[0, 0])

    def score(self, X, labels: bool = True):
        return self._rest(self.first.raw(X))[:, 0], None


class _Linear:
    """Imputer, scaler, indicators, one-hot encoder and linear model folded per input column."""

    def __init__(self, blocks, estimator, head):
        self.head = head
        weights = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        self.n_out = weights.shape[0]
        intercept = np.broadcast_to(np.asarray(estimator.intercept_, dtype=np.float64), (self.n_out,)).copy()
        num, num_names = blocks["numeric"]
        cat, cat_names = blocks["categorical"]
        if blocks["codes"][0] is not None:
            raise _NotCompilable("a linear model's number columns encoded by the target")
        if blocks["dates"]:
            raise _NotCompilable("a linear model reading a date's parts")
        n_num = len(num_names)
        self.num_names = num_names
        self.mean = self.scale = self.num_weights = np.zeros((0,))
        self.missing_terms = np.zeros((0, self.n_out))
        offset = 0
        if num is not None:
            imputer, scaler = _numeric_steps(num)
            self.mean, self.scale = scaler.mean_[:n_num], scaler.scale_[:n_num]
            self.num_weights = weights[:, :n_num].T
            self.missing_terms = ((imputer.statistics_ - self.mean) / self.scale)[:, None] * self.num_weights
            flagged, absent, present = _indicators(imputer, scaler, blocks["missing"][0], n_num)
            ind_w = weights[:, n_num : n_num + len(flagged)].T
            intercept += absent @ ind_w
            self.missing_terms[flagged] += (present - absent)[:, None] * ind_w
            offset = n_num + len(flagged)
        self.categories, self.tables = [], []
        if cat is not None:
            self.categories = [_Categories(n, c) for n, c in zip(cat_names, _one_hot(cat).categories_)]
            probes, out = _probe(cat, self.categories)
            widths = _one_hot_widths(_one_hot(cat))
            if out.shape[1] != sum(widths):
                raise _NotCompilable("unexpected one-hot layout")
            first = offset
            for probe, width in zip(probes, widths):
                columns = slice(offset - first, offset - first + width)
                self.tables.append(probe[:, columns] @ weights[:, offset : offset + width].T)
                offset += width
        self.words = blocks["words"]
        self.word_weights = []  # per free-text column: each word's weight, (words, outputs)
        for words in self.words:
            self.word_weights.append(weights[:, offset : offset + words.width].T.copy())
            offset += words.width
        if offset != weights.shape[1]:
            raise _NotCompilable("unexpected width of the preprocessed input")
        self.intercept = intercept
        # one row adds Python floats (one output) or small arrays (several)
        scalar = self.n_out == 1
        self._row_intercept = float(intercept[0]) if scalar else intercept
        self._row_numeric = [
            (name, float(mu), float(s), float(w[0]) if scalar else w, float(m[0]) if scalar else m)
            for name, mu, s, w, m in zip(num_names, self.mean, self.scale, self.num_weights, self.missing_terms)
        ]
        self._row_categorical = [
            (c.name, c.lookup, c.unknown, c.missing, t[:, 0].tolist() if scalar else list(t))
            for c, t in zip(self.categories, self.tables)
        ]

    def raw_row(self, row: dict):
        total = self._row_intercept
        for name, mean, scale, weight, missing_term in self._row_numeric:
            value = row[name]
            total = total + ((value - mean) / scale * weight if value == value else missing_term)
        for name, lookup, unknown, missing, table in self._row_categorical:
            value = row[name]
            total = total + table[lookup.get(value, unknown) if value == value else missing]
        for words, weights in zip(self.words, self.word_weights):
            index, weight = words.row(row[words.name])
            part = weight @ weights[index]
            total = total + (float(part[0]) if self.n_out == 1 else part)
        return total

    def raw(self, X, words: bool = True) -> np.ndarray:
        """Raw outputs of ``X`` (without ``words``: less the free-text columns' parts, which :meth:`terms` adds)."""
        n = _n_rows(X)
        out = np.broadcast_to(self.intercept, (n, self.n_out)).copy()
        if self.num_names:
            values = _numeric_matrix(X, self.num_names)
            missing = np.isnan(values)
            scaled = np.where(missing, 0.0, (values - self.mean) / self.scale)
            out += scaled @ self.num_weights + missing @ self.missing_terms
        for categories, table in zip(self.categories, self.tables):
            out += table[categories.ids(X[categories.name])]
        for column, weights in zip(self.words if words else (), self.word_weights):
            out += column.matrix(X) @ weights
        return out

    def score(self, X, labels: bool = True):
        return self.head.finish(self.raw(X))

    def terms(self, X) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(raw outputs, each input column's additive part of them)``: the raw outputs less one column's part
        plus another part of the same column is the model on that column changed, without scoring every column."""
        out = self.raw(X, words=False)  # each text's words are counted once, below
        parts = {}
        if self.num_names:
            values = _numeric_matrix(X, self.num_names)
            missing = np.isnan(values)
            scaled = np.where(missing, 0.0, (values - self.mean) / self.scale)
            for j, name in enumerate(self.num_names):
                parts[name] = scaled[:, j, None] * self.num_weights[j] + missing[:, j, None] * self.missing_terms[j]
        for categories, table in zip(self.categories, self.tables):
            parts[categories.name] = table[categories.ids(X[categories.name])]
        for words, weights in zip(self.words, self.word_weights):
            parts[words.name] = np.asarray(words.matrix(X) @ weights)
            out += parts[words.name]
        return out, parts


def _indicators(imputer, scaler, missing, n_num: int) -> tuple:
    """``(flagged columns, each indicator's value where present, where missing)``: 0 and 1 from the ``missing``
    block, or (bundles written before indicators were a block of their own) the imputer's indicators as the scaler
    after it standardised them."""
    if isinstance(missing, MissingIndicator) and imputer.indicator_ is None:
        flagged = missing.features_
        return flagged, np.zeros(len(flagged)), np.ones(len(flagged))
    if missing is not None:
        raise _NotCompilable("missing-value indicators in two places")
    if imputer.indicator_ is None:
        return np.zeros(0, dtype=int), np.zeros(0), np.zeros(0)
    ind = slice(n_num, n_num + len(imputer.indicator_.features_))
    return (imputer.indicator_.features_, (0.0 - scaler.mean_[ind]) / scaler.scale_[ind],
            (1.0 - scaler.mean_[ind]) / scaler.scale_[ind])


def _numeric_steps(transformer):
    steps = [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else []
    if len(steps) != 2 or not isinstance(steps[0], SimpleImputer) or not isinstance(steps[1], StandardScaler):
        raise _NotCompilable("numeric preprocessing is not SimpleImputer + StandardScaler")
    imputer, scaler = steps
    if imputer.strategy == "constant" or np.isnan(imputer.statistics_).any() or not (scaler.with_mean and scaler.with_std):
        raise _NotCompilable("numeric preprocessing with options this module does not fold")
    return imputer, scaler


def _one_hot(transformer) -> OneHotEncoder:
    encoder = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
    if not isinstance(encoder, OneHotEncoder) or encoder.drop_idx_ is not None:
        raise _NotCompilable("categorical preprocessing is not a OneHotEncoder without drop")
    return encoder


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    """Output columns per input column: frequent categories, plus one shared slot for infrequent ones."""
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(encoder.categories_)
    return [len(c) - (0 if r is None else len(r) - 1) for c, r in zip(encoder.categories_, infrequent)]


class _Trees:
    """Tree ensembles as flat node arrays over one feature vector per row.

    The feature vector is ``[x, x with NaN as -inf, categorical decisions]``.
    A node whose missing values go left reads the second copy, so "go left"
    is always ``value <= threshold`` (NaN compares false, -inf true). A
    categorical split of gradient boosting reads a virtual feature, 0 (left)
    or 1 (right), looked up per category id, against threshold 0.5.
    """

    def __init__(self, blocks, estimator, final, head):
        self.head, self.final, self.estimator = head, final, estimator
        num, num_names = blocks["numeric"]
        cat, cat_names = blocks["categorical"]
        if num is not None and not (isinstance(num, FunctionTransformer) and num.func is None) and num != "passthrough":
            raise _NotCompilable("numeric preprocessing of a tree model is not passthrough")
        self.num_names, self.dates = num_names, blocks["dates"]
        self.n_before = len(num_names) + sum(len(names) for _, names in self.dates)  # the columns before the codes
        self.categories, self.codes = self._number_codes(blocks["codes"], estimator)
        if cat is not None:
            if not isinstance(cat, (OrdinalEncoder, TargetEncoder)):
                raise _NotCompilable("categorical preprocessing of a tree model is neither ordinal nor target encoding")
            text = [_Categories(n, c) for n, c in zip(cat_names, cat.categories_)]
            self.categories += text
            self.codes += _encoded(cat, text)
        self.n_features = self.n_before + sum(code.shape[1] for code in self.codes)
        self.order, self.tree_codes = _model_view(estimator, self.n_features, self.codes)
        self.float32 = isinstance(estimator, _FOREST)
        trees, self.offset, self.divisor = _tree_arrays(estimator, self.n_features)
        self.virtual = self._categorical_splits(trees, estimator)
        walkable = all(2 <= t["n_leaves"] <= MAX_BITVECTOR_LEAVES for t in trees)
        self.walk = _Bitvectors(trees) if walkable else _Levels(trees)

    @staticmethod
    def _number_codes(block, estimator) -> tuple[list, list]:
        """The number columns a target encoder also encodes (block ``codes``), as the text columns' ids and codes:
        its output sits between the numbers and the text columns'."""
        encoder, names = block
        if encoder is None:
            return [], []
        if not isinstance(encoder, TargetEncoder) or getattr(estimator, "_preprocessor", None) is not None:
            raise _NotCompilable("number columns encoded other than by the target's mean beside numeric splits")
        numbers = [_Numbers(n, c) for n, c in zip(names, encoder.categories_)]
        return numbers, _encoded(encoder, numbers)

    def _categorical_splits(self, trees, estimator) -> list[np.ndarray]:
        """Point each categorical split at a virtual 0/1 feature; return its table per column.

        The table of column ``j`` has one row per category id and one column
        per split on ``j``: 1.0 where gradient boosting sends that id right.
        """
        splits = [[] for _ in self.categories]
        for tree in trees:
            for node in np.flatnonzero(tree["categorical"]):
                splits[self.order[tree["raw_feature"][node]] - self.n_before].append((tree, node))
        if not any(splits):
            return [np.zeros((c.missing + 1, 0)) for c in self.categories]
        known, f_idx_map = estimator._bin_mapper.make_known_categories_bitsets()
        tables, start = [], 2 * self.n_features
        for codes, column_splits in zip(self.tree_codes, splits):
            table = _hgb_goes_right(codes[:, 0], column_splits, known, f_idx_map).T.astype(np.float64)
            for k, (tree, node) in enumerate(column_splits):
                tree["feature"][node] = start + k
                tree["threshold"][node] = 0.5
            tables.append(table)
            start += len(column_splits)
        return tables

    def raw_row(self, row: dict) -> np.ndarray:
        ids = [c.row_id(row[c.name]) for c in self.categories]
        x = np.array([*(row[n] for n in self.num_names),
                      *(np.interp(row[n], **part) for part, names in self.dates for n in names),
                      *(v for code, i in zip(self.tree_codes, ids) for v in code[i])], dtype=np.float64)
        x = x[self.order]
        if self.float32:
            x = x.astype(np.float32).astype(np.float64)
        xs = np.concatenate((x, np.where(np.isnan(x), -np.inf, x), *(v[i] for v, i in zip(self.virtual, ids))))
        return self.walk.leaf_sum(xs) / self.divisor + self.offset

    def matrix(self, X) -> np.ndarray:
        """The preprocessed batch, as the pipeline's preprocessing makes it: numbers, dates' parts, each column's
        codes."""
        columns = [_numeric_matrix(X, self.num_names)]
        columns += [np.interp(_numeric_matrix(X, names), **part) for part, names in self.dates]
        columns += [code[c.ids(X[c.name])] for c, code in zip(self.categories, self.codes)]
        return np.hstack(columns)

    def score(self, X, labels: bool = True):
        """``(predictions, probabilities)`` of a batch, by scikit-learn's own tree code (it is fastest there).

        ``labels=False`` (an ensemble's member: only its probabilities are
        voted) skips the predictions. scikit-learn's ``predict`` and
        ``predict_proba`` of gradient boosting each walk every tree; here one
        walk gives both (its raw outputs, and its loss's probabilities of them),
        so the labels are the rule it applies to those raw outputs; a forest's
        are the most probable class, as its own.
        """
        matrix = self.matrix(X)
        if self.head.task == "regression":
            return self.final.predict(matrix), None
        if isinstance(self.estimator, HistGradientBoostingClassifier):
            raw = self.estimator._raw_predict(matrix)
            proba = self.estimator._loss.predict_proba(raw)
            return (self.head.labels(raw, proba) if labels else None), proba
        proba = self.final.predict_proba(matrix)
        if not labels:
            return None, proba
        if isinstance(self.final, _FOREST):
            return self.final.classes_.take(np.argmax(proba, axis=1)), proba
        return self.final.predict(matrix), proba


def _encoded(encoder, categories: list[_Categories]) -> list[np.ndarray]:
    """The encoder's output for every id of every column: one array per column, one column per encoded feature
    (ordinal codes: one; target encoding: one per class, two classes: one)."""
    probes, out = _probe(encoder, categories)
    width = out.shape[1] // len(categories)
    return [p[:, i * width:(i + 1) * width] for i, p in enumerate(probes)]


def _model_view(estimator, n_features: int, codes: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """How the trees see the preprocessed row: feature order and category codes (one array per column,
    a row per category id, a column per encoded feature: one for ordinal codes, one per class for target means).

    Gradient boosting with categorical features re-encodes them with its own
    internal OrdinalEncoder and puts them first; ``order[i]`` is the
    preprocessed column its trees call feature ``i``, and ``tree_codes`` are
    the codes its trees compare, per category id.
    """
    inner = getattr(estimator, "_preprocessor", None)
    if inner is None:
        return np.arange(n_features), codes
    order = np.empty(n_features, dtype=np.intp)
    for name, _, selected in inner.transformers_:
        if name in ("encoder", "numerical"):
            order[inner.output_indices_[name]] = np.arange(n_features)[selected]
    length = max(len(c) for c in codes)
    probe = np.zeros((length, n_features))
    n_numeric = n_features - len(codes)
    for j, c in enumerate(codes):  # native categories: one code column each
        probe[:, n_numeric + j] = np.concatenate([c[:, 0], np.full(length - len(c), c[0, 0])])
    seen = inner.transform(probe)[:, np.argsort(order)]
    return order, [seen[: len(c), n_numeric + j:n_numeric + j + 1] for j, c in enumerate(codes)]


def _hgb_goes_right(codes: np.ndarray, splits: list[tuple[dict, int]], known: np.ndarray,
                    f_idx_map: np.ndarray) -> np.ndarray:
    """Where gradient boosting sends each category code at each of ``splits`` (its Cython rules), as a boolean
    array (split, code): True is right. All at once: one split at a time in Python took 30 s of a run with
    3,110 trees (nycflights13's tail numbers)."""
    if not splits:
        return np.zeros((0, len(codes)), dtype=bool)
    missing_way = np.array([not tree["missing_left"][node] for tree, node in splits])[:, None]
    left = np.stack([tree["left_bitsets"][tree["bitset_idx"][node]] for tree, node in splits]).astype(np.int64)
    seen = np.stack([known[f_idx_map[tree["raw_feature"][node]]] for tree, node in splits]).astype(np.int64)
    valid = ~np.isnan(codes) & (codes >= 0) & (codes < 32 * left.shape[1])
    code = np.where(valid, codes, 0).astype(np.int64)
    word, bit = code // 32, code % 32
    in_left = (left[:, word] >> bit) & 1 == 1
    in_known = (seen[:, word] >> bit) & 1 == 1
    return np.where(valid & in_left, False, np.where(valid & in_known, True, missing_way))


def _tree_arrays(estimator, n_features: int) -> tuple[list[dict], np.ndarray, float]:
    """Each tree's node arrays, plus the constant added to and the divisor of the leaf sum."""
    if getattr(estimator, "n_features_in_", n_features) != n_features:
        raise _NotCompilable("the model's input width does not match the schema")
    trees = []
    if isinstance(estimator, _HGB):
        n_out = estimator.n_trees_per_iteration_
        for iteration in estimator._predictors:
            for k, predictor in enumerate(iteration):
                nodes = predictor.nodes
                value = np.zeros((len(nodes), n_out))
                value[:, k] = nodes["value"]
                trees.append(_tree(
                    nodes["feature_idx"], nodes["num_threshold"], nodes["left"], nodes["right"],
                    nodes["missing_go_to_left"], nodes["is_leaf"], value, n_features,
                    categorical=nodes["is_categorical"], bitset_idx=nodes["bitset_idx"],
                    left_bitsets=predictor.raw_left_cat_bitsets,
                ))
        return trees, np.asarray(estimator._baseline_prediction, dtype=np.float64).ravel(), 1.0
    if estimator.n_outputs_ != 1:
        raise _NotCompilable("a forest with several outputs")
    for member in estimator.estimators_:
        t = member.tree_
        leaf = t.children_left < 0
        trees.append(_tree(t.feature, t.threshold, t.children_left, t.children_right,
                           t.missing_go_to_left, leaf, t.value[:, 0, :], n_features))
    return trees, np.zeros(1), float(len(estimator.estimators_))


def _tree(feature, threshold, left, right, missing_left, leaf, value, n_features, **categorical) -> dict:
    leaf = np.asarray(leaf, dtype=bool)
    missing_left = np.asarray(missing_left, dtype=bool)
    raw_feature = np.where(leaf, 0, feature).astype(np.intp)
    tree = {
        "raw_feature": raw_feature,
        "feature": raw_feature + n_features * missing_left,
        "threshold": np.asarray(threshold, dtype=np.float64).copy(),
        "left": np.where(leaf, -1, left).astype(np.intp),
        "right": np.where(leaf, -1, right).astype(np.intp),
        "missing_left": missing_left,
        "leaf": leaf,
        "value": np.asarray(value, dtype=np.float64),
        "n_leaves": int(leaf.sum()),
        "categorical": np.asarray(categorical.get("categorical", np.zeros(len(leaf))), dtype=bool) & ~leaf,
    }
    tree.update({k: v for k, v in categorical.items() if k != "categorical"})
    return tree


class _Bitvectors:
    """QuickScorer: every split that sends the row right clears the leaves of its left subtree.

    Leaves are numbered left to right; the exit leaf of a tree is the lowest
    bit still set after AND-ing the masks of all its right-going splits.
    """

    def __init__(self, trees: list[dict]):
        features, thresholds, masks, starts, values, first_leaf = [], [], [], [], [], []
        n_internal = n_leaves = 0
        for tree in trees:
            order, tree_masks = [], {}
            _number_leaves(tree, 0, order, tree_masks)
            internal = np.array(sorted(tree_masks), dtype=np.intp)
            starts.append(n_internal)
            first_leaf.append(n_leaves)
            features.append(tree["feature"][internal])
            thresholds.append(tree["threshold"][internal])
            masks.append(np.array([tree_masks[i] for i in internal], dtype=np.uint64))
            values.append(tree["value"][order])
            n_internal += len(internal)
            n_leaves += len(order)
        self.feature = np.concatenate(features)
        self.threshold = np.concatenate(thresholds)
        self.masks = np.concatenate(masks)
        self.starts = np.array(starts, dtype=np.intp)
        self.first_leaf = np.array(first_leaf, dtype=np.intp)
        self.values = np.concatenate(values)

    def leaf_sum(self, xs: np.ndarray) -> np.ndarray:
        left = xs[self.feature] <= self.threshold
        remaining = np.bitwise_and.reduceat(np.where(left, _ALL_LEAVES, self.masks), self.starts)
        lowest = (remaining & (~remaining + np.uint64(1))).astype(np.float64)
        return self.values[self.first_leaf + np.frexp(lowest)[1] - 1].sum(axis=0)


def _number_leaves(tree: dict, node: int, order: list, masks: dict) -> list[int]:
    """Number the leaves under ``node`` left to right; record each split's mask; return its leaves."""
    if tree["leaf"][node]:
        order.append(node)
        return [len(order) - 1]
    below_left = _number_leaves(tree, tree["left"][node], order, masks)
    below_right = _number_leaves(tree, tree["right"][node], order, masks)
    masks[node] = int(_ALL_LEAVES) & ~sum(1 << bit for bit in below_left)
    return below_left + below_right


class _Levels:
    """All trees walked together one level per step; a leaf loops to itself."""

    def __init__(self, trees: list[dict]):
        offsets = np.cumsum([0] + [len(t["leaf"]) for t in trees])
        self.roots = offsets[:-1].astype(np.intp)
        own = np.arange(offsets[-1])
        leaf = np.concatenate([t["leaf"] for t in trees])
        left = np.concatenate([t["left"] + o for t, o in zip(trees, offsets)])
        right = np.concatenate([t["right"] + o for t, o in zip(trees, offsets)])
        # indexed by "goes left" (0 or 1)
        self.children = np.column_stack([np.where(leaf, own, right), np.where(leaf, own, left)])
        self.feature = np.concatenate([t["feature"] for t in trees])
        self.threshold = np.concatenate([t["threshold"] for t in trees])
        self.values = np.concatenate([t["value"] for t in trees])
        self.depth = max(_depth(t) for t in trees)

    def leaf_sum(self, xs: np.ndarray) -> np.ndarray:
        nodes = self.roots
        for _ in range(self.depth):
            left = xs[self.feature[nodes]] <= self.threshold[nodes]
            nodes = self.children[nodes, left.view(np.int8)]
        return self.values[nodes].sum(axis=0)


def _depth(tree: dict) -> int:
    depth, level = 0, [0]
    while True:
        level = [c for n in level if not tree["leaf"][n] for c in (tree["left"][n], tree["right"][n])]
        if not level:
            return depth
        depth += 1


def _n_rows(X) -> int:
    return len(X) if isinstance(X, pd.DataFrame) else len(next(iter(X.values())))


def _numeric_matrix(X, names: list[str]) -> np.ndarray:
    if not names:
        return np.zeros((_n_rows(X), 0))
    if isinstance(X, pd.DataFrame):  # one call: column by column, 2,000 columns cost 0.1 s a call in pandas alone
        return X[list(names)].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.column_stack([np.asarray(X[name], dtype=np.float64) for name in names])


def _one_row_frame(row: dict, columns: Sequence[Column]) -> pd.DataFrame:
    return rows_frame([row], columns)


def rows_frame(rows: Sequence[dict], columns: Sequence[Column]) -> pd.DataFrame:
    """Conformed records (:func:`mlkiln.schema.conform_record`) as the frame :meth:`Predictor.score` takes."""
    return pd.DataFrame({c.name: pd.Series([row[c.name] for row in rows],
                                           dtype=object if c.kind == "categorical" else np.float64)
                         for c in columns})
