"""Load a table from CSV or Parquet and split it into train and test rows.

Reading goes through pyarrow: it is several times faster than pandas' own CSV
parser and infers column types in one pass. A table is one file, or a
partitioned dataset (a directory or a glob of files with the same columns).
:func:`read_batches` streams a file in record batches typed as the whole-file
read would type them, so scoring needs memory for one batch, not the table.
Every failure a user can cause (missing file, wrong format, empty table)
becomes an :class:`InputError`.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import glob
import hashlib
import io
import itertools
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn.model_selection import train_test_split

from .atomic import atomic_path
from .errors import InputError
from .jsonio import scalar_text
from .options import (CODE_DIGITS, CSV_SUFFIXES, GLOB_CHARS, LEADING_ZERO, PARQUET_SUFFIXES,
                      data_not_found, glob_root, output_format, written_as_codes)

log = logging.getLogger("mlkiln")

#: files at least this large get a progress line before and after reading
LARGE_FILE_BYTES = 10 << 20
#: rows per Parquet record batch when streaming: per-batch overhead is amortised, memory stays small
BATCH_ROWS = 1 << 17
#: bytes of CSV text pyarrow parses (and infers types from) per block when streaming
CSV_BLOCK_BYTES = 16 << 20


def table_format(path: str | os.PathLike) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the file name, sniffing when unsure."""
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    with open(path, "rb") as fh:
        return "parquet" if fh.read(4) == b"PAR1" else "csv"


