"""Export a bundle to other tools' model formats: ``mlkiln export BUNDLE --format mlflow -o DIR``.

The MLflow Model has two flavours over one file, the bundle's hash-checked
``model.skops``:

- ``sklearn``: the bare fitted Pipeline (``mlflow.sklearn.load_model``). Like
  the bundle's ``model.joblib``, it expects the *conformed* columns: numbers
  as floats, text as ``str``, date/time columns as seconds since 1970 UTC.
  For a table without date columns that is the raw table.
- ``python_function`` (``mlflow.pyfunc.load_model``, ``mlflow models serve``):
  applies mlkiln's input rules first, so raw rows work, date text included.
  Its loader is a small module written into the model directory with those
  rules copied from :mod:`mlkiln.schema`; loading needs pandas, NumPy,
  scikit-learn and skops (the bundle's pinned requirements), never mlkiln.

The signature names the bundle's input columns, each required and of MLflow's
type ``any``: the loader applies mlkiln's rules to what arrives, and MLflow's
own type check would refuse rows ``mlkiln predict`` scores (a missing value in
a column of whole numbers, a whole number in a column of decimals, a duration,
a date with a time zone, a category written as a number). The types the raw
columns had in training (``long``, ``double``, ``boolean``, ``string``) are in
MLmodel's metadata (``mlkiln_input_types``), with the bundle's manifest hash;
the input example comes from the schema's categories and ranges.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from . import __version__, bundle, schema
from .atomic import followed, replace_path
from .card import Card, Column
from .errors import BundleError, require
from .predict import load

log = logging.getLogger("mlkiln")

#: the loader module written into the MLflow model (its name must not shadow an installed package)
LOADER_MODULE = "mlkiln_mlflow_loader"
_KINDS_FILE = "kinds.json"


def export_mlflow(bundle_path: str | os.PathLike, output: str | os.PathLike, force: bool = False) -> Path:
    """Write a verified bundle as an MLflow Model directory.

    Parameters
    ----------
    bundle_path : path
        A bundle written by ``mlkiln train``; it is verified (hashes, types,
        versions) and loaded before anything is written.
    output : path
        The MLflow model directory; written beside it, then renamed into place.
    force : bool
        Replace an existing `output`.

    Returns
    -------
    Path
        `output`.

    Raises
    ------
    InputError
        If `output` exists without `force`, lies inside a bundle, or mlflow is not installed.
    BundleError
        If the bundle does not verify.
    """
    output = bundle.check_destination(bundle.check_outside(output), force, [bundle_path])
    mlflow = _mlflow()
    bundle_path = Path(bundle_path)
    card = load(bundle_path).card  # hashes, card, versions and the audit of model.skops' types
    hashes = bundle.verify(bundle_path, needed=("requirements.txt",))
    files = {name: (bundle_path / name).read_bytes() for name in (bundle.MODEL_SKOPS, "requirements.txt")}
    for name, content in files.items():
        if hashlib.sha256(content).hexdigest() != hashes.get(name):
            raise BundleError(f"bundle file {name} changed while exporting {bundle_path}; export again")
    output = followed(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        staged = _save(mlflow, work, card, files, _metadata(card, bundle_path, hashes))
        replace_path(staged, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return output


def _save(mlflow, work: Path, card: Card, files: dict[str, bytes], metadata: dict) -> Path:
    """Write the MLflow model into ``work/model`` with MLflow's own API; return that path."""
    data = work / "mlkiln"
    data.mkdir()
    (data / bundle.MODEL_SKOPS).write_bytes(files[bundle.MODEL_SKOPS])
    (data / _KINDS_FILE).write_text(json.dumps({"kinds": {c.name: c.kind for c in card.columns},
                                                "unreadable": {c.name: list(c.unreadable) for c in card.columns
                                                               if c.unreadable},
                                                "commas": {c.name: c.comma for c in card.columns if c.comma},
                                                "orders": {c.name: schema.read_order(c) for c in card.columns
                                                           if c.kind == "datetime"},
                                                # the text categories that are numbers: [value, text] pairs
                                                "numbers": {c.name: [[v, t] for v, t in found.items()]
                                                            for c in card.columns if c.kind == "categorical"
                                                            and (found := schema.number_categories(c.categories))}},
                                               indent=2))
    loader = work / f"{LOADER_MODULE}.py"
    loader.write_text(loader_source())
    model = mlflow.models.Model(metadata=metadata)
    model.add_flavor(  # the same file, for mlflow.sklearn.load_model
        "sklearn", pickled_model=f"data/mlkiln/{bundle.MODEL_SKOPS}", serialization_format="skops",
        sklearn_version=card.versions.get("scikit-learn"), skops_trusted_types=sorted(bundle.TRUSTED_TYPES), code=None,
    )
    # MLflow loads the model through the loader to check the input example against the
    # signature; its INFO line about that is not news to our user
    mlflow_log = logging.getLogger("mlflow")
    level = mlflow_log.level
    mlflow_log.setLevel(logging.WARNING)
    try:
        mlflow.pyfunc.save_model(
            work / "model", loader_module=LOADER_MODULE, data_path=data, code_paths=[str(loader)], mlflow_model=model,
            signature=signature(card), input_example=input_example(card.columns),
            pip_requirements=_requirements(files["requirements.txt"]),
        )
    finally:
        mlflow_log.setLevel(level)
    return work / "model"


