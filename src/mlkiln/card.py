"""The model card: the typed, versioned contract between training and everything after it.

``workflow.train`` makes one :class:`Card`; ``card.json`` stores it
(:meth:`Card.to_json`); predict, serve, report, summary and ``train.py``
read it back (:meth:`Card.from_json`) and use attributes, never string keys.

Versions: 1 is the untyped card of mlkiln 0.1 (no ``card_version`` key; the
same fields, read as they are); 2 adds ``card_version``; 3 adds ``Column.comma`` (how training read a comma
in a column's numbers, which an older mlkiln would ignore and read "2,980" otherwise); 4 adds
``Column.date_order`` (13/02/2020 is written day first, so 01/02/2020 is February 1st); 5 adds
``ModelInfo.bagged`` (the extra fits of a bagged model, which ``train.py`` rebuilds); 6 adds ``ModelInfo.texts`` and
``tree_words`` (free-text columns read as words, which ``train.py`` rebuilds); 7 adds ``ModelInfo.dates`` (the
parts of date columns trees read, which ``train.py`` rebuilds). A card newer than
:data:`CARD_VERSION` is refused with the mlkiln version that wrote it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, get_type_hints

from . import __version__
from .errors import BundleError
from .jsonio import plain
from .options import C_NOTE

CARD_VERSION = 7

@dataclass(frozen=True)
class Column:
    """One input column as training saw it: what :func:`mlkiln.schema.conform` checks new data against."""

    name: str
    kind: str  # numeric, categorical or datetime (seconds since the epoch once coerced)
    dtype: str
    missing: float
    n_categories: int | None = None
    categories: tuple[str, ...] | None = None  # the most frequent ones, at most schema.MAX_LISTED_CATEGORIES
    min: float | None = None
    max: float | None = None
    # text that training read as missing in this numeric or date column (the most frequent, at most
    # schema.MAX_LISTED_UNREADABLE), read so again at prediction; other unreadable text is an error there
    unreadable: tuple[str, ...] | None = None
    # how training read a comma in this column's numbers (schema.comma_reading): "decimal" ("2,980" is 2.98) or
    # "grouping" (2980); None: training saw no comma there, and each batch's own values decide
    comma: str | None = None
    # how training read this date column's dd/mm/yyyy or mm/dd/yyyy text (schema.date_order): "day first" or
    # "month first"; None: no such date in training, and each batch's own values decide
    date_order: str | None = None


@dataclass(frozen=True)
class Target:
    name: str
    dtype: str
    classes: tuple | None = None  # classification only, sorted


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    target: Target

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns}


@dataclass(frozen=True)
class Metric:
    name: str
    why: str
    greater_is_better: bool


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: a family's pipeline with its settings and its weight in the vote."""

    name: str
    family: str
    params: dict[str, Any]
    weight: int  # times ensemble selection picked it: its weight in the vote (the vote divides by their sum)
    trees: int | None = None  # gradient boosting: the trees of the final fit (chosen by CV, or by early stopping)


@dataclass(frozen=True)
class ModelInfo:
    family: str  # a registered family, or "ensemble" (then ``members`` says which and ``params`` their weights)
    estimator: str
    params: dict[str, Any]
    threshold: float | None = None  # tuned decision threshold on P(positive class), binary only
    max_categories: int | None = None  # the encoders' category cap, when a text column needed it
    c_meaning: str = C_NOTE
    members: tuple[Member, ...] = ()
    trees: int | None = None  # gradient boosting: the trees of the final fit (chosen by CV, or by early stopping)
    threshold_metric: str | None = None  # the metric the threshold was tuned for (None in cards before it)
    codes: tuple[str, ...] = ()  # number columns the model's target-encoding family also encodes (pipeline.code_columns)
    bagged: int = 0  # extra fits, each on part of the rows, averaged with the fit on all of them (pipeline.bag)
    texts: tuple[str, ...] = ()  # free-text columns the model reads as words (schema.text_columns, pipeline.words)
    tree_words: bool = True  # trees read them too (pipeline.TEXT_TREE_ROWS); else only linear models
    dates: dict[str, list[str]] = field(default_factory=dict)  # date column -> the parts its trees read (pipeline.date_parts)


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int | None
    family: str
    cv_mean: float | None
    cv_std: float | None
    fit_time_s: float | None
    search_time_s: float
    candidates: int
    params: dict[str, Any]
    error: str | None
    search: str | None
    status: str
    not_reached: int = 0


@dataclass(frozen=True)
class Split:
    test_size: float
    seed: int
    folds: int
    n_train: int
    n_test: int
    stratified: bool


@dataclass(frozen=True)
class DataInfo:
    source: str
    sha256: str
    rows: int
    columns: int
    rows_used: int
    rows_dropped_missing_target: int
    read_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchStep:
    """One step of a sampled search (a rung) or the final fit: the rows its fits saw."""

    step: str  # "rung 1", "rung 2", ..., "rung 3, more candidates" (the time the rungs left), "final fit"
    rows: int  # rows each candidate was cross-validated on (a rung), or fitted on (the final fit)
    candidates: int  # candidates scored (a rung), models fitted (the final fit: ensemble members)
    seconds: float


@dataclass(frozen=True)
class NotStarted:
    """A candidate the budget never started: its estimated time did not fit in what was left."""

    family: str
    params: dict[str, Any]
    rows: int
    estimated_s: float
    left_s: float


