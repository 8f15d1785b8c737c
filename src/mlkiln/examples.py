"""Bundled example tables, so mlkiln can be tried without downloading anything.

``diamonds`` (regression, target ``price``) is ggplot2's table and
``machine-failure`` (imbalanced classification, target ``Machine failure``) the
real AI4I 2020 predictive-maintenance table (S. Matzka, UCI Machine Learning
Repository, DOI 10.24432/C5HS5C, CC BY 4.0; see ``data/AI4I.md``), both shipped
compressed inside the package. ``machine-failure-synthetic`` generates a table
built like AI4I 2020 with any number of rows, for scale tests and demos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files

from typing import TYPE_CHECKING

from .errors import ArgumentError, InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Example:
    """A bundled table and how to train on it.

    ``drop`` maps a column to why it is not a feature although no statistic
    shows it: the user of the table knows, as with ``--drop``. Screening
    stays blind to names; this is the table's own definition.
    """

    target: str
    drop: dict[str, str] = field(default_factory=dict)
    file: str | None = None  # inside mlkiln/data; None: generated


#: RNF (random failure) is a failure-mode label, recorded after the outcome; on the real
#: table 18 of its 19 rows have no machine failure, so no statistic calls it a leak.
_FAILURE_LABELS = {"RNF": "a failure-mode label, known only after the outcome"}

EXAMPLES: dict[str, Example] = {
    "diamonds": Example("price", file="diamonds.csv.gz"),
    "machine-failure": Example("Machine failure", drop=_FAILURE_LABELS, file="ai4i2020.csv.gz"),
    "machine-failure-synthetic": Example("Machine failure", drop=_FAILURE_LABELS),
}
"""Example name -> its target, the columns it drops and where its rows come from."""

def load_example(name: str, seed: int = 0, rows: int | None = None) -> pd.DataFrame:
    """Return a bundled example table.

    Parameters
    ----------
    name : str
        A key of `EXAMPLES`.
    seed : int
        Seed of the generated example (``machine-failure-synthetic``); the
        shipped tables are fixed data and ignore it.
    rows : int, optional
        Rows of the generated example (default 10,000, as AI4I 2020); only
        the generated example takes it.

    Returns
    -------
    pandas.DataFrame
        The table, target column included (see `EXAMPLES`).

    Raises
    ------
    InputError
        If `name` is not an example, or `rows` is given for a shipped table
        or out of range.
    """
    if name not in EXAMPLES:
        raise InputError(f"unknown example {name!r}; choose one of: {', '.join(EXAMPLES)}")
    # pandas and the generator are imported here, not at the top: the command line lists the
    # examples in its --help, which must not wait for pandas
    import pandas as pd

    from .synthetic import make_machine_failure

    source = EXAMPLES[name].file
    if source is None:
        return make_machine_failure(n_rows=10_000 if rows is None else rows, seed=seed)
    if rows is not None:
        generated = [n for n, example in EXAMPLES.items() if example.file is None]
        raise ArgumentError("rows", rows, f"example {name!r} is a fixed table; only {', '.join(generated)} takes a "
                            "row count")
    # text columns stay strings: recognising them is mlkiln's job
    with (files("mlkiln") / "data" / source).open("rb") as f:
        return pd.read_csv(f, compression="gzip")
