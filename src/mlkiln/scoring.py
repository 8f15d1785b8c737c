"""Score tables of any size: a file in record batches, a partitioned dataset file by file or on Dask.

Memory is bounded by one batch, not by the table: each batch is read
(:func:`mlkiln.data.read_batches`), checked and scored by the same
:meth:`mlkiln.predict.Model.score_columns` that scores a DataFrame, and
written at once. Output goes to a temporary file or directory renamed into
place at the end, so a failure leaves nothing behind. On a Dask cluster each
file of a dataset is one task running that same per-file code on a worker,
with the model shipped once from the client (workers never read the bundle).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .atomic import atomic_path, check_apart, check_ours, check_replaceable, followed, holds, replace_path
from .cluster import check_dask, dask_client, named_by
from .data import (
    LARGE_FILE_BYTES, TypeDrift, check_same_columns, dataset_files, is_dataset, read_batches, table_columns,
)
from .errors import InputError, MlkilnError
from .options import OUTPUT_MARKERS, OUTPUT_SUFFIXES, PREDICTION, output_format
from .schema import UNSEEN_VALUES

log = logging.getLogger("mlkiln")

#: seconds between two progress lines while a large table is scored
PROGRESS_SECONDS = 10.0


def predict_path(model, data: str | os.PathLike, output: str | os.PathLike, *, cluster: str | None = None,
                 force: bool = False) -> int:
    """Score a file or a partitioned dataset with ``model`` and write the result; return the number of rows.

    Parameters
    ----------
    model : mlkiln.Model
        A loaded (verified) bundle.
    data : path
        A CSV or Parquet file, a directory of them, or a glob such as ``'data/*.parquet'``.
    output : path
        A ``.csv`` or ``.parquet`` file (every row in one file), or, for a
        dataset, a directory that receives one Parquet part per input file.
    cluster : str, optional
        Score the files on Dask: ``tcp://HOST:8786`` or ``"local"``
        (default ``$MLKILN_DASK_SCHEDULER``); the output is then a directory.
    force : bool
        Replace an existing output directory, or a file that is not a table of scores.

    Raises
    ------
    InputError
        For a glob that matches nothing, files with different columns, a
        value a column cannot hold (naming the file and row), an output that
        is an input or an existing directory without ``force``.
    """
    files = dataset_files(data)
    output = Path(output)
    check_apart([output], files)
    _check_not_in_dataset(data, output)
    if not output.is_dir():
        output_format(output)  # a name of no table format is refused (as the command line does before loading)
    address = check_dask(cluster)
    as_parts = bool(address) or (is_dataset(data) and not _is_table_name(output))
    if len(files) > 1:
        check_same_columns(files)
    if as_parts:
        if _is_table_name(output):
            raise InputError(f"{named_by(cluster) if address else 'a partitioned dataset'} writes one Parquet part "
                             f"per input file; give -o a directory, not {output}")
        if output.exists() and not force:
            raise InputError(f"{output} already exists; pass --force to replace it")
        check_replaceable(output, OUTPUT_MARKERS)
    else:  # a table of the user's is not replaced by scores; scores written before are
        check_ours(output, lambda path: PREDICTION in table_columns(path), "a table of scores", force)
    model.predictor  # compiled once here, so every batch, file and worker reuses it
    started, size = time.perf_counter(), sum(f.stat().st_size for f in files)
    if size >= LARGE_FILE_BYTES:
        log.info("scoring %s (%d file(s), %.0f MB) in batches ...", data, len(files), size / 2**20)
    with _warn_once():
        if address:
            rows = _score_on_dask(model, files, output, address)
        elif as_parts:
            rows = _write_parts(output, files, lambda parts: [score_file(model, src, dest) for src, dest in parts])
        else:
            rows = _write_file(model, files, output)
    seconds = time.perf_counter() - started
    log.info(
        "scored %d rows in %.2f s (%.0f rows/s, %s)", rows, seconds, rows / max(seconds, 1e-9),
        "compiled" if model.predictor.compiled else f"scikit-learn: {model.predictor.reason}",
    )
    return rows


def _check_not_in_dataset(data, output: Path) -> None:
    """Refuse an output that would join the dataset being read: inside its folder, or matching its glob.

    Written there, the scored rows (with their extra ``prediction`` column) were
    part of the dataset from then on: the next ``predict`` of it failed, and its
    bundle's ``train.py`` trained on them.
    """
    if not is_dataset(data):
        return
    written = [output] if _is_table_name(output) else [output, output / "part-00000.parquet"]  # a file, or parts
    if Path(data).is_dir():
        inside = any(holds(data, path) for path in written)
    else:
        inside = any(_glob_finds(path, str(data)) for path in written)
    if inside:
        raise InputError(f"the output {output} is inside the dataset {data} being read, and would become part of "
                         "it; write it elsewhere")


def _glob_finds(path: Path, pattern: str) -> bool:
    """Whether ``glob(pattern)`` would list ``path`` as one of a dataset's files, were it written: the same
    parts, each matched as ``glob`` matches it (``*`` within one folder name; ``**`` any folders, matched
    loosely), and not a name :func:`~mlkiln.data.dataset_files` skips."""
    if path.name.startswith((".", "_")):
        return False
    full, wanted = Path(os.path.abspath(path)).parts, Path(os.path.abspath(pattern)).parts
    if "**" in wanted:
        return fnmatch.fnmatch(os.sep.join(full), os.sep.join(wanted))
    return len(full) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(full, wanted))


def score_file(model, source: Path, dest: Path, on_retry: Callable[[], None] | None = None) -> int:
    """Score one input file into ``dest`` (Parquet), batch by batch (``on_retry``: called when it is read again)."""
    return _retrying_drift(lambda types: _stream(model, [source], dest, "parquet", types), on_retry)


def _score_file_told(model, source: Path, dest: Path) -> tuple[int, list[tuple]]:
    """:func:`score_file` as a Dask worker runs it: ``(rows, the arguments of its unseen-values warnings)``, kept
    from the worker's log for the client to say (on the cluster they reached the worker's stderr alone, sweep 9)."""
    thread, said = threading.get_ident(), []

    def keep(record: logging.LogRecord) -> bool:
        if record.msg == UNSEEN_VALUES and record.thread == thread:
            said.append(tuple(record.args))
            return False
        return True

    log.addFilter(keep)
    try:
        rows = score_file(model, source, dest, on_retry=said.clear)  # a pass read again is not counted
    finally:
        log.removeFilter(keep)
    return rows, said


def _write_file(model, files: list[Path], output: Path) -> int:
    with atomic_path(output) as tmp:
        return _retrying_drift(lambda types: _stream(model, files, tmp, output_format(output), types))


def _write_parts(output: Path, files: list[Path], run: Callable[[list[tuple[Path, Path]]], Iterable[int]]) -> int:
    """Score ``files`` into parts ``part-00000.parquet``, ... of a temporary directory, then rename it to ``output``."""
    output = followed(output)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rows = sum(run([(src, tmp / f"part-{i:05d}.parquet") for i, src in enumerate(files)]))
        replace_path(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _score_on_dask(model, files: list[Path], output: Path, address: str) -> int:
    with dask_client(address, os.cpu_count() or 1, purpose="scoring tasks") as client:
        # the verified model travels once to every worker, as an object: workers never open the bundle
        shipped = client.scatter(model, broadcast=True)

        def run(parts):
            futures = client.map(_score_file_told, [shipped] * len(parts), *zip(*parts), pure=False)
            try:
                done = client.gather(futures)
            finally:
                client.cancel(futures)
            for _, said in done:  # said here, once per column, with their total (_warn_once)
                for args in said:
                    log.warning(UNSEEN_VALUES, *args)
            return [rows for rows, _ in done]

        return _write_parts(output, files, run)


def _retrying_drift(stream: Callable[[dict], int], on_retry: Callable[[], None] | None = None) -> int:
    """Run ``stream`` until no column outgrows its type, widening the types it reads with each time; the unseen
    values of a pass read again are not counted (80,000 rows said 10,958 where they held 5,936: sweep 10)."""
    widened: dict[str, pa.DataType] = {}
    while True:
        counted = dict(_unseen_tally)
        try:
            return stream(dict(widened))
        except TypeDrift as drift:
            _unseen_tally.clear()
            _unseen_tally.update(counted)
            if on_retry is not None:
                on_retry()
            log.info("column %r holds values past its first block that need %s; reading the input again",
                     drift.column, drift.dtype)
            widened[drift.column] = drift.dtype


def _stream(model, files: list[Path], dest: Path, fmt: str, types: dict) -> int:
    """Read, score and write every batch of ``files`` into one ``dest``; all files are read with the first one's types."""
    progress = _Progress()
    with contextlib.ExitStack() as stack:
        writer = empty = None
        for file in files:
            first_row = 1
            for batch in read_batches(file, types, parsed=model.card.schema.kinds):
                types.update(zip(batch.schema.names, batch.schema.types))
                scored = _score_batch(model, batch, file, first_row)
                if len(scored) == 0:  # a batch of no rows: written only for an empty table, as its schema
                    empty = scored
                    continue
                if fmt == "csv":
                    scored = _csv_ready(scored)
                if writer is None:
                    writer = stack.enter_context(_writer(dest, fmt, scored.schema))
                writer.write_batch(scored)
                first_row += len(batch)
                progress.add(len(batch))
        if writer is None:
            stack.enter_context(_writer(dest, fmt, empty.schema)).write_batch(empty)
    return progress.rows