@dataclass(frozen=True)
class TuningInfo:
    search: str
    budget_s: float | None
    trials: int | None
    cores: int
    dask: bool
    ensemble: bool = True  # whether an ensemble of the families was weighed
    plotted: dict[str, str] = field(default_factory=dict)  # family -> the hyperparameter the report plots
    #: the rows each step saw: the sampled search's rungs and the final fit (only the final fit without sampling)
    steps: tuple[SearchStep, ...] = ()
    not_started: tuple[NotStarted, ...] = ()  # candidates a --budget did not start
    max_latency_us: float | None = None  # the limit on one row's scoring time the choice kept to, if any


@dataclass(frozen=True)
class Evaluation:
    """Which rows the metrics and the report's numbers saw, and how, so a large table's card says so."""

    metrics: str  # how the train and test metrics and the report's curves were computed
    rows: dict[str, int]  # rows seen: "train", "test" (every row), "importance", "scatter" (seeded samples)
    seed: int  # the samples' seed


@dataclass(frozen=True)
class Card:
    """Everything ``mlkiln inspect`` shows and ``card.json`` stores.

    ``metrics`` maps a split (``train``, ``validation``, ``test``) to its
    metrics (see :mod:`mlkiln.metrics`; validation holds ``mean`` and ``std``
    over the folds); ``cv_results`` maps a family to its scored candidates.
    Both stay mappings: their keys depend on the task and the search.
    """

    task: str
    target: str
    metric: Metric
    model: ModelInfo
    leaderboard: tuple[LeaderboardRow, ...]
    cv_results: dict[str, list]
    metrics: dict[str, dict]
    schema: Schema
    excluded: dict[str, str]
    dropped_by_user: tuple[str, ...]
    data: DataInfo
    split: Split
    tuning: TuningInfo
    versions: dict[str, str]
    train_seconds: float
    created_at: str
    leakage: tuple[dict, ...] = ()  # evidence of every combination leak, copied test rows and ceiling alarm (mlkiln.leakage)
    profile: dict | None = None  # the training rows' drift profile (mlkiln.drift); None in bundles made before it
    evaluation: Evaluation | None = None  # how the metrics were computed; None in bundles made before it
    latency_us: float | None = None  # median microseconds to score one row alone (compiled predictor), measured
    mlkiln_version: str = __version__
    card_version: int = CARD_VERSION

    @property
    def classes(self) -> tuple:
        """The target's classes (empty for regression)."""
        return tuple(self.schema.target.classes or ())

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.schema.columns

    def to_dict(self) -> dict:
        """The card as strict JSON values."""
        return plain(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False).encode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Card:
        """Read a stored card; refuse one newer than this mlkiln understands.

        Raises :class:`BundleError` for malformed JSON, a newer version or a missing field.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BundleError(f"card.json is not valid JSON: {exc}") from exc
        except RecursionError:  # a card is a few levels deep; thousands are an edited file
            raise BundleError("card.json is nested too deeply to be a model card; the bundle was edited: "
                              "train the model again") from None
        if not isinstance(data, dict):
            raise BundleError("card.json does not hold a model card")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Card:
        version = data.get("card_version", 1)
        if not isinstance(version, int) or version > CARD_VERSION:
            writer = data.get("mlkiln_version")
            advice = (f"pip install 'mlkiln>={writer}'" if isinstance(writer, str) and writer != __version__
                      else "the card names no newer mlkiln: it was edited, or written by a development version")
            raise BundleError(f"the card is version {version}, written by mlkiln {writer or '?'}; this mlkiln "
                              f"({__version__}) reads versions up to {CARD_VERSION}: {advice}")
        try:
            return _build(cls, {**data, "card_version": version})
        except KeyError as exc:
            raise BundleError(f"card.json (version {version}) lacks {exc.args[0]}; train the model again") from exc
        except (TypeError, ValueError) as exc:
            raise BundleError(f"card.json (version {version}) is malformed: {exc}") from exc


def _build(cls, data: dict):
    """A dataclass from a JSON object, nested dataclasses and tuples included; unknown keys are ignored."""
    hints = get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f"{cls.__name__}.{f.name}")
            continue
        try:
            values[f.name] = _value(hints[f.name], data[f.name])
        except _WrongType as exc:
            raise _WrongType(f"{f.name}.{exc.where}" if exc.where else f.name, exc.why) from None
    return cls(**values)


class _WrongType(TypeError):
    """A card field whose JSON value is not of its type, with the field's dotted path (``schema.columns.missing``)."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}" if where else why)
        self.where, self.why = where, why


#: what a card field's JSON value must be, by its type hint: an edited card holding text where a mapping belongs
#: was an internal error in ``report``, after ``inspect`` and ``predict`` had accepted it
_JSON_TYPES = {dict: (dict,), str: (str,), bool: (bool,), int: (int,), float: (int, float), tuple: (list, tuple)}


def _value(hint, value):
    if value is None:
        return None
    types = [t for t in get_args(hint) if t is not type(None)] if get_origin(hint) is not tuple else []
    if types and get_origin(hint) is not dict:  # Optional[X] / X | None
        hint = types[0]
    wanted = _JSON_TYPES.get(get_origin(hint) or hint)
    if wanted and (not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted)):
        raise _WrongType("", f"expected {' or '.join(t.__name__ for t in wanted)}, got {type(value).__name__} {value!r:.40}")
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if hint is tuple:
        return tuple(value)
    if get_origin(hint) is tuple:
        (item, *_) = get_args(hint) or (Any,)
        return tuple(_value(item, v) for v in value)
    return value
