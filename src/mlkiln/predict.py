"""Use a bundle: load it safely, predict on new data, evaluate on new labelled data.

Every input goes through :func:`mlkiln.schema.conform`, so ``predict``,
``evaluate``, the Python API and the HTTP service apply the same checks.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from . import bundle, metrics
from .atomic import holds, page_and_json, write_atomic
from .card import Card
from .compiled import Predictor, compile_pipeline, rows_frame
from .data import dataset_files, file_sha256, read_table
from .errors import BundleError, InputError
from .monitor import known_categories
from .options import PREDICTION
from .schema import coerce_target, conform, conform_record, is_missing_text

log = logging.getLogger("mlkiln")


class Model:
    """A fitted pipeline with its card: validated ``predict`` and ``predict_proba``."""

    def __init__(self, pipeline, card: Card):
        self.pipeline = pipeline
        self.card = card

    @property
    def task(self) -> str:
        return self.card.task

    @property
    def classes(self) -> list:
        return list(self.card.classes)

    @cached_property
    def known(self) -> dict[str, frozenset]:
        """Every training category of the text columns the drift profile lists whole: how a batch's unseen values
        are told (:func:`mlkiln.monitor.known_categories`, as ``/metrics`` counts them)."""
        return known_categories(self.card.profile)

    @cached_property
    def predictor(self) -> Predictor:
        """The pipeline compiled for fast predictions, built on first use (or scikit-learn, saying why)."""
        return compile_pipeline(self.pipeline, self.card.columns)

    def predict_record(self, record: dict, watch=None) -> dict:
        """``{"prediction": ...}`` (plus ``"probabilities"`` by class) for one record, in microseconds.

        The record is checked by :func:`mlkiln.schema.conform_record`: a
        missing column, a wrong type or a field the model does not use is an
        :class:`InputError` naming the field. ``watch``, when given, sees the
        conformed record first (the service counts drift with it).
        """
        row = conform_record(record, self.card.columns, self.card.target)
        if watch is not None:
            watch(row)
        prediction, proba = self.predictor.score_row(row)
        if proba is None:
            return {"prediction": prediction}
        return {"prediction": prediction, "probabilities": dict(zip(map(str, self.classes), proba))}

    def predict_records(self, records: list, watch=None) -> list[dict]:
        """:meth:`predict_record`'s answer for each of ``records``, checked one by one (an error names the record by
        its place) and scored together: 15,000 records took 7.6 s one at a time behind ``POST /predict``, 0.47 s so."""
        rows = []
        for index, record in enumerate(records):
            try:
                rows.append(conform_record(record, self.card.columns, self.card.target))
            except InputError as exc:
                raise InputError(f"record {index + 1}: {exc}") from exc  # counted from 1, as rows are
            if watch is not None:
                watch(rows[-1])
        if not rows:
            return []
        labels, proba = self.predictor.score(rows_frame(rows, self.card.columns))
        if proba is None:
            return [{"prediction": value} for value in labels.tolist()]
        classes = list(map(str, self.classes))
        return [{"prediction": value, "probabilities": dict(zip(classes, p))}
                for value, p in zip(labels.tolist(), proba.tolist())]

    def prepare(self, data) -> pd.DataFrame:
        """New data as the pipeline expects it; raises :class:`InputError` when it does not fit."""
        frame = _as_frame(data)
        return conform(frame, self.card.columns, self.card.target, known=self.known)

    def predict(self, data, watch=None) -> np.ndarray:
        """Predicted values (regression) or labels (classification, at the tuned threshold).

        ``watch``, when given, sees the conformed rows first, as in :meth:`predict_record`.
        """
        X = self.prepare(data)
        if watch is not None:
            watch(X)
        if len(X) == 0:
            return self._no_predictions()
        return self.predictor.score(X)[0]

    def _no_predictions(self) -> np.ndarray:
        """No predictions, typed as predictions are: numbers, or the classes' own type."""
        if self.task == "regression":
            return np.empty(0, dtype="float64")
        return np.asarray(getattr(self.pipeline, "classes_", self.classes))[:0]

    def predict_proba(self, data) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes`."""
        if self.task != "classification":
            raise InputError("predict_proba is only for classification models")
        X = self.prepare(data)
        if len(X) == 0:
            return np.empty((0, len(self.classes)))
        return self.predictor.score(X)[1]

    def predict_frame(self, data) -> pd.DataFrame:
        """The input columns plus ``prediction`` and, for classification, ``proba_<class>`` columns."""
        frame = _as_frame(data)
        scores = self.score_columns(frame)
        return frame.drop(columns=[name for name in scores if name in frame.columns]).assign(**scores)

    def score_columns(self, frame: pd.DataFrame, first_row: int = 1) -> dict[str, np.ndarray]:
        """The columns :meth:`predict_frame` adds to ``frame``, by name; errors count rows from ``first_row``.

        Streaming scoring (:mod:`mlkiln.scoring`) appends them to each batch
        of a file, whose first row is ``first_row`` of the file. The names are
        always ``prediction`` and ``proba_<class>``: an input column of the same
        name (a file scored before) gives way, with a warning on the first batch,
        so a job reading ``prediction`` never reads an older model's scores.
        """
        X = conform(frame, self.card.columns, self.card.target, first_row=first_row, known=self.known)
        names = [PREDICTION, *(f"proba_{cls}" for cls in self.classes)] if self.task == "classification" else [PREDICTION]
        taken = [name for name in names if name in frame.columns]
        if taken and first_row == 1:
            log.warning("the input's column(s) %s are replaced by this model's scores in the output",
                        ", ".join(map(repr, taken)))
        if len(X) == 0:  # the columns and types of rows scored: a part of a dataset is appended to the others
            return {PREDICTION: self._no_predictions(), **{name: np.empty(0) for name in names[1:]}}
        prediction, proba = self.predictor.score(X)
        scores = {PREDICTION: prediction}
        if self.task == "classification":
            scores.update((name, proba[:, i]) for i, name in enumerate(names[1:]))
        return scores

    def evaluate(self, data, report: str | os.PathLike | None = None) -> dict:
        """The training-time metrics on new labelled data (rows with a missing target are skipped).

        With ``report``, also write the evaluation report there (HTML, and its
        JSON beside it), with curves and importances on this data; see
        :func:`mlkiln.report.write_evaluation`.
        """
        if report is not None:  # before the work: a report path that cannot be written fails first
            # the report and its JSON never replace the data
            page_and_json(bundle.check_outside(report), dataset_files(data) if isinstance(data, (str, os.PathLike)) else ())
        frame = _as_frame(data)
        target = self.card.target
        if target not in frame.columns:
            raise InputError(f"evaluation data has no target column {target!r}")
        # the shape first: only a table of the training file's shape is read again to be hashed
        if (isinstance(data, (str, os.PathLike)) and frame.shape == (self.card.data.rows, self.card.data.columns)
                and file_sha256(data) == self.card.data.sha256):
            log.warning("this is the training data (its sha256 is the card's): the model was fitted on %.0f %% of "
                        "its rows, so these metrics are optimistic; the card's test metrics are on the rows it "
                        "held out", 100 * (1 - self.card.split.test_size))
        y = coerce_target(frame[target], self.task)
        if len(y) == 0:
            raise InputError(f"evaluation data has no usable values in target column {target!r}")
        if len(y) < len(frame):
            skipped = frame[target].drop(y.index)
            unreadable = skipped[~is_missing_text(skipped)]
            if len(unreadable) < len(skipped):
                log.warning("skipping %d row(s) whose target is missing", len(skipped) - len(unreadable))
            if len(unreadable):  # text in a regression target: not missing, and the user should know which
                log.warning("skipping %d row(s) whose target is not a number, such as %r", len(unreadable),
                            str(unreadable.iloc[0]))
        X = conform(frame.loc[y.index], self.card.columns, target, known=self.known)
        if self.task == "classification":
            y = _as_classes(y, self.classes)
            absent = [c for c in self.classes if c not in set(y)]
            if absent:
                log.warning("the evaluation data holds no row of class(es) %s: their precision, recall and F1 count "
                            "as 0 in the macro averages, and ROC AUC needs every class; evaluate on rows of every "
                            "class to compare with training", ", ".join(map(repr, absent)))
        result = metrics.evaluate(self.pipeline, X, y, self.task, self.classes or None, predictor=self.predictor)
        if report is not None:
            from . import report as reporting

            source = Path(data).name if isinstance(data, (str, os.PathLike)) else "DataFrame"
            diagnostics = reporting.diagnostics(self.pipeline, X, y, self.card, predictor=self.predictor)
            reporting.write_evaluation(report, self.card, diagnostics, result, source)
        return result


def _as_classes(y: pd.Series, classes: list) -> pd.Series:
    """The labels as the model's own classes: a label equal to a class is that class.

    A file that writes the classes True / False as 1 / 0 (or the other way)
    holds the same labels; compared as they are, 1 matched no prediction True,
    and precision, recall and the confusion matrix came out as zeros.
    """
    found, unknown = {}, []
    for value in y.unique().tolist():
        match = [c for c in classes if c == value]
        whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
        if not match and whole:
            # codes (01, 010, 7) the training file held as text, read as numbers here: the class written as the
            # number plainly ("7", also when "007" is another class), else the one code of that value
            plain = [c for c in classes if c == str(int(value))]
            match = plain or [c for c in classes if isinstance(c, str) and c.strip().isdigit() and int(c) == value]
            match = match if len(match) == 1 else []
        if match:
            found[value] = match[0]
        else:
            unknown.append(value)
    if unknown:
        raise InputError(f"evaluation data has class(es) the model never saw: "
                         f"{', '.join(map(repr, sorted(unknown, key=str)))}")
    kind = np.asarray(classes).dtype
    return y.map(found).astype(kind if kind.kind in "biuf" else "object")


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
    return Model(*bundle.load(path, trust_pickle=trust_pickle))


def rebuild_report(bundle_path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Redraw a bundle's report from its card and ``report.json``; write it to ``output``.

    The default output is ``<bundle name>-report.html`` in the current
    directory; writing into the bundle itself is refused, because the file
    would no longer match the bundle's manifest.
    """
    from . import report

    bundle_path = Path(bundle_path)
    card = bundle.read_card(bundle_path)  # verifies every file's hash first
    if not (bundle_path / report.REPORT_JSON).is_file():
        raise BundleError(f"{bundle_path} has no {report.REPORT_JSON}; it was made by an mlkiln without reports, train it again")
    saved = json.loads((bundle_path / report.REPORT_JSON).read_text())
    if saved.get("schema_version") != report.SCHEMA_VERSION:
        raise BundleError(f"{bundle_path / report.REPORT_JSON} has schema_version {saved.get('schema_version')}, "
                          f"this mlkiln reads {report.SCHEMA_VERSION}; use the mlkiln version in its requirements")
    output = page_and_json(bundle.check_outside(output or f"{bundle_path.resolve().name}-report.html"))[0]
    diag = {**saved["diagnostics"], "target": saved["data"]["target"]["distribution"]}
    files = [{k: f[k] for k in ("file", "bytes", "sha256")} for f in bundle.file_status(bundle_path)
             if f["file"] not in (report.REPORT_HTML, report.REPORT_JSON) and f["status"] != "NOT IN MANIFEST"]
    write_atomic(output, report.render_html(report.build(card, diag, files, bundle_name=bundle_path.name)).encode())
    return output


def predict_file(bundle_path, data_path, output_path, trust_pickle: bool = False, *, cluster: str | None = None,
                 force: bool = False) -> int:
    """Score a file or a partitioned dataset and write the result; return the number of rows scored.

    The input is streamed in batches (memory does not grow with its size) and
    nothing is written when scoring fails; see :func:`mlkiln.scoring.predict_path`
    for datasets, ``cluster`` and ``force``.
    """
    from .scoring import predict_path

    output = bundle.check_outside(output_path)
    if holds(output, bundle_path):
        raise InputError(f"the output {output} is, or holds, the bundle {bundle_path}; choose another output")
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
    raise InputError(f"expected a DataFrame, a file path, a record (dict) or a list of records, got {type(data).__name__}")

