"""One converter from numpy and dataclass values to strict JSON, used by the card, the report and tuning."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np


def plain(value):
    """numpy -> Python, tuples -> lists, dataclasses -> dicts, NaN/inf -> None: strict JSON values.

    Floats that are whole numbers stay floats; only numpy scalars change type.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, indent: int | None = 1) -> bytes:
    """``value`` as strict JSON bytes (see :func:`plain`)."""
    return json.dumps(plain(value), indent=indent, allow_nan=False).encode()


def scalar_text(value) -> str:
    """A value for a message: ``1`` rather than ``np.int64(1)`` or ``1.0``."""
    value = value.item() if isinstance(value, np.generic) else value
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    return repr(value)


def number_text(value) -> str:
    """A hyperparameter, range end or plot label: as short as exact allows (``0.05``, ``0.001``, ``1e+04``)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def params_text(params: dict) -> str:
    """Hyperparameters in one line, ``C=0.1, max_leaf_nodes=31``: the one rendering of the terminal and the report."""
    return ", ".join(f"{k}={number_text(v)}" for k, v in params.items()) or "(none)"