def _mlflow():
    for module in ("mlflow.models", "mlflow.pyfunc"):  # the parts export uses; importing them imports mlflow
        require(module, "mlflow", "exporting to MLflow")
    import mlflow

    return mlflow


def signature(card: Card):
    """The MLflow signature of a bundle: its input schema in, predictions out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from mlflow.types.schema import AnyType

    inputs = Schema([ColSpec(AnyType(), c.name, required=True) for c in card.columns])
    if card.task == "regression":
        out = "double"
    else:
        out = "long" if all(isinstance(c, int) and not isinstance(c, bool) for c in card.classes) else "string"
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(out)]))


def _mlflow_type(column: Column) -> str:
    """The MLflow type of the raw values training saw in a column (the input example's, and the metadata's)."""
    if column.kind == "numeric" and column.dtype.startswith(("int", "uint", "Int", "UInt")):
        return "long"
    if column.kind == "numeric" and column.dtype.startswith(("float", "Float")):
        return "double"
    if column.kind == "numeric" and column.dtype in ("bool", "boolean"):
        return "boolean"
    return "string"  # categories, date/time text, numbers written as text ("1,234.5")


def input_example(columns) -> pd.DataFrame:
    """One plausible row from the schema: the most frequent category, the middle of each range."""
    row = {}
    for c in columns:
        if c.kind == "categorical":
            row[c.name] = (c.categories or (None,))[0]
        elif c.min is None:
            row[c.name] = None
        elif c.kind == "datetime":
            row[c.name] = pd.Timestamp((c.min + c.max) / 2, unit="s").isoformat()
        else:
            middle = (c.min + c.max) / 2
            row[c.name] = {"long": round, "boolean": lambda v: bool(round(v)), "double": float, "string": str}[
                _mlflow_type(c)](middle)
    return pd.DataFrame([row])


def _metadata(card: Card, bundle_path: Path, hashes: dict[str, str]) -> dict:
    manifest = hashlib.sha256((bundle_path / bundle.MANIFEST).read_bytes()).hexdigest()
    return {
        "mlkiln_bundle_manifest_sha256": manifest,
        "mlkiln_model_skops_sha256": hashes[bundle.MODEL_SKOPS],
        "mlkiln_version": card.mlkiln_version,
        "mlkiln_export_version": __version__,
        "task": card.task,
        "target": card.target,
        "model_family": card.model.family,
        "sklearn_flavor_input": "conformed columns: numbers as float, text as str, date/time as seconds since 1970 UTC",
        "mlkiln_input_types": {c.name: _mlflow_type(c) for c in card.columns},
    }


def _requirements(text: bytes) -> list[str]:
    """The bundle's exact pins (MLflow adds its own)."""
    return [line.strip() for line in text.decode().splitlines() if line.strip() and not line.startswith("#")]


def loader_source() -> str:
    """The python_function loader: mlkiln's input rules, verbatim, and a skops load audited like a bundle's."""
    rules = "\n\n\n".join(
        inspect.getsource(f).rstrip() for f in (schema._number_text, schema._number_words, schema._comma_of_words,
                                                schema._distinct, schema.in_range, schema.to_number, schema.to_seconds, schema.date_order,
                                                schema._one_timestamp, schema.clean_text, schema.held_as_numbers, schema.coerce_frame,
                                                schema.category_text,
                                                schema.first_unreadable, schema.unreadable, schema.is_missing_text,
                                                schema._is_placeholder, schema.unreadable_message, schema._shown, schema._is_infinite,
                                                schema._as_float)
    )
    return _LOADER.format(version=__version__, trusted=sorted(bundle.TRUSTED_TYPES), kinds_file=_KINDS_FILE,
                          skops_file=bundle.MODEL_SKOPS, rules=rules, na_tokens=sorted(schema.NA_TOKENS),
                          either_comma=schema._EITHER_COMMA)


_LOADER = '''"""Loader of an mlkiln model exported to MLflow (mlkiln {version}, ``mlkiln export --format mlflow``).

``mlflow.pyfunc.load_model(DIR)`` calls :func:`_load_pyfunc`. New rows are read
by mlkiln's own rules (``mlkiln.schema``, copied below), so the pipeline sees
what ``mlkiln predict`` gives it. Needs pandas, NumPy, scikit-learn and skops;
not mlkiln.
"""

import json
import math
import os
import unicodedata

import numpy as np
import pandas as pd
import skops.io

#: the types model.skops may create beyond skops' safe defaults, as mlkiln.bundle allows
TRUSTED_TYPES = {trusted!r}

#: as mlkiln.schema.VALUE_MAX: a number beyond float32's range is unreadable
VALUE_MAX = float(np.finfo(np.float32).max)

#: as mlkiln.schema.NA_TOKENS: text that means "no value"
NA_TOKENS = frozenset({na_tokens!r})

#: as mlkiln.schema._EITHER_COMMA: one comma before three digits ("2,980"), a thousand or a decimal comma
_EITHER_COMMA = {either_comma!r}


{rules}


class MlkilnModel:
    """The fitted Pipeline behind mlkiln's input rules."""

    def __init__(self, pipeline, kinds, unreadable_text, commas=None, numbers=None, orders=None):
        self.pipeline = pipeline
        self.kinds = kinds
        self.unreadable_text = unreadable_text
        self.commas = commas or {{}}
        self.numbers = {{name: {{value: text for value, text in pairs}} for name, pairs in (numbers or {{}}).items()}}
        self.orders = orders or {{}}

    def predict(self, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        coerced = coerce_frame(frame, self.kinds, self.commas, (), self.numbers, self.orders)
        first = first_unreadable(frame, coerced, self.kinds, self.unreadable_text)
        if first is not None:  # as mlkiln predict refuses it: a value that is not of its column's kind
            name, row = first
            raise ValueError(unreadable_message(name, self.kinds[name], frame[name].iloc[row], f" in row {{row + 1}}"))
        if not len(coerced):  # empty in, empty out, as mlkiln predict (scikit-learn refuses 0 rows)
            classes = getattr(self.pipeline, "classes_", None)
            return classes[:0] if classes is not None else np.empty(0)
        return self.pipeline.predict(coerced)


def _load_pyfunc(path):
    with open(os.path.join(path, "{kinds_file}")) as f:
        saved = json.load(f)
    kinds, unreadable_text = saved["kinds"], saved["unreadable"]
    file = os.path.join(path, "{skops_file}")
    untrusted = skops.io.get_untrusted_types(file=file)
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise TypeError(f"{{file}} would create untrusted type(s) {{', '.join(refused)}}; refusing to load")
    return MlkilnModel(skops.io.load(file, trusted=untrusted), kinds, unreadable_text, saved.get("commas"),
                       saved.get("numbers"), saved.get("orders"))
'''