def is_dataset(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a partitioned dataset (a directory or a glob) rather than one file."""
    return Path(path).is_dir() or (not Path(path).exists() and any(c in str(path) for c in GLOB_CHARS))


def dataset_files(path: str | os.PathLike) -> list[Path]:
    """The files of a table: ``[path]`` for a file, else a directory's or a glob's CSV/Parquet files by name.

    Hidden files and ones starting with ``_`` (``_SUCCESS``, ``_metadata``) are
    skipped, as Spark and Dask write them beside their parts.

    Raises
    ------
    InputError
        When a glob matches no file or a directory holds no table file.
    """
    if not is_dataset(path):
        return [Path(path)]
    if Path(path).is_dir():
        candidates, nothing = Path(path).rglob("*"), f"{path} is a directory without CSV or Parquet files"
    else:
        candidates, nothing = map(Path, glob.glob(str(path), recursive=True)), f"no CSV or Parquet files match {path}"
    files = sorted(
        p for p in candidates
        if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES) and not p.name.startswith((".", "_"))
    )
    if not files:
        raise InputError(nothing)
    _refuse_partition_names(files, glob_root(path))
    return files


def _refuse_partition_names(files: list[Path], root: Path) -> None:
    """Refuse a dataset partitioned by folder names (Hive's ``region=north/part-0.parquet``, as Spark, Dask and
    pyarrow write with partition columns): the column lives in the folder names, not in the files, and reading
    the files alone lost it without a word."""
    for file in files:
        below = file.parent.parts[len(root.parts):]  # a folder above the dataset's may be named so
        named = next((part for part in below if re.fullmatch(r"[^=]+=[^=]*", part)), None)
        if named is not None:
            column = named.split("=", 1)[0]
            raise InputError(f"{file} is in a folder named {named!r}: the dataset is partitioned by {column!r}, "
                             "which is in the folder names, not in the files, and would be lost; write the files "
                             f"with {column!r} as a column of their own (without partition columns)")


def check_same_columns(files: list[Path]) -> list[str]:
    """The column names shared by every file; an :class:`InputError` naming the first file that differs from the
    columns most files have (a README.txt among two CSV files is the one named, not the data)."""
    columns = [table_columns(file) for file in files]
    expected = Counter(map(tuple, columns)).most_common(1)[0][0]
    shared = sum(tuple(names) == expected for names in columns)
    reference = next(file for file, names in zip(files, columns) if tuple(names) == expected)
    for file, names in zip(files, columns):
        if tuple(names) != expected:
            missing, extra = [n for n in expected if n not in names], [n for n in names if n not in expected]
            detail = f"lacks {missing}" if missing else f"has extra {extra}" if extra else "has them in another order"
            others = f"{reference}" if shared == 1 else f"{reference} and {shared - 1} other file(s)"
            raise InputError(f"{file} does not have the columns of {others}: it {detail}; a dataset's files must "
                             "share their columns (move any other file out of the folder)")
    return list(expected)


def table_columns(path: Path) -> list[str]:
    """A file's column names, from its header or Parquet schema, without reading its rows."""
    _check_file(path)
    try:
        if table_format(path) == "parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        with _open_csv(path, sniff_csv(path), {}) as reader:
            return list(reader.schema.names)
    except InputError:
        raise
    except Exception as exc:
        raise _unreadable_file(path, exc) from exc


def read_table(path: str | os.PathLike, allow_empty: bool = False, one_format: bool = False) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a partitioned dataset of them, into a DataFrame.

    CSV files are sniffed first: the delimiter (``,`` ``;`` tab ``|``) and the
    encoding (UTF-8, else Latin-1 with a warning) are detected, and the
    choice is kept in ``frame.attrs["read_options"]`` so that ``train.py``
    reads the file the same way. A directory or glob is read file by file
    and the files' rows are concatenated in name order.

    Raises
    ------
    InputError
        When the file is missing, empty, binary, too large for memory, has
        duplicate column names, or cannot be parsed; when a dataset's files
        do not share their columns, or, with ``one_format`` (training: its
        ``train.py`` reads every file with one set of options), are CSV files
        written differently (delimiter, decimal mark, encoding).
    """
    files = dataset_files(path)
    if not is_dataset(path):
        return _read_file(files[0], allow_empty)
    check_same_columns(files)
    _check_size(sum(f.stat().st_size for f in files), path)
    frames = [_read_file(file, allow_empty=True, check=False) for file in files]
    if one_format:
        _check_one_format([(file, f.attrs["read_options"]) for file, f in zip(files, frames)
                           if f.attrs.get("read_options")])
    frame = pd.concat(frames, ignore_index=True)
    if len(frame) == 0 and not allow_empty:
        raise InputError(f"the files of {path} have no data rows")
    log.info("read %d rows from %d files of %s", len(frame), len(files), path)
    frame.attrs["read_options"] = frames[0].attrs["read_options"]
    return frame


def _check_one_format(written: list[tuple[Path, dict]]) -> None:
    """Each CSV file's read options (``(file, options)``) the first one's, or an error naming the difference."""
    for file, options in written[1:]:
        first_file, first = written[0]
        if options != first:
            differ = ", ".join(f"{key} {options.get(key)!r} against {first.get(key)!r}"
                               for key in sorted(set(options) | set(first)) if options.get(key) != first.get(key))
            raise InputError(f"{file} is written differently from {first_file} ({differ}); the bundle's train.py "
                             "reads every file of a dataset one way: save them alike")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(data_not_found(path))
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the path of a CSV or Parquet file")
    if not path.is_file():  # a pipe (/dev/stdin, <(...)) is read once; a table is read twice (sniffed, then parsed)
        raise InputError(f"{path} is not a regular file (a pipe?); save the table to a file and give its path")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")


def duplicate_names(names: Sequence[str]) -> list[str]:
    """The names given more than once, sorted: an error wherever a table's columns are named (CSV and Parquet
    headers, a frame, a CSV request body), since pandas would rename or merge them silently."""
    return sorted(n for n, count in Counter(names).items() if count > 1)


def _check_parquet_names(path: Path) -> None:
    """A Parquet file's column names, checked as a CSV header's: pyarrow's own error for a name given twice is
    "Multiple matches for FieldRef.Name(age)", and a column named "" made a scored file no model could read."""
    names = pq.read_schema(path).names
    duplicates = duplicate_names(names)
    if duplicates:
        raise InputError(f"{path} has duplicate column name(s): {', '.join(map(repr, duplicates))}; rename them")
    if "" in names:
        raise InputError(f"{path}: column {names.index('') + 1} has an empty name; name it (or drop it)")


def _unreadable_file(path: Path, exc: Exception) -> InputError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if table_format(path) == "csv" and "Expected" in reason and (line := _ragged_line(path)):
        reason += f" (line {line:,} of the file)"
        if re.search(r"got 1:\s*\(line", reason):  # pyarrow quotes the row: nothing but spaces or tabs
            reason += "; that line holds only spaces or tabs: delete it"
        elif _lone_carriage_return(path):  # pandas' to_csv leaves a value holding "\r" alone unquoted
            reason += ("; the file holds a carriage return (\\r) without a line feed, which ends a row: inside a "
                       "value that is not quoted it splits the row in two; quote such values or remove the \\r")
        elif line == 2:  # the header line has another count of fields than the first row: a title above it?
            reason += ("; if the first line is a title or a note above the header, or the header lacks a name "
                       "for the row labels, remove it or name that column")
    if "straddl" in reason:  # pyarrow's block of 1 MB: no row may be longer
        reason = "a row is longer than 1 MB (a very long text field?); shorten or drop that text and read it again"
    return InputError(f"cannot read {path} as {table_format(path).upper()}: {reason}")


def _lone_carriage_return(path: Path) -> bool:
    """Whether a CSV file holds a carriage return not followed by a line feed (read in blocks: an error's path)."""
    previous = b""
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            if (previous == b"\r" and block[:1] != b"\n") or re.search(rb"\r(?!\n|$)", block):
                return True
            previous = block[-1:]
    return False


def _ragged_line(path: Path) -> int | None:
    """The line of a CSV file's first row with another number of fields than its header, or None: pyarrow's
    parse error quotes the row but not where it is (numbered only by a reader on one thread, read again here)."""
    found = []

    def first(row) -> str:
        found.append(row.number)
        return "error"

    try:
        options = sniff_csv(path)
        pacsv.read_csv(path, read_options=pacsv.ReadOptions(encoding=options["encoding"], use_threads=False,
                                                           skip_rows=options.get("skiprows", 0)),
                       parse_options=pacsv.ParseOptions(delimiter=options["sep"], invalid_row_handler=first,
                                                        newlines_in_values=True))
    except Exception:  # noqa: BLE001 - the row was found (the handler's "error"), or it cannot be: no line then
        pass
    return _counting_blank_lines(path, found[0]) if found else None  # with the lines it skipped (comments)


def _counting_blank_lines(path: Path, number: int) -> int:
    """The line of the file that is pyarrow's row ``number``: pyarrow counts only lines that are not empty (a row
    after two blank lines, the file's line 6, was said to be on line 4)."""
    seen = 0
    for line, text in enumerate(_byte_lines(path), 1):
        seen += bool(text.rstrip(b"\r\n"))
        if seen == number:
            return line
    return number


def _read_file(path: Path, allow_empty: bool, check: bool = True) -> pd.DataFrame:
    _check_file(path)
    if check:
        check_memory(path)
    fmt = table_format(path)
    options: dict = {}
    size = path.stat().st_size
    if size >= LARGE_FILE_BYTES:
        log.info("reading %s (%.0f MB) with pyarrow ...", path, size / 2**20)
    started = time.perf_counter()
    try:
        if fmt == "parquet":
            _check_parquet_names(path)
            frame = pd.read_parquet(path, engine="pyarrow")
        else:
            options = sniff_csv(path)
            frame = read_csv(path, **options)
            codes = _code_columns(path, options, frame)
            if len(codes.columns):  # train.py reads them as text too, through the same options
                options["dtype"] = dict.fromkeys(codes.columns, "str")
                frame[list(codes.columns)] = codes
    except InputError:
        raise
    except MemoryError as exc:
        raise InputError(f"{path} does not fit in memory; use a sample of it or a machine with more memory") from exc
    except Exception as exc:  # pyarrow raises many types; the user needs one line
        raise _unreadable_file(path, exc) from exc
    if frame.shape[1] == 0:
        raise InputError(f"{path} has no columns")
    if len(frame) == 0 and not allow_empty:
        raise InputError(f"{path} has a header but no data rows")
    if size >= LARGE_FILE_BYTES:
        log.info("read %d rows x %d columns in %.1fs", len(frame), frame.shape[1], time.perf_counter() - started)
    frame.attrs["read_options"] = options
    return frame


#: text a CSV cell reads as a missing value: pandas' own markers except "None", which tables made in R or by
#: hand use as a category (vcd's Arthritis: Improved is "None", "Some" or "Marked", and half its rows were
#: dropped as missing); Python writes its missing values as empty cells. In a column of numbers, "None" and
#: the other placeholders of schema.NA_TOKENS still read as missing.
CSV_NA_VALUES = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                 "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null")