def _score_batch(model, batch: pa.RecordBatch, file: Path, first_row: int) -> pa.RecordBatch:
    """The batch with the model's columns appended; an error names the file and its row."""
    try:
        scores = model.score_columns(batch.to_pandas(), first_row=first_row)
    except MlkilnError as exc:
        raise InputError(f"{file}: {exc}") from exc
    for name, values in scores.items():
        if name in batch.schema.names:  # a file scored before: the new scores take the name (score_columns warns)
            batch = batch.remove_column(batch.schema.get_field_index(name))
        batch = batch.append_column(name, pa.array(values))
    return batch


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with the columns a CSV cannot hold as text: lists, structs and maps as JSON, bytes as hex.

    pyarrow's CSV writer refuses them (a Parquet input's list column stopped ``predict -o scores.csv``).
    True and False as Python and the class names write them (pyarrow: true, false).
    A duration is written in seconds, as mlkiln reads one: pyarrow writes the count of its unit, and microseconds
    read back as seconds changed 191 of 344 predictions when the output was scored again.
    """
    for i, field in enumerate(batch.schema):
        kind = field.type
        if pa.types.is_boolean(kind):  # pyarrow writes true/false; the classes are named True/False (proba_True)
            spelled = pc.if_else(batch.column(i), pa.scalar("True"), pa.scalar("False"))
            batch = batch.set_column(i, field.name, spelled)
            continue
        if pa.types.is_duration(kind):
            per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind.unit]
            seconds = pc.divide(pc.cast(batch.column(i), pa.int64()).cast(pa.float64()), per_second)
            batch = batch.set_column(i, field.name, seconds)
            continue
        binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
        if binary or pa.types.is_nested(kind):
            as_text = bytes.hex if binary else (lambda v: json.dumps(v, default=str))
            values = pa.array([None if v is None else as_text(v) for v in batch.column(i).to_pylist()], pa.string())
            batch = batch.set_column(i, field.name, values)
    return batch


def _writer(dest: Path, fmt: str, schema: pa.Schema):
    if fmt == "parquet":
        return pq.ParquetWriter(dest, schema)
    return pacsv.CSVWriter(dest, schema)


def _is_table_name(path: Path) -> bool:
    """Whether ``path`` names one output table (see :func:`mlkiln.options.output_format`), not a directory."""
    return path.name.lower().endswith(OUTPUT_SUFFIXES)


class _Progress:
    """Rows done, with a line every :data:`PROGRESS_SECONDS` for inputs that take that long."""

    def __init__(self):
        self.rows, self.started = 0, time.perf_counter()
        self.next_line = self.started + PROGRESS_SECONDS

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        if now >= self.next_line:
            self.next_line = now + PROGRESS_SECONDS
            log.info("scored %d rows so far (%.0f s)", self.rows, now - self.started)


#: the unseen values counted per column by the :func:`_warn_once` in force (a pass read again takes its own back)
_unseen_tally: dict[str, int] = {}


@contextlib.contextmanager
def _warn_once():
    """Let each warning (per message and column) through once, not once per batch; the unseen values of a column
    that later batches or files hold too are counted, and their total said at the end (a dataset of three parts
    said the first part's 20 where they held 57)."""
    seen, said, unseen = set(), {}, _unseen_tally
    unseen.clear()
    owner = threading.get_ident()

    def first_time(record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.thread != owner:  # a Dask worker's thread: it hands them back
            return True
        key = (record.msg, record.args[0] if record.args else None)
        if record.msg == UNSEEN_VALUES:
            unseen[key[1]] = unseen.get(key[1], 0) + record.args[1]
            said.setdefault(key[1], record.args[1])
        if key in seen:
            return False
        seen.add(key)
        return True

    log.addFilter(first_time)
    try:
        yield
    finally:
        log.removeFilter(first_time)
    for name, total in unseen.items():
        if total > said[name]:
            log.warning("column %r: %d value(s) not seen in training in all the rows scored", name, total)
