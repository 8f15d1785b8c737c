"""Use a bundle: load it safely, predict on new data, evaluate on new labelled data.

Every input goes through :func:`mlkiln.schema.conform`, so ``predict``,
``evaluate``, the Python API and the HTTP service apply the same checks.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import bundle
from .compiled import Predictor, compile_pipeline
from .data import read_table
from .errors import MlkilnError
from .schema import coerce_target, conform, conform_record

log = logging.getLogger("mlkiln")


class Model:
    """A fitted pipeline with its card: validated ``predict`` and ``predict_proba``."""

    def __init__(self, pipeline, card: dict):
        self.pipeline = pipeline
        self.card = card

    @property
    def task(self) -> str:
        return self.card["task"]

    @property
    def classes(self) -> list:
        return self.card["schema"]["target"].get("classes", [])

    @cached_property
    def predictor(self) -> Predictor:
        """The pipeline compiled for fast predictions, built on first use (or scikit-learn, saying why)."""
        return compile_pipeline(self.pipeline, self.card["schema"]["columns"])

    def predict_record(self, record: dict) -> dict:
        """``{"prediction": ...}`` (plus ``"probabilities"`` by class) for one record, in microseconds.

        The record is checked by :func:`mlkiln.schema.conform_record`: a
        missing column, a wrong type or a field the model does not use is an
        :class:`MlkilnError` naming the field.
        """
        row = conform_record(record, self.card["schema"]["columns"], self.card["target"])
        prediction, proba = self.predictor.score_row(row)
        if proba is None:
            return {"prediction": prediction}
        return {"prediction": prediction, "probabilities": dict(zip(map(str, self.classes), proba))}

    def prepare(self, data) -> pd.DataFrame:
        """New data as the pipeline expects it; raises :class:`MlkilnError` when it does not fit."""
        frame = _as_frame(data)
        return conform(frame, self.card["schema"]["columns"], self.card["target"])

    def predict(self, data) -> np.ndarray:
        """Predicted values (regression) or labels (classification, at the tuned threshold)."""
        X = self.prepare(data)
        if len(X) == 0:
            return np.empty(0, dtype="float64" if self.task == "regression" else object)
        return self.predictor.score(X)[0]

    def predict_proba(self, data) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes`."""
        if self.task != "classification":
            raise MlkilnError("predict_proba is only for classification models")
        X = self.prepare(data)
        if len(X) == 0:
            return np.empty((0, len(self.classes)))
        return self.predictor.score(X)[1]

    def predict_frame(self, data) -> pd.DataFrame:
        """The input columns plus ``prediction`` and, for classification, ``proba_<class>`` columns."""
        frame = _as_frame(data)
        return frame.assign(**self.score_columns(frame))

    def score_columns(self, frame: pd.DataFrame, first_row: int = 1) -> dict[str, np.ndarray]:
        """The columns :meth:`predict_frame` adds to ``frame``, by name; errors count rows from ``first_row``.

        Streaming scoring (:mod:`mlkiln.scoring`) appends them to each batch
        of a file, whose first row is ``first_row`` of the file.
        """
        X = conform(frame, self.card["schema"]["columns"], self.card["target"], first_row=first_row)
        name = _free_name(frame.columns, "prediction")
        if len(X) == 0:
            return {name: np.empty(0, dtype="float64")}
        prediction, proba = self.predictor.score(X)
        scores = {name: prediction}
        if self.task == "classification":
            for i, cls in enumerate(self.classes):
                scores[_free_name([*frame.columns, *scores], f"proba_{cls}")] = proba[:, i]
        return scores

    def evaluate(self, data, report: str | os.PathLike | None = None) -> dict:
        """The training-time metrics on new labelled data (rows with a missing target are skipped).

        With ``report``, also write the evaluation report there (HTML, and its
        JSON beside it), with curves and importances on this data; see
        :func:`mlkiln.report.write_evaluation`.
        """
        from .workflow import evaluate_pipeline

        frame = _as_frame(data)
        target = self.card["target"]
        if target not in frame.columns:
            raise MlkilnError(f"evaluation data has no target column {target!r}")
        y = coerce_target(frame[target], self.task)
        if len(y) == 0:
            raise MlkilnError(f"evaluation data has no usable values in target column {target!r}")
        if len(y) < len(frame):
            log.warning("skipping %d row(s) whose target is missing", len(frame) - len(y))
        X = conform(frame.loc[y.index], self.card["schema"]["columns"], target)
        if self.task == "classification":
            unknown = sorted(set(y.unique().tolist()) - set(self.classes), key=str)
            if unknown:
                raise MlkilnError(f"evaluation data has class(es) the model never saw: {', '.join(map(repr, unknown))}")
        result = evaluate_pipeline(self.pipeline, X, y, self.task, self.classes or None)
        if report is not None:
            from . import report as reporting

            source = Path(data).name if isinstance(data, (str, os.PathLike)) else "DataFrame"
            diagnostics = reporting.diagnostics(self.pipeline, X, y, self.card)
            reporting.write_evaluation(report, self.card, diagnostics, result, source)
        return result


def load(path: str | os.PathLike, trust_pickle: bool = False) -> Model:
    """Load a bundle after checking every file against its manifest.

    Parameters
    ----------
    path : path
        The bundle directory written by ``mlkiln train`` or ``Run.save``.
    trust_pickle : bool
        Load ``model.joblib`` (runs code from the file) instead of the audited
        ``model.skops``. Only for bundles from a source you trust.
    """
    card = bundle.read_card(path)
    return Model(bundle.load_pipeline(path, trust_pickle=trust_pickle), card)


def predict_file(bundle_path, data_path, output_path, trust_pickle: bool = False, *, cluster: str | None = None,
                 force: bool = False) -> int:
    """Score a file or a partitioned dataset and write the result; return the number of rows scored.

    The input is streamed in batches (memory does not grow with its size) and
    nothing is written when scoring fails; see :func:`mlkiln.scoring.predict_path`
    for datasets, ``cluster`` and ``force``.
    """
    from .scoring import predict_path

    model = load(bundle_path, trust_pickle=trust_pickle)
    return predict_path(model, data_path, output_path, cluster=cluster, force=force)


def _as_frame(data) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame([data])
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    if isinstance(data, (str, os.PathLike)):
        return read_table(data, allow_empty=True)
    raise MlkilnError(f"expected a DataFrame, a file path, a record (dict) or a list of records, got {type(data).__name__}")


def _free_name(columns, name: str) -> str:
    """``name``, or ``name_1``, ... when the input already has such a column."""
    candidate, i = name, 0
    while candidate in columns:
        i += 1
        candidate = f"{name}_{i}"
    return candidate