def read_csv(path: str | os.PathLike, sep: str = ",", encoding: str = "utf-8",
             na_values: Sequence[str] = CSV_NA_VALUES, keep_default_na: bool = False, decimal: str = ".",
             skiprows: int = 0, dtype: dict | None = None, usecols: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV file with pyarrow, the same way the bundle's ``train.py`` does (:func:`line_breaks_in_values`)."""
    with line_breaks_in_values():
        return pd.read_csv(path, engine="pyarrow", sep=sep, encoding=encoding, na_values=list(na_values),
                           keep_default_na=keep_default_na, decimal=decimal, skiprows=skiprows, dtype=dtype,
                           usecols=usecols)


@contextlib.contextmanager
def line_breaks_in_values():
    """pandas' pyarrow engine, with pyarrow told that a quoted value may hold a line break (pandas has no option
    for it). Without it pyarrow cuts the file into blocks at any line break, and a quoted value holding one across
    a block's end became a row of its pieces, without an error: 1 of dslabs' 20,761 Trump tweets, its source
    column read as '@realDonaldTrump Donald'. Reading with it took 0.64 s against 0.59 s for 2M rows (205 MB).
    One read at a time: two threads would otherwise each restore the other's patch."""
    with _LINE_BREAKS:
        parse_options = pacsv.ParseOptions
        pacsv.ParseOptions = functools.partial(parse_options, newlines_in_values=True)
        try:
            yield
        finally:
            pacsv.ParseOptions = parse_options


_LINE_BREAKS = threading.Lock()


def _code_columns(path: Path, options: dict, frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns of a CSV file most of whose values are written as codes, read again as text (an empty
    frame when there are none): 16 digits or more (:data:`CODE_DIGITS`), or whole numbers with leading zeros
    (:data:`LEADING_ZERO`: labels ``01``, ``007``, ``010`` read as 1, 7 and 10, and no longer matched the
    labels a user wrote)."""
    numeric = [name for name in frame.columns if pd.api.types.is_numeric_dtype(frame[name])
               and not pd.api.types.is_bool_dtype(frame[name])]
    large = [name for name in numeric if frame[name].abs().max() >= 1e15]  # NaN (no values) is not
    whole = [name for name in numeric if name not in large and _whole_numbers(frame[name])]
    zeros = _leading_zeros_in_first_block(path, options, whole) if whole else []
    candidates = large + zeros
    if not candidates:  # the file is read again (these columns only) just when a value is that large
        return pd.DataFrame()
    text = read_csv(path, **{**options, "dtype": dict.fromkeys(candidates, "str"), "usecols": candidates})
    found = [name for name in candidates if written_as_codes(text[name])]
    for name in found:
        log.info("column %r: %s read as text (codes, not quantities)", name,
                 "numbers of 16 digits or more" if name in large else "numbers written with leading zeros")
    return text[found]


def _whole_numbers(col: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(col):
        return True
    values = col.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    return len(values) > 0 and bool(np.all(np.mod(values, 1.0) == 0.0))


#: bytes of a CSV file's start that are read again as text, to see how its whole numbers are written: a 16 MB
#: block of every column took 0.57 s on a 52 MB file whose whole read takes 0.41 s
LEADING_ZERO_SAMPLE_BYTES = 1 << 20


def _leading_zeros_in_first_block(path: Path, options: dict, names: list[str]) -> list[str]:
    """Of ``names``, the columns whose values in the file's first block (:data:`LEADING_ZERO_SAMPLE_BYTES`) are
    written as codes (:func:`mlkiln.options.written_as_codes`)."""
    try:
        with _open_csv(path, options, dict.fromkeys(names, pa.string()), LEADING_ZERO_SAMPLE_BYTES,
                       names) as reader:
            block = reader.read_next_batch()
    except (StopIteration, pa.ArrowException):
        return []
    found = []
    for name in names:
        if name not in block.schema.names or not pa.types.is_string(block.schema.field(name).type):
            continue
        if written_as_codes(block.column(name).to_pandas()):
            found.append(name)
    return found


#: delimiters tried when sniffing, in order of preference on ties
DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16


def _decodes(head: bytes, stream, encoding: str) -> bool:
    """Whether ``head`` and the rest of ``stream`` decode as ``encoding``, read in blocks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    chunk = head or stream.read(1 << 22)
    try:
        while chunk:
            decoder.decode(chunk)
            chunk = stream.read(1 << 22)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _mixed_utf8_line(path) -> tuple[int, str] | None:
    """``(number, text)`` of the first line that is not UTF-8 in a file where another line is UTF-8 beyond
    ASCII (accented letters); None when no line is (a file wholly in another encoding)."""
    utf8, first_bad = False, None
    for number, line in enumerate(_byte_lines(path), 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            first_bad = first_bad or (number, line.decode("cp1252", errors="replace").strip()[:60])
        if utf8 and first_bad:
            return first_bad
    return None


def _byte_lines(path) -> Iterator[bytes]:
    """A (possibly compressed) file's lines as bytes, read in blocks; the last one even without its newline."""
    rest = b""
    with pa.input_stream(str(path), compression="detect") as stream:
        while chunk := stream.read(1 << 22):
            *lines, rest = (rest + chunk).split(b"\n")
            yield from lines
    if rest:
        yield rest


def _comment_lines(lines: list[str]) -> int:
    """How many lines above the header are comments: they start with ``#`` and split into other fields than the
    header (a header such as "# of rooms,price" is one). They were a parse error ("Expected 1 columns, got 3")."""
    count = 0
    while count < len(lines) - 1 and lines[count].startswith("#"):
        count += 1
    if not count:
        return 0
    sep = _best_delimiter("".join(lines[count:count + 50]))
    fields = len(next(csv.reader(io.StringIO(lines[count]), delimiter=sep), []))
    first = len(next(csv.reader(io.StringIO(lines[0]), delimiter=sep), []))
    return count if first != fields else 0


def _refuse_other_formats(path, head: bytes) -> None:
    """An :class:`InputError` naming the format of a file read as CSV that is a workbook, Parquet or compressed."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):  # zip (.xlsx) or OLE (.xls)
        raise InputError(f"{path} looks like an Excel workbook (or another zip file), not a CSV or Parquet "
                         "file; save the sheet as CSV")
    if head.startswith(b"PAR1"):  # a Parquet file by another name (.csv, .parquet.gz)
        raise InputError(f"{path} is a Parquet file; name it .parquet, uncompressed (Parquet compresses its own "
                         "columns)")
    packed = {b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}  # formats pyarrow did not read through
    codec = next((name for magic, name in packed.items() if head.startswith(magic)), None)
    if codec:
        raise InputError(f"{path} is compressed as {codec}, which mlkiln does not read; decompress it, or "
                         "compress it as .gz or .bz2")


def sniff_csv(path: str | os.PathLike) -> dict:
    """Detect a CSV file's delimiter and encoding; refuse binary files and duplicate headers.

    Returns the options of :func:`read_csv` (which ``train.py`` reads with
    too), the missing-value markers :data:`CSV_NA_VALUES` among them.
    """
    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(_SNIFF_BYTES)
        # UTF-16 (Excel's "Unicode text") starts with its byte-order mark, and half its bytes are NUL
        encoding = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8"
        _refuse_other_formats(path, head)
        if b"\x00" in head and encoding == "utf-8":
            raise InputError(f"{path} is not a text file (it contains NUL bytes); give a CSV or Parquet file")
        lone = len(re.findall(rb"\r(?!\n)", head.rstrip(b"\r")))  # classic Mac OS's line ends (a few may be in text)
        if encoding == "utf-8" and lone >= 2 and lone * 10 >= lone + head.count(b"\n"):
            raise InputError(f"{path} has lines that end in a carriage return alone (classic Mac OS); save it with "
                             "Unix (LF) or Windows (CRLF) line endings")
        # an object, or an array of objects or arrays: a header such as "[id],[name]" (SQL Server's) is CSV
        if re.match(rb"\{|\[\s*[{\[]", head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")):
            raise InputError(f"{path} looks like JSON, not a CSV or Parquet file; save the table as CSV or "
                             "Parquet (pandas: read_json, then to_csv or to_parquet)")
        if re.match(rb"<(!doctype\s+html|html[\s>]|\?xml)", head.lstrip(codecs.BOM_UTF8 + b" \t\r\n").lower()):
            raise InputError(f"{path} is an HTML or XML document, not a CSV or Parquet file: often a web page (an "
                             "error or preview page) saved instead of the data; download the raw file")
        if not _decodes(head, stream, encoding):
            mixed = _mixed_utf8_line(path) if encoding == "utf-8" else None
            if mixed:  # read as Windows-1252, every UTF-8 letter of the other lines was garbled ("ZÃ¼rich")
                raise InputError(f"{path} is UTF-8 text except line {mixed[0]:,} ({mixed[1]!r}), written in "
                                 "another encoding; fix that line, or save the whole file in one encoding")
            # Windows' "ANSI" (what Excel saves as CSV there) where it decodes: € and curly quotes are its bytes
            # 0x80-0x9F, control characters in Latin-1, which agrees with it everywhere else
            with pa.input_stream(str(path), compression="detect") as again:
                encoding = "cp1252" if _decodes(b"", again, "cp1252") else "latin-1"
            log.warning("%s is not UTF-8; reading it as %s (re-save it as UTF-8 if text looks wrong)", path,
                        "Windows-1252" if encoding == "cp1252" else "Latin-1")
    text = head.decode(encoding, errors="ignore")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    excel = re.fullmatch(r"sep=(.)\r?\n?", lines[0]) if lines else None  # Excel's line naming the delimiter
    skip = 1 if excel else _comment_lines(lines)
    lines = lines[skip:]
    sep = excel.group(1) if excel else _best_delimiter("".join(lines[:50]))
    header = next(csv.reader(io.StringIO(lines[0] if lines else ""), delimiter=sep), [])
    names = [name.strip() for name in header]
    duplicates = [n for n in duplicate_names(names) if n]  # empty ones become "Unnamed: i"
    if duplicates:
        raise InputError(f"{path} has duplicate column name(s) {', '.join(map(repr, duplicates))}; rename them")
    options = {"sep": sep, "encoding": encoding, "na_values": list(CSV_NA_VALUES), "keep_default_na": False}
    if skip:
        options["skiprows"] = skip
    if skip and not excel:
        log.info("%s: skipping %d comment line(s) above the header", path, skip)
    if sep != ",":
        log.info("%s: detected %r as the delimiter", path, sep)
        example = _decimal_comma(lines[1:50], sep)
        if example:
            log.info("%s: reading ',' as the decimal point (numbers such as %s)", path, example)
            options["decimal"] = ","
    return options


_COMMA_NUMBER = re.compile(r"[+-]?\d*,\d+")
_DOT_NUMBER = re.compile(r"[+-]?\d*\.\d+")


def _decimal_comma(lines: list[str], sep: str) -> str | None:
    """A sampled value that shows the decimal point is a comma (``0,126``), or None.

    Only for a file not delimited by commas (Excel writes ``;`` where the
    comma is the decimal point), and only when no value has a decimal dot:
    read as thousands, ``0,126`` became 126.
    """
    fields = [field.strip() for row in csv.reader(io.StringIO("".join(lines)), delimiter=sep) for field in row]
    if any(_DOT_NUMBER.fullmatch(f) for f in fields):
        return None
    return next((f for f in fields if _COMMA_NUMBER.fullmatch(f)), None)


def _best_delimiter(sample: str) -> str:
    """The delimiter that splits every sampled row into the same number (> 1) of fields.

    The sample is whole lines, so its last row may be a record cut inside a quoted line break: not counted (a
    ``;`` file whose notes span lines was read as one column of ``x;note;y``)."""
    best, best_fields = ",", 1
    for sep in DELIMITERS:
        rows = [row for row in csv.reader(io.StringIO(sample), delimiter=sep) if row]
        rows = rows[:-1] if len(rows) > 1 else rows
        counts = {len(row) for row in rows}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = sep, fields
    return best


class TypeDrift(Exception):
    """A streamed column holds values, past its first block, that the type it was given cannot hold.

    ``dtype`` is the wider type to read the column as; the reader's caller
    starts again with it, as pyarrow's whole-file read widens a column's
    type when a later block needs it.
    """

    def __init__(self, column: str, dtype: pa.DataType):
        super().__init__(f"column {column!r} needs {dtype}")
        self.column, self.dtype = column, dtype


#: pyarrow's inference order for CSV columns, which a column whose values outgrow its type moves along
_WIDENING = (pa.null(), pa.int64(), pa.bool_(), pa.float64(), pa.timestamp("s"), pa.timestamp("ns"), pa.string())


def read_batches(path: str | os.PathLike, types: dict[str, pa.DataType] | None = None,
                 parsed=None) -> Iterator[pa.RecordBatch]:
    """Stream a CSV or Parquet file as record batches: :data:`BATCH_ROWS` rows, or CSV blocks of :data:`CSV_BLOCK_BYTES`.

    Each column gets the type :func:`read_table` would give it: CSV files are
    sniffed as there, read with pandas' missing-value markers, parsed as text
    and cast batch by batch to ``types[column]``, else to the type pyarrow
    infers from the first block. With ``parsed`` (the kinds of the columns a
    model reads), a CSV column outside it, or one the model reads as text,
    whose numbers would not be written back as they are (leading zeros, more
    than 15 digits: codes) stays text, so a scored file echoes what it was
    given and the model sees the codes it was trained on. At least one (possibly empty) batch
    is yielded, so the caller always learns the columns.

    Raises
    ------
    TypeDrift
        When a later batch does not fit a column's type; read again with
        ``types[drift.column] = drift.dtype``.
    InputError
        When the file is missing, binary or cannot be parsed.
    """
    path = Path(path)
    _check_file(path)
    types = types or {}
    csv_file = table_format(path) != "parquet"
    try:
        if not csv_file:
            source = pq.ParquetFile(path)
            schema, decimal = source.schema_arrow, "."
            # one row group at a time: a reader over the whole file keeps what it decoded,
            # and its memory grows with the file (measured: +100 MB per 5M rows)
            batches = (
                batch for group in range(source.num_row_groups)
                for batch in source.iter_batches(batch_size=BATCH_ROWS, row_groups=[group])
            )
        else:
            options = sniff_csv(path)
            decimal = options.get("decimal", ".")
            with _open_csv(path, options, {}) as first_block:
                schema = first_block.schema
            # every column as text: a value the first block's type cannot hold must not stop the reader
            batches = _open_csv(path, options, dict.fromkeys(schema.names, pa.string()))
        # a CSV header's empty name is pandas' "Unnamed: i", as read_table (and training) calls it
        names = [f"Unnamed: {i}" if f.name == "" and csv_file else f.name for i, f in enumerate(schema)]
        verbatim: set = set()
        if csv_file and parsed is not None:
            first = next(batches, None)
            if first is not None:
                verbatim = {n for n, f, text in zip(names, schema, first.columns)
                            if parsed.get(n, "categorical") == "categorical"
                            and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
                            and pc.any(pc.match_substring_regex(text, LEADING_ZERO + "|" + CODE_DIGITS)).as_py()}
                batches = itertools.chain([first], batches)
        wanted = pa.schema([pa.field(n, types.get(n, pa.string() if n in verbatim else _as_read(f.type)))
                            for n, f in zip(names, schema)])
        empty = True
        for batch in batches:
            empty = False
            yield _cast(batch, wanted, decimal)
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=wanted)
    except (InputError, TypeDrift):
        raise
    except Exception as exc:  # pyarrow raises many types; the user needs one line
        raise _unreadable_file(path, exc) from exc


def _open_csv(path: Path, options: dict, column_types: dict, block_size: int | None = None,
              columns: Sequence[str] = ()) -> pacsv.CSVStreamingReader:
    """pyarrow's streaming CSV reader with the options of :func:`read_csv` (pandas' pyarrow engine); ``columns``
    (default: all) are the ones it converts; blocks of ``block_size`` bytes, by default :data:`CSV_BLOCK_BYTES`."""
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=options["encoding"], block_size=block_size or CSV_BLOCK_BYTES,
                                       skip_rows=options.get("skiprows", 0)),
        parse_options=pacsv.ParseOptions(delimiter=options["sep"], newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(null_values=list(options["na_values"]), strings_can_be_null=True,
                                             column_types=column_types, decimal_point=options.get("decimal", "."),
                                             include_columns=list(columns), include_missing_columns=True),
    )


def _as_read(dtype: pa.DataType) -> pa.DataType:
    """The type pandas' reader ends with: an all-missing column becomes float64. A time of day stays text, read
    by mlkiln's own rules: pyarrow infers ``time32`` from ``23:02`` yet cannot cast that text to it, so every
    ``predict`` of such a file read it a second time."""
    if pa.types.is_time(dtype):
        return pa.string()
    return pa.float64() if pa.types.is_null(dtype) else dtype


def _cast(batch: pa.RecordBatch, schema: pa.Schema, decimal: str = ".") -> pa.RecordBatch:
    """``batch`` (read as text) in ``schema``'s types; ``decimal`` is the file's decimal point."""
    if batch.schema.equals(schema):
        return batch
    columns = []
    for field, column in zip(schema, batch.columns):
        if decimal != "." and pa.types.is_floating(field.type) and pa.types.is_string(column.type):
            column = pc.replace_substring(column, decimal, ".")
        try:
            columns.append(column if column.type == field.type else pc.cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise TypeDrift(field.name, _wider(field.type, column)) from None
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _wider(dtype: pa.DataType, column: pa.Array) -> pa.DataType:
    """The first type after ``dtype`` in pyarrow's inference order that holds ``column``."""
    later = _WIDENING[_WIDENING.index(dtype) + 1:] if dtype in _WIDENING else (pa.string(),)
    for candidate in later:
        try:
            pc.cast(column, candidate)
            return candidate
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return pa.string()


def available_memory() -> int:
    """Bytes of memory this process may use: ``MLKILN_MAX_MEMORY`` (e.g. ``2G``) or what the OS has free."""
    limit = os.environ.get("MLKILN_MAX_MEMORY")
    if limit:
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        limit = limit.strip().upper().removesuffix("B")
        try:
            return int(float(limit[:-1]) * units[limit[-1]]) if limit[-1] in units else int(limit)
        except ValueError as exc:
            raise InputError(f"MLKILN_MAX_MEMORY={os.environ['MLKILN_MAX_MEMORY']!r} is not a size like 2G or 512M") from exc
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


#: training holds several working copies of the table; more than this share of memory will not fit
MEMORY_FACTOR = 4


def check_memory(path: Path) -> None:
    """Refuse up front a file that cannot fit, instead of failing deep inside pyarrow."""
    _check_size(path.stat().st_size, path)


def _check_size(size: int, path) -> None:
    free = available_memory()
    if size * MEMORY_FACTOR > free:
        raise InputError(
            f"{path} ({size / 2**30:.2f} GiB) is too large for the available memory ({free / 2**30:.2f} GiB): "
            f"mlkiln needs about {MEMORY_FACTOR}x the file size; use a sample of the table or a larger machine "
            "(`mlkiln predict` streams and has no such limit)"
        )


def write_table(frame: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Write ``frame`` as CSV or Parquet (``fmt``, or else chosen by the file name), all at once or not at all.

    A full disk left a truncated table where the old file had been.
    """
    parquet = (fmt or output_format(path)) == "parquet"
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False) if parquet else frame.to_csv(tmp, index=False)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (a dataset's files' bytes in name order), read in chunks so large files stay cheap."""
    digest = hashlib.sha256()
    for file in dataset_files(path):
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """Hex sha256 of a DataFrame's contents, for tables that never were a file."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(row_hashes(frame).tobytes())
    return digest.hexdigest()


def row_hashes(frame: pd.DataFrame, y: pd.Series | None = None) -> np.ndarray:
    """A 64-bit hash of each row's values (and its target ``y``, when given): equal rows, equal hashes."""
    if y is not None:
        frame = frame.assign(**{"\0target": y.to_numpy()})
    try:
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    except TypeError:  # lists or dicts in a column (as a Parquet file's list column reads): hashed as their text
        text = [c for c in frame.columns if frame[c].dtype == object]
        return pd.util.hash_pandas_object(frame.astype(dict.fromkeys(text, str)), index=False).to_numpy()


def split_train_test(
    X: pd.DataFrame, y: pd.Series, *, test_size: float, seed: int, stratify: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Hold out the test rows first, stratified by class for classification."""
    n_test = int(np.ceil(test_size * len(y)))
    if n_test < 1 or len(y) - n_test < 2:
        raise InputError(
            f"{len(y)} rows are too few to hold out a test split of {test_size:g}; "
            "use more data or a smaller test size"
        )
    if n_test < 2:  # the test metrics of one row are undefined (R2) or meaningless
        raise InputError(f"a test split of {test_size:g} holds one of the {len(y)} rows, too few to score a model "
                         f"on; use a test size of at least {2 / len(y):.2g}")
    if stratify:
        n_classes = y.nunique()
        if n_test < n_classes:
            raise InputError(
                f"a test split of {n_test} rows cannot hold all {n_classes} classes; "
                "use a larger test size or more data"
            )
    return train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
    )


def load_frame(data, source: str | None = None) -> tuple[pd.DataFrame, dict]:
    """The table of a path or DataFrame, with what the card records about it (source, sha256, shape).

    Column names become strings; duplicate names and an empty table are errors.
    """
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
        info = {"source": source or "DataFrame", "sha256": frame_sha256(frame)}
    elif isinstance(data, (str, os.PathLike)):
        frame = read_table(data, one_format=True)
        info = {"source": source or str(Path(data).name), "sha256": file_sha256(data),
                "read_options": frame.attrs.get("read_options", {})}
    else:
        raise InputError(f"data must be a file path or a pandas DataFrame, got {type(data).__name__}")
    names = [str(c) for c in frame.columns]
    duplicates = [n for n in duplicate_names(names) if n]  # empty ones become "Unnamed: i"
    if duplicates:
        raise InputError(f"duplicate column name(s): {', '.join(map(repr, duplicates))}; rename them")
    frame.columns = names
    if len(frame) == 0:
        raise InputError("the table has no rows")
    info.update(rows=int(len(frame)), columns=int(frame.shape[1]))
    return frame, info


def check_enough_rows(n_rows: int, folds: int, spare: int = 0) -> None:
    """Refuse fewer rows than ``folds``-fold cross-validation needs, plus ``spare`` for a test split. Training
    asks before it screens the columns: in one row every column is constant, and the rows are what is wrong."""
    if n_rows < folds + spare:
        test = " and a test split" if spare else ""
        raise InputError(f"{n_rows} row(s) with a target are too few for {folds}-fold cross-validation{test} "
                         f"(at least {folds + spare}); add rows or use fewer folds")


#: validation folds smaller than this get a warning: a score on a handful of rows is mostly noise
FEW_FOLD_ROWS = 10


def check_folds(task: str, y: pd.Series, folds: int, spare: int = 0) -> None:
    """Every training fold must hold every class, and every fold some rows (two for R2; a warning below
    :data:`FEW_FOLD_ROWS`).

    Before the split, ``spare=1`` asks each class for one more row, for the test split. Training asks before it
    screens the columns: a class of one row made every column look like a perfect leak (balanced accuracy 1.0).
    """
    check_enough_rows(len(y), folds, spare)
    if task == "classification":
        counts = y.value_counts()
        if counts.min() < folds + spare:
            held = "one for the test split, " if spare else ""
            # whole numbers with a rare value are often a count (goals, visits) taken for classes
            numbers = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
            # fractional labels are read as text (0.5, 1.5), so a measurement forced into classes is text too
            numbers = numbers or (len(counts) > len(y) / 2
                                  and pd.to_numeric(pd.Series(counts.index), errors="coerce").notna().all())
            header = counts.idxmin() == y.name  # the column's own name: its header line repeated inside the data
            raise InputError(
                f"class {scalar_text(counts.idxmin())} has only {counts.min()} row(s); each class needs at least "
                f"{folds + spare} ({held}{folds} for {folds}-fold CV): add rows, drop that class, or use fewer folds"
                + ("; a class named as the column is most often its header line repeated inside the data (files "
                   "joined with their headers): remove those lines" if header else "")
                + (f"; or, if the target counts or measures something (it has {len(counts):,} distinct values in "
                   f"{len(y):,} rows), use --task regression" if numbers else "")
            )
    if spare:
        return
    per_fold = len(y) // folds
    if task == "regression" and per_fold < 2:  # R2 of one row is undefined: every candidate would 'fail'
        raise InputError(f"{folds}-fold cross-validation of {len(y)} training rows leaves validation folds of one row, "
                         f"where R2 is undefined; use at most {len(y) // 2} folds")
    if per_fold < FEW_FOLD_ROWS:
        log.warning("%d-fold cross-validation of %d rows: validation folds of %d rows score each candidate on so few "
                    "rows that the choice is mostly noise; fewer folds choose more steadily", folds, len(y), per_fold)


def nested_sample(y: pd.Series, task: str, seed: int, folds: int) -> np.ndarray:
    """Row positions in a seeded order whose every prefix is a (stratified) random sample of the rows.

    The sampled search's rungs are prefixes of it (each holds the smaller
    ones), and so is a --budget's final fit on fewer rows; ``train.py``
    embeds this function to draw the same rows. For classification the rows
    are ordered by their rank within their class, so a prefix holds each
    class in proportion, and the first ``folds`` rows of every class come
    first: every prefix can be split into folds.
    """
    order = np.random.default_rng(seed).permutation(len(y))
    if task == "classification":
        codes = pd.factorize(y.to_numpy()[order])[0]
        within = pd.Series(codes).groupby(codes).cumcount().to_numpy()
        share = np.where(within < folds, 0.0, within / np.bincount(codes)[codes])
        order = order[np.argsort(share, kind="stable")]
    return order
