"""Load a table from CSV or Parquet and split it into train and test rows.

Reading goes through pyarrow: it is several times faster than pandas' own CSV
parser and infers column types in one pass. Every failure a user can cause
(missing file, wrong format, empty table) becomes an :class:`MlkilnError`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .errors import MlkilnError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def table_format(path: str | os.PathLike) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the file name, sniffing when unsure."""
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    with open(path, "rb") as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame.

    Raises
    ------
    MlkilnError
        When the file is missing, is a directory, is empty or cannot be parsed.
    """
    path = Path(path)
    if not path.exists():
        raise MlkilnError(f"data file not found: {path}")
    if path.is_dir():
        raise MlkilnError(f"{path} is a directory; give the path of a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise MlkilnError(f"{path} is empty")
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path, engine="pyarrow")
        else:
            frame = read_csv(path)
    except MlkilnError:
        raise
    except Exception as exc:  # pyarrow raises many types; the user needs one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlkilnError(f"cannot read {path} as {fmt.upper()}: {reason}") from exc
    if frame.shape[1] == 0:
        raise MlkilnError(f"{path} has no columns")
    if len(frame) == 0:
        raise MlkilnError(f"{path} has a header but no data rows")
    return frame


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV file with pyarrow, the same way the bundle's ``train.py`` does."""
    return pd.read_csv(path, engine="pyarrow")


def write_table(frame: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Write ``frame`` as CSV or Parquet: ``fmt``, or else chosen by the file name."""
    if (fmt or output_format(path)) == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def output_format(path: str | os.PathLike) -> str:
    """Like :func:`table_format` but for a file that does not exist yet."""
    return "parquet" if str(path).lower().endswith(PARQUET_SUFFIXES) else "csv"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large files stay cheap."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Hex sha256 of a DataFrame's contents, for tables that never were a file."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def split_train_test(
    X: pd.DataFrame, y: pd.Series, *, test_size: float, seed: int, stratify: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Hold out the test rows first, stratified by class for classification."""
    if not 0.0 < test_size < 1.0:
        raise MlkilnError(f"--test-size must be between 0 and 1 (exclusive), got {test_size}")
    n_test = int(np.ceil(test_size * len(y)))
    if n_test < 1 or len(y) - n_test < 2:
        raise MlkilnError(
            f"{len(y)} rows are too few to hold out a test split of {test_size:g}; "
            "use more data or a smaller --test-size"
        )
    if stratify:
        n_classes = y.nunique()
        if n_test < n_classes:
            raise MlkilnError(
                f"a test split of {n_test} rows cannot hold all {n_classes} classes; "
                "use a larger --test-size or more data"
            )
    return train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )
