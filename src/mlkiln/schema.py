"""Understand a table: column kinds, the task, columns to exclude, and the input schema.

The schema decided here at training time is the contract for every later
input: :func:`conform` applies it to prediction data for ``predict``,
``evaluate``, the Python API and the HTTP service alike.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
import difflib
import functools
import logging
import math
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from .card import Column
from .errors import InputError
from .jsonio import scalar_text
from .leakage import CombinationLeak, find_combination_leaks
from .options import written_as_codes

log = logging.getLogger("mlkiln")

#: integer targets with at most this many distinct values are treated as classes
MAX_CLASSES_FOR_AUTO = 20
#: a text column whose distinct values cover at least this share of rows is an identifier
ID_UNIQUE_RATIO = 0.95
#: a column of distinct whole numbers is a row number when at least this share of its sorted steps are 1: an R
#: export's row names with two gaps (pscl/presidentialElections: 1..1045, 9461, 9471) put two test rows far
#: outside the training range, and a least-squares member predicted 2,200 for a vote share (test R2 -255)
ID_CONSECUTIVE_SHARE = 0.98
#: a column of distinct whole numbers rising in file order is a row number when its median step is at most this
ID_ROW_STEP = 2
#: the last word of a column name that says its distinct whole numbers are keys, not quantities, however spread
#: (a sample of a customer table: 2,000 ``customer_id`` values drawn from 0..99,999). Without such a name, distinct
#: spread integers stay a feature: a price in cents or a population is distinct in every row of a small table
ID_NAME_WORDS = frozenset({"id", "ids", "uid", "uuid", "guid", "udi", "idx", "key", "pk"})
#: a single column scoring this well on its own (R2 or balanced accuracy) leaks the target
LEAK_SCORE = 0.99
#: a binary column is leakage when one value is pure for one class and chance
#: alone would give that purity with at most this probability
LEAK_CHANCE = 1e-4
#: numeric-looking text columns: the share of values that must parse as numbers
NUMERIC_TEXT_SHARE = 0.95
#: how many categories the schema lists per column
MAX_LISTED_CATEGORIES = 100


#: the largest number a value may be: scikit-learn's trees hold values as float32, and a larger one (1e39) was an
#: internal error in training; beyond it a value counts as unreadable (missing), as +-inf does
VALUE_MAX = float(np.finfo(np.float32).max)
#: a number as Python and pandas read it alike ("-1.5e3"): one record's value skips :func:`to_number`'s pandas
#: steps (2.4 ms a value) for the same float. Not with a leading "+": pandas reads "+823.E23" one
#: bit off Python's float (a property test in test_properties.py compares the two ways)
_PLAIN_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


#: a plain ISO date or time without a zone ("2020-01-05", "2020-01-05 08:30:00.25"), which one record reads with
#: datetime.fromisoformat to the same seconds as :func:`to_seconds`: pandas' reading of one value took 3 ms, and a
#: /predict batch of 10,000 records with a date 31 s. Within the years pandas' nanosecond times hold. A time may
#: end in its offset from UTC ("Z", "+02:00": JavaScript's toISOString), read as pandas reads it, in UTC
_PLAIN_ISO_TIME = re.compile(r"(\d{4})-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?",
                             re.ASCII)
_ISO_YEARS = (1678, 2261)
_EPOCH = dt.datetime(1970, 1, 1)


#: one comma before three digits: "2,980" is 2980 with the comma grouping thousands, 2.98 with a decimal comma
_EITHER_COMMA = r"[+-]?[1-9]\d{0,2},\d{3}"


def to_number(col, comma: str | None = None):
    """Read a column as float64: thousands separators ("1,234.5"; "1 234,5" and "1'234.5" with a space,
    no-break space or apostrophe; "1.234,5" and "1.234.567" with dots), a currency or percent sign ("$8,369.00", "8369 €", "8.4%" is 8.4), the
    typographic minus sign ("−0.5") and an accountant's negative ("(1,234.50)") are understood; a duration
    is its seconds; text that is not a number, +-inf and values beyond :data:`VALUE_MAX` become NaN.
    ``comma``: how the column uses a comma (:func:`comma_reading`), found from its values when None.
    pandas and numpy only."""
    if pd.api.types.is_timedelta64_dtype(col):
        numbers = col.dt.total_seconds().astype("float64")
    elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        numbers = col.astype("float64")
    elif (distinct := _distinct(col)) is not None and 0 < 2 * len(distinct[1]) < len(col):
        # each distinct text read once (what decides a comma's reading is whether a form occurs, not how often):
        # a text column of 2,930 rows took 47 ms, and screening ames' 40 of them 3.8 s
        codes, values = distinct
        numbers = to_number(pd.Series(values, dtype=object), comma).to_numpy()
        return pd.Series(np.where(codes >= 0, numbers[np.maximum(codes, 0)], np.nan), index=col.index)
    else:
        text = _number_words(col)
        # pandas' .str refuses a column of NaN alone; text without a digit is no number (the flags' words are 1 and 0)
        if not text.notna().any() or not text.str.contains(r"\d", na=False).any():
            return pd.Series(np.nan, index=col.index)
        # one comma before three digits ("2,980") is a thousands separator or a decimal comma: the column decides.
        # A decimal comma where no grouping explains the value ("1,59", "0,149") and no value only grouping
        # explains ("1,234,567", "1,234.5") make all of them decimal commas; else they group thousands, as before.
        # Value by value, one column mixed 1.59 and 149 (from "0,149") silently
        either = text.str.fullmatch(_EITHER_COMMA, na=False)
        if (comma or _comma_of_words(text)) == "decimal":
            text = text.where(~either, text.str.replace(",", ".", regex=False))
        grouped = text.str.fullmatch(r"[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d*)?", na=False)
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
        # grouped by a space, a no-break space (French, Polish, Russian) or an apostrophe (Swiss); then the
        # decimal mark is whichever of . and , is left
        spaced = text.str.fullmatch("[+-]?\\d{1,3}([ \u00a0\u202f'\u2019]\\d{3})+([.,]\\d+)?", na=False)
        text = text.where(~spaced, text.str.replace("[ \u00a0\u202f'\u2019]", "", regex=True).str.replace(",", ".", regex=False))
        # grouped by dots with a decimal comma (German, Spanish, Italian, Brazilian: "2.695,4"), or by two dots or
        # more ("1.234.567"); one dot and no comma ("1.000") reads as the decimal point it is in English
        dotted = text.str.fullmatch(r"[+-]?\d{1,3}((\.\d{3})+,\d+|(\.\d{3}){2,})", na=False)
        text = text.where(~dotted, text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False))
        # a decimal comma no thousands grouping can explain ("771,9", "0,25"; "1,234" stays a thousand)
        decimal = text.str.fullmatch(r"[+-]?\d+,\d+", na=False)
        text = text.where(~decimal, text.str.replace(",", ".", regex=False))
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    return in_range(numbers)


def in_range(numbers):
    """``numbers`` (a float64 Series or DataFrame) with +-inf and values beyond :data:`VALUE_MAX` as NaN."""
    return numbers.where(np.isfinite(numbers) & (numbers.abs() <= VALUE_MAX), np.nan)


def held_as_numbers(frame, kinds) -> list[str]:
    """The number columns of ``kinds`` that ``frame`` holds as numbers or flags already (no text to read)."""
    dtypes = dict(zip(frame.columns, frame.dtypes))
    return [name for name, kind in kinds.items() if kind == "numeric" and dtypes[name].kind in "fiub"]


def _distinct(col) -> tuple | None:
    """``(codes, values)``: a column's distinct values and each row's place among them (-1 where missing), or None
    where its values cannot be hashed (lists)."""
    try:
        return pd.factorize(col.astype("object"))
    except TypeError:
        return None


def _number_words(col):
    """A column's values as the text of numbers: spaces, the typographic minus, an accountant's parentheses,
    a flag's words and a currency or percent sign taken off (``to_number``'s first steps)."""
    # a flag column with a missing value arrives as Python True / False among None: as the numbers it was
    text = col.astype("object").map(_number_text, na_action="ignore")
    if not text.notna().any():
        return text
    text = text.str.strip().str.replace("\u2212", "-", regex=False).str.replace(r"^\((.+)\)$", r"-\1", regex=True)
    # a flag written as text (a Parquet string column, JSON "true"): what the CSV reader makes a boolean of
    text = text.str.replace(r"(?i)^true$", "1", regex=True).str.replace(r"(?i)^false$", "0", regex=True)
    return text.str.replace(r"^([+-]?)[$€£¥]\s*(?=[+-]?[\d.])|(?<=\d)\s*[€£¥%]$", r"\1", regex=True)


def comma_reading(col) -> str | None:
    """How a column of numbers written as text uses a comma: ``"decimal"`` when one of them has a comma no
    thousands grouping explains ("1,59", "0,149", "1.234,5") and none has grouping alone explains
    ("1,234,567", "1,234.5"); ``"grouping"`` when commas are there otherwise; None with no comma at all. The
    card keeps it, so new rows such as "2,980" read as training read them, whatever else their batch holds."""
    return _comma_of_words(_number_words(col))


def _comma_of_words(text) -> str | None:
    """:func:`comma_reading` of text :func:`_number_words` made."""
    if not text.notna().any() or not text.str.contains(",", regex=False, na=False).any():
        return None
    either = text.str.fullmatch(_EITHER_COMMA, na=False)
    only_decimal = (text.str.fullmatch(r"[+-]?\d+,\d+", na=False) & ~either) | text.str.fullmatch(
        r"[+-]?\d{1,3}(\.\d{3})+,\d+", na=False)
    grouping_only = text.str.fullmatch(r"[+-]?[1-9]\d{0,2}((,\d{3}){2,}(\.\d*)?|,\d{3}\.\d*)", na=False)
    return "decimal" if only_decimal.any() and not grouping_only.any() else "grouping"


def _number_text(value) -> str:
    return str(int(value)) if isinstance(value, (bool, np.bool_)) else str(value)


def to_seconds(col, order: str | None = None):
    """Read a column of dates/times as seconds since 1970-01-01 UTC (float64);
    what does not read as a date becomes NaN. pandas and numpy only.

    ``order``: how the column writes dd/mm/yyyy or mm/dd/yyyy (:func:`date_order`), found from its values when
    None: a column holding 13/02/2020 reads 01/02/2020 as February 1st, every value the same way.

    A time of day alone ("08:30") is that time on 1970-01-01, i.e. seconds
    since midnight: pandas would put it on the day it is read, and the same
    input would predict differently on the day after training."""
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = pd.to_datetime(col, utc=True)
    else:
        text = col.astype("object").map(str, na_action="ignore")
        if text.notna().any():  # pandas' .str refuses a column of NaN alone
            text = text.str.strip()
            # "8pm", "8:30 p.m." and ISO's "T20:00" too: pandas would put those on January 1st of year 1
            time_only = text.str.fullmatch(r"T?\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(\s*[AaPp]\.?[Mm]\.?)?"
                                           r"|\d{1,2}\s*[AaPp]\.?[Mm]\.?", na=False)
            if time_only.any():
                clock = text[time_only].str.removeprefix("T").str.replace(r"([AaPp])\.([Mm])\.?$", r"\1\2",
                                                                             regex=True)
                text = text.copy()
                text[time_only.to_numpy()] = ("1970-01-01 " + clock).to_numpy()
            # 13.02.2020: dots are written day first wherever they are used; pandas would read 01.02 as January 2nd
            text = text.str.replace(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})\b", r"\3-\2-\1", regex=True)
            if (order or date_order(text)) == "day first":
                text = text.str.replace(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})\b", r"\3-\2-\1", regex=True)
            # pandas reads "now" and "today" as the moment it reads them: a prediction that changed every second
            text = text.where(~text.str.fullmatch(r"(?i)now|today", na=False), np.nan)
        try:
            stamps = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        except (ValueError, OverflowError):  # e.g. a year out of range: parse value by value
            stamps = pd.to_datetime(text.map(_one_timestamp), utc=True)
    naive = stamps.dt.tz_localize(None)
    micros = naive.to_numpy().astype("datetime64[us]").astype("int64").astype("float64")
    micros[naive.isna().to_numpy()] = np.nan
    return pd.Series(micros / 1e6, index=col.index)


def date_order(text) -> str | None:
    """How a column's dates written dd/mm/yyyy or mm/dd/yyyy order day and month: ``"day first"`` when one's
    first number passes 12 and no second one does (13/02/2020), ``"month first"`` when a second one passes 12
    (02/13/2020), None when none says (or no such date). The card keeps it for new rows. pandas only."""
    if pd.api.types.infer_dtype(text, skipna=True) != "string":
        text = text.astype("object").map(str, na_action="ignore").astype("object")
    # which values may be such dates, by a test that fails on an ISO date's third character: 0.05 s a million
    # rows, where extracting the numbers of every value took 1.0 s (to_seconds itself takes 0.8 s)
    written = text.str.match(r"\d{1,2}[/-]\d{1,2}[/-]\d{4}\b", na=False) | text.str.startswith(
        (" ", "\t", "\n", "\r", "\u00a0"), na=False)
    if not written.any():
        return None
    parts = text[written].str.extract(r"^\s*(\d{1,2})[/-](\d{1,2})[/-]\d{4}\b").dropna().astype(int)
    if not len(parts):
        return None
    if (parts[1] > 12).any():
        return "month first"
    return "day first" if (parts[0] > 12).any() else None


def read_order(column) -> str:
    """How new rows of a date column read dd/mm/yyyy or mm/dd/yyyy: as training found (:func:`date_order`), else
    month first, as training read it. Never from the new rows themselves: 01/02/2020 read as February 1st in a batch
    holding 13/02/2020 and as January 2nd alone, the same row scored two ways."""
    return column.date_order or "month first"


def _one_timestamp(value):
    try:
        return pd.to_datetime(value, utc=True)
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


def coerce_frame(frame, kinds, commas=None, verbatim=(), numbers=None, orders=None):
    """Return the feature columns of ``frame`` in the dtypes the pipeline expects.

    numeric -> float64 (see :func:`to_number`; ``commas``: a column's comma reading from the card, else its
    own values decide); ``verbatim``: text columns left as written (see :func:`conform`); datetime -> seconds since
    1970-01-01 UTC as float64; categorical -> Python strings without surrounding spaces, in Unicode's
    composed form (NFC), NaN for missing (spaces alone too); a number as its category (:func:`category_text`;
    ``numbers``: per column, the training categories that are numbers, :func:`number_categories`); ``orders``:
    a date column's order of day and month from the card (:func:`date_order`), else its own values decide.
    This function uses pandas and numpy only, because the bundle's ``train.py``
    embeds its source to reproduce the model without mlkiln.
    """
    # number columns held as numbers are read as one float64 block (one by one, 3,000 of them took 2.6 s)
    block = in_range(frame[held_as_numbers(frame, kinds)].astype("float64"))
    columns = {}
    for name, kind in kinds.items():
        col, known = frame[name], (numbers or {}).get(name)
        if name in block:
            columns[name] = block[name]
        elif kind == "numeric":
            columns[name] = to_number(col, (commas or {}).get(name))
        elif kind == "datetime":
            columns[name] = to_seconds(col, (orders or {}).get(name))
        elif name in verbatim:  # a bundle trained before text was cleaned, on padded values: as it was trained
            columns[name] = col.astype("object").map(str, na_action="ignore").where(col.notna(), np.nan)
        elif isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.infer_dtype(col, skipna=True) == "string":
            # each distinct text converted once (factorize would merge 1 and 1.0 in mixed columns, so not there)
            codes, uniques = pd.factorize(col)
            text = np.array([*(category_text(str(u), known) for u in uniques), np.nan], dtype=object)  # -1: NaN
            columns[name] = pd.Series(text[codes], index=frame.index, dtype=object)
        elif pd.api.types.is_numeric_dtype(col):  # numbers only (1 and 1.0 cannot both be there): each distinct once
            codes, uniques = pd.factorize(col)
            text = np.array([*(category_text(u, known) for u in uniques.tolist()), np.nan], dtype=object)
            columns[name] = pd.Series(text[codes], index=frame.index, dtype=object)
        else:
            text = col.astype("object").map(lambda v: category_text(v, known), na_action="ignore")
            columns[name] = text.where(col.notna(), np.nan).astype("object")
    return pd.DataFrame(columns, index=frame.index)


def category_text(value, numbers=None):
    """A value of a text column as its category: text by :func:`clean_text`, a number as training wrote it.

    A column of codes ("1", "2", "unk") arrives as numbers when a batch holds no text (a CSV's digits, a float
    column with a gap, JSON's 3): 3.0 is the training category of that value (``numbers``, from
    :func:`number_categories`: "3", "03" or "3.0"), else a whole number's integer text ("3", as a CSV writes it).
    Text that is no category but a number of one ("3.0" from a float column's export) is that category too; a
    category is always itself ("007" and "7" both). So is a flag ("true", "false", "unknown": a batch of only
    true and false is read as booleans): True is the training text of it ("true"), else "True". The rule is the
    value's alone, whatever the rest of its batch. Embedded in ``train.py`` with :func:`coerce_frame`.
    """
    if value.__class__ is str:
        text = clean_text(value)
        if not numbers or text.__class__ is not str:
            return text
        known = numbers.get(text)
        if known is not None:
            return known
        if text[0] not in "+-.0123456789" or "_" in text:
            return text
        try:
            return numbers.get(float(text), text)
        except ValueError:
            return text
    if value.__class__ is bool and numbers:
        return numbers.get(str(value), str(value))
    if value.__class__ in (int, float):
        known = numbers.get(value) if numbers else None
        if known is not None:
            return known
        if value.__class__ is float and value.is_integer() and abs(value) < 2.0 ** 53:
            return str(int(value))
    return clean_text(str(value))


def number_categories(categories) -> dict:
    """How :func:`category_text` reads a number or flag as training wrote it, from the card's categories (the
    most frequent first): ``{value: text}`` of those that are numbers ("3", "03", "2.50"; of two texts of one
    value, "7" and "007", the number's plain text, else the more frequent), ``{text: text}`` of the same (each is
    itself), and ``{"True": text, "False": text}`` of flags ("true", "FALSE")."""
    numbers = {}
    for text in categories or ():
        if text.lower() in ("true", "false"):
            numbers.setdefault(text.lower().capitalize(), text)
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value) and "_" not in text and text == text.strip():
            numbers[text] = text
            plain = str(int(value)) if value.is_integer() and abs(value) < 2.0 ** 53 else str(value)
            if value not in numbers or text == plain:
                numbers[value] = text
    return numbers


def clean_text(value: str):
    """A text value as the models read it: without the spaces around it ("Zürich ", a padded export, is
    "Zürich"), in Unicode's composed form ("Malmö" written with a combining diaeresis, as macOS does, is
    "Malmö"); spaces alone are missing (NaN). Embedded in ``train.py`` with :func:`coerce_frame`."""
    value = value.strip()
    return (value if value.isascii() else unicodedata.normalize("NFC", value)) or np.nan


def as_categories(X, kinds):
    """Text columns as categories of Python strings: each distinct value stored once.

    Less memory, cheap to ship to parallel workers, and the streaming least-squares
    fit reads category codes. Python strings, not pandas' string dtype, which
    scikit-learn's encoders read about 3x slower. Embedded in ``train.py`` too.
    """
    columns = {}
    for name in [name for name, kind in kinds.items() if kind == "categorical"]:
        codes, uniques = pd.factorize(X[name])  # categories in order of first appearance
        dtype = pd.CategoricalDtype(pd.Index(uniques, dtype=object))
        columns[name] = pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=X.index)
    # not X.assign(**columns): a column may be called "self"
    return pd.DataFrame({name: columns.get(name, X[name]) for name in X.columns}, index=X.index)


def coerce_target(y, task):
    """Return the target as the model sees it, without the rows where it is missing.

    Regression targets become float64 (see :func:`to_number`; unreadable values
    count as missing, as do infinite labels). Class labels that are whole numbers become int64 and
    anything else stripped text (fractional numbers too, ``0.5`` as ``"0.5"``: scikit-learn takes
    fractional numbers for a regression target), so labels read the same from CSV, Parquet or
    JSON; a blank label is missing, and so is a placeholder ("?", "-", "#N/A") in under 5 % of the rows.
    Like :func:`coerce_frame`, this uses pandas and numpy only.
    """
    if task == "regression":
        numbers = to_number(y)
        return numbers[numbers.notna()]
    y = y[y.notna()]
    if pd.api.types.is_bool_dtype(y):  # True and False stay themselves, not 1 and 0
        return y.astype("bool")
    if pd.api.types.is_numeric_dtype(y):
        numbers = y.astype("float64")
        numbers = numbers[np.isfinite(numbers)]  # an infinite label is unreadable, as in a feature
        if np.all(np.mod(numbers, 1.0) == 0.0):
            return numbers.astype("int64")
        return numbers.astype(str).astype("object")
    labels = y.astype("object").map(lambda v: str(v).strip()).astype("object")
    # "?", "-" or a spreadsheet's error cell in a few rows is a missing label, not a class of its own; in more
    # than 5 % of the rows it is one, and so is "-" beside "+" (a credit table's classes)
    shares = labels.value_counts(normalize=True)
    marks = {"?", "-", "--", "#n/a", "#na", "#ref!", "#div/0!", "#value!", "#name?", "#num!", "#null!", "#calc!"}
    placeholders = [v for v, share in shares.items() if str(v).lower() in marks and share < 0.05
                    and not (v in ("-", "--") and "+" in shares.index)]
    labels = labels[(labels != "") & ~labels.isin(placeholders)]  # a blank label is a missing one too
    numbers = pd.to_numeric(labels, errors="coerce") if placeholders else None
    if numbers is not None and numbers.notna().all() and np.all(np.mod(numbers, 1.0) == 0.0):
        return numbers.astype("int64")  # whole numbers that were text only for the placeholder among them
    return labels


def unreadable(raw: pd.Series, coerced: pd.Series) -> pd.Series:
    """Where a value of ``raw`` did not read as its column's kind: missing once ``coerced``, yet no missing marker."""
    return coerced.isna() & ~is_missing_text(raw)


def unreadable_warning(name: str, kind: str, raw: pd.Series, coerced: pd.Series) -> str | None:
    """What training says of the values of a number or date column it read as missing, with one of them: text
    ("rotary" among cylinder counts) and a number beyond float32 are different mistakes. None if there are none."""
    lost = unreadable(raw, coerced).to_numpy()
    if not lost.any():
        return None
    value = raw[lost].iloc[0]
    value = value.item() if isinstance(value, np.generic) else value  # inf, not np.float64(inf)
    if kind != "numeric":
        what = "dates"
    elif _as_float(value) is not None:  # it reads as a number: an infinite one, or one beyond float32
        what = "finite numbers within +-3.4e38"
    else:
        what = "numbers"
    return f"column {name!r}: {int(lost.sum())} value(s) are not {what} (e.g. {_shown(value)}) and are treated as missing"


def first_unreadable(frame, coerced, kinds, allowed):
    """``(column, row position)`` of the first value of ``frame`` that did not read as its column's kind
    (``coerced`` is :func:`coerce_frame` of it), or None. ``allowed``: per column, the text training read
    as missing (a code such as "136A"), which is missing here too. pandas and numpy only."""
    for name, kind in kinds.items():
        if kind == "categorical":
            continue
        bad = unreadable(frame[name], coerced[name])
        if bad.any() and allowed.get(name):
            bad &= ~frame[name].astype(str).str.strip().isin(allowed[name])
        if bad.any():
            return name, int(np.flatnonzero(bad.to_numpy())[0])
    return None


#: text that means "no value" in hand-made tables; never a reason to call a column text
NA_TOKENS = frozenset({"", "-", "--", "?", "na", "n/a", "nan", "null", "none", "missing", "#n/a",
                       # a spreadsheet's error cells: a few of them made a numeric column text of hundreds of values
                       "#ref!", "#div/0!", "#value!", "#name?", "#num!", "#null!", "#spill!", "#calc!", "#na"})


def is_missing_text(col: pd.Series) -> pd.Series:
    """True where a value is missing or a placeholder such as "n/a", "-" or "?"."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return col.isna()
    # pandas' string columns factorize as they are, 5x faster than as Python objects
    values = col if isinstance(col.dtype, pd.StringDtype) else col.astype("object")
    try:
        # each distinct value checked once: millions of rows hold few distinct texts
        codes, uniques = pd.factorize(values)
    except TypeError:  # unhashable values (lists, dicts): one by one
        placeholder = values.map(_is_placeholder).astype(bool)
    else:
        flags = np.array([_is_placeholder(v) for v in uniques] + [False], dtype=bool)
        placeholder = pd.Series(flags[codes], index=col.index)
    return col.isna() | placeholder


def _is_placeholder(value) -> bool:
    return isinstance(value, str) and value.strip().lower() in NA_TOKENS


#: what every value of a text column must show to be tried as dates: a separator of dates or times, a dotted
#: day.month.year, or a month's name beside a four-digit year ("01 Jan 2020", "Jan 5, 2021")
DATE_HINT = (r"[-/:]|^\s*\d{1,2}\.\d{1,2}\.\d{4}\b"
             r"|(?i:\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b.*\b\d{4}\b)")


#: values a text column's kind (and its other looks: numbers, prose) is judged on
SAMPLE_VALUES = 1000


def _sample(values: pd.Series) -> pd.Series:
    """At most :data:`SAMPLE_VALUES` of ``values``, drawn the same way every time, in their order.

    Not ``Series.sample``: it shuffles every row to draw a few (0.39 s on 5M rows, six times a table).
    """
    if len(values) <= SAMPLE_VALUES:
        return values
    return values.iloc[np.sort(np.random.default_rng(0).choice(len(values), SAMPLE_VALUES, replace=False))]


def number_share(col: pd.Series) -> tuple[float, str | None]:
    """The share of a text column's present values that read as numbers, and one that does not: to say so when
    a column that is mostly numbers is read as text. On a sample of 1,000 rows, drawn before the missing values
    are left out: a warning need not read every row of a text column again (:func:`column_kind` did)."""
    if pd.api.types.is_numeric_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
        return 0.0, None
    sample = _sample(col)
    sample = sample[~is_missing_text(sample)]
    if not len(sample):
        return 0.0, None
    numbers = to_number(sample)
    other = sample[numbers.isna()]
    return float(numbers.notna().mean()), (str(other.iloc[0]) if len(other) else None)


def column_kind(col: pd.Series) -> str:
    """Classify a raw column as ``numeric``, ``datetime`` or ``categorical``.

    Text columns count as numeric (or datetime) when nearly all their values,
    ignoring placeholders such as "n/a" or "?", read as numbers (or dates).
    """
    if pd.api.types.is_complex_dtype(col):  # as float64 its imaginary part would silently be lost
        raise InputError(f"column {col.name!r} holds complex numbers; mlkiln reads real ones: give its real and "
                         "imaginary parts (or its magnitude) as columns of their own")
    if pd.api.types.is_integer_dtype(col) and not pd.api.types.is_bool_dtype(col):
        present = col.dropna()
        # whole numbers of 16 digits or more (a Parquet file's order or account numbers): codes, as in a CSV file
        if len(present) and np.mean(np.abs(present.to_numpy(dtype="float64")) >= 1e15) >= 0.5:
            return "categorical"
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        return "numeric"  # a duration as its seconds (see to_number)
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    if isinstance(col.dtype, pd.CategoricalDtype):
        return "categorical"
    values = col[~is_missing_text(col)]
    if not len(values):
        return "categorical"
    sample = _sample(values)
    text = sample.astype("object").map(str)
    if written_as_codes(text):  # order or account numbers, zip codes, labels 007: codes, not quantities
        return "categorical"
    if to_number(sample).notna().mean() >= NUMERIC_TEXT_SHARE:
        return "numeric"
    # nearly all, as for numbers: one "unknown" among 2,000 times made the column text, then an identifier
    looks = text.str.contains(r"\d", regex=True) & text.str.contains(DATE_HINT, regex=True)
    if looks.mean() >= NUMERIC_TEXT_SHARE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        if parsed.notna().mean() >= NUMERIC_TEXT_SHARE:
            return "datetime"
    return "categorical"


def is_nested(col: pd.Series) -> bool:
    """Whether a column holds lists, arrays or records (Parquet list and struct columns), not single values."""
    if not (pd.api.types.is_object_dtype(col) or isinstance(col.dtype, pd.ArrowDtype)):
        return False
    present = col.dropna()
    return bool(len(present)) and isinstance(present.iloc[0], (list, tuple, dict, np.ndarray))


def is_bytes(col: pd.Series) -> bool:
    """Whether a column holds bytes (a Parquet binary column): as categories their printed forms ("b'\\x00'")
    were the values, and a scored file written as CSV read back as other text (every value unseen)."""
    if not pd.api.types.is_object_dtype(col):
        return False
    present = col.dropna()
    return bool(len(present)) and isinstance(present.iloc[0], (bytes, bytearray))


def infer_task(y: pd.Series) -> str:
    """``regression`` for numbers with many distinct values, else ``classification``.

    Numbers stored as text ("1,234") count as numbers.
    """
    values = y.dropna()
    if pd.api.types.is_bool_dtype(values):
        return "classification"
    if not pd.api.types.is_numeric_dtype(values):
        numbers = to_number(values[~is_missing_text(values)])
        if not len(numbers) or numbers.notna().mean() < NUMERIC_TEXT_SHARE:
            return "classification"
        values = numbers.dropna()
    values = values[np.isfinite(values.to_numpy(dtype="float64"))]
    if not np.all(np.mod(values.to_numpy(dtype="float64"), 1.0) == 0.0):
        return "regression"
    distinct = values.nunique()
    # whole numbers most of which are seen once (16 yearly employment counts) are quantities: as classes of a row
    # each they could not be learned
    return "classification" if distinct <= MAX_CLASSES_FOR_AUTO and distinct <= max(len(values) // 2, 2) else "regression"


def close_names(name: str, names: Sequence[str], n: int = 3) -> list[str]:
    """The names a user most likely meant by ``name``: the same but for case and spaces first, then near misses."""
    key = name.strip().casefold()
    same = [other for other in names if other.strip().casefold() == key and other != name]
    folded = {other.strip().casefold(): other for other in names}
    near = [folded[k] for k in difflib.get_close_matches(key, list(folded), n=n, cutoff=0.5)]
    return list(dict.fromkeys(same + near))[:n]


def check_target(frame: pd.DataFrame, target: str, what: str = "target column") -> None:
    """Fail with the closest column names when ``target`` (or another named column, ``what``) is not a column."""
    if target in frame.columns:
        return
    names = [str(c) for c in frame.columns]
    close = close_names(target, names)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
    raise InputError(f"{what} {target!r} not found{hint} (columns: {shown})")


#: a column with fewer values than NEARLY_EMPTY_VALUES (at most SMALL_TABLE_SHARE of a small table's rows), or
#: than NEARLY_EMPTY_SHARE of the rows, is set aside: a fold, the test split or a --budget rung's sample (2,222
#: rows fitted on the smallest) may hold none of them, and scikit-learn's gradient boosting fails on a column of no
#: values ("window shape cannot be larger than input array shape"); so few values say next to nothing of the target
NEARLY_EMPTY_VALUES = 10
SMALL_TABLE_SHARE = 0.05
NEARLY_EMPTY_SHARE = 0.003


def nearly_empty(n_rows: int) -> int:
    """The fewest values a feature column of ``n_rows`` rows needs (:data:`NEARLY_EMPTY_VALUES`)."""
    return max(min(NEARLY_EMPTY_VALUES, math.ceil(SMALL_TABLE_SHARE * n_rows)), math.ceil(NEARLY_EMPTY_SHARE * n_rows))


def screen_columns(
    X: pd.DataFrame, y: pd.Series, task: str, kinds: dict[str, str], seed: int = 0, keep: Sequence[str] = ()
) -> dict[str, str]:
    """Name the columns that should not be features, each with the reason.

    Identifier-like and constant columns carry no signal that generalises;
    a column that alone predicts the target almost perfectly is nearly always
    recorded after the outcome (target leakage) and would make a model that
    fails in production; so is a few columns that rebuild it (see
    :func:`screen_columns_with_evidence`, which also returns the evidence).
    """
    return screen_columns_with_evidence(X, y, task, kinds, seed, keep)[0]


def screen_columns_with_evidence(
    X: pd.DataFrame, y: pd.Series, task: str, kinds: dict[str, str], seed: int = 0, keep: Sequence[str] = ()
) -> tuple[dict[str, str], tuple[CombinationLeak, ...]]:
    """:func:`screen_columns`'s reasons, and the evidence of every leak spread over several columns.

    After the column-by-column checks, :func:`mlkiln.leakage.find_combination_leaks`
    searches the screening sample for at most three columns that rebuild the
    target. ``keep`` columns are never blamed there: they are given to every
    fit, so the search names the other members. (The caller still filters the
    column-by-column reasons by ``keep``.)
    """
    reasons: dict[str, str] = {}
    n = len(X)
    fewest = nearly_empty(n)
    for name in X.columns:
        col = X[name]
        missing = col.isna()
        # text is hashed once, for both of its checks; numbers are compared, not hashed
        n_unique = col.nunique() if kinds[name] == "categorical" else None
        if missing.all():
            # a numeric column's values may all be unreadable (1e300 is beyond float32), not missing
            why = "all missing, or not numbers within +-3.4e38" if kinds[name] == "numeric" else "all missing"
            if name in keep:  # every model would learn nothing from it, and gradient boosting fails on it
                raise InputError(f"keep column {name!r} has no readable values ({why}): nothing to learn from; "
                                 "drop it from keep")
            reasons[name] = f"empty: no readable values ({why})"
        elif (present := n - int(missing.sum())) < fewest:
            reasons[name] = (f"nearly empty: {present} value(s) in {n:,} rows, fewer than {fewest:,}, so "
                             "some fits would see none (gradient boosting fails on a column without values)")
        elif not missing.any() and (n_unique == 1 if n_unique is not None else bool((col == col.iloc[0]).all())):
            reasons[name] = "constant: one value in every row"
        elif n_unique is not None and n >= 20 and n_unique >= ID_UNIQUE_RATIO * (n - missing.sum()):
            if not _is_prose(col[~missing]):
                reasons[name] = "identifier-like: a distinct text value in (almost) every row"
            elif not _has_common_words(col[~missing]):  # prose is read as words (text_columns), if they repeat
                reasons[name] = (f"free text without common words: none is in {TEXT_WORD_SHARE:.0%} of the rows "
                                 "(names or codes of several words): nothing a model can learn from the words")
        elif kinds[name] == "numeric" and (why := _integer_id(col, name)):
            reasons[name] = f"identifier-like: distinct integers, one per row, {why}"
    candidates = [c for c in X.columns if c not in reasons]
    scores = _single_column_scores(X, y, task, seed, candidates)
    classes = pd.factorize(y, sort=True) if task == "classification" else None  # once: 0.6 s a column at 1M rows
    for name in candidates:
        reason = _leak_reason(X[name], y, task, scores[name], classes)
        if reason:
            reasons[name] = f"target leakage: {reason}"
    usable = [c for c in X.columns if c not in reasons or c in keep]
    rows = _screening_rows(len(X), seed)
    leaks = find_combination_leaks(X[usable].iloc[rows], y.iloc[rows], task, {c: kinds[c] for c in usable},
                                   keep=[c for c in keep if c in usable], seed=seed)
    for leak in leaks:
        for name in leak.columns:
            reasons[name] = f"target leakage with {', '.join(leak.columns)}: {leak.relation}"
    return reasons, leaks


#: the words of a column name that say its whole numbers of 1000 to 2999 are years
YEAR_NAME_WORDS = frozenset({"year", "years", "yr", "yyyy", "jahr", "annee", "anno", "ano"})


def _calendar(arr: np.ndarray, name="") -> bool:
    """Whether distinct whole numbers are dates written as numbers (20120101) or years (a column named so): a
    yearly or daily series rises one value a row like a row number, but its values are when, not which. Seattle's
    weather with its dates as 20120101: excluded as a row number, test accuracy 0.676 against 0.785."""
    if np.all((arr >= 10_000_101) & (arr <= 29_991_231)):
        return bool(pd.to_datetime(pd.Series(arr.astype(np.int64)).astype(str), format="%Y%m%d",
                                   errors="coerce").notna().all())
    return bool(np.all((arr >= 1000) & (arr <= 2999))) and any(w in YEAR_NAME_WORDS for w in _name_words(name))


def _name_words(name) -> list[str]:
    """A column name's words, lower case: ``customer_id``, ``CustomerID``, ``Product ID`` end in ``id``."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", str(name))]


def _named_as_key(name) -> bool:
    """Whether a column's name ends in a word such as ``id`` (``customer_id``, ``CustomerID``, ``Product ID``)."""
    words = _name_words(name)
    return bool(words) and words[-1] in ID_NAME_WORDS


#: a distinct text per row whose values have at least this many words (the median of a sample) is prose
PROSE_WORDS = 3


def _is_prose(values: pd.Series) -> bool:
    """Whether distinct texts are sentences (reviews, notes) rather than codes or names."""
    return bool(_sample(values).astype(str).str.split().str.len().median() >= PROSE_WORDS)


#: free text is read as words only where one word (two letters or more) is in at least this share of the rows
#: (a sample's), so that every fold keeps some (the vectorizer fails on a column without a repeated word)
TEXT_WORD_SHARE = 0.05
#: ... and in at least this many rows
TEXT_WORD_ROWS = 10


def _has_common_words(values: pd.Series) -> bool:
    """Whether one word is in :data:`TEXT_WORD_SHARE` of the (sampled) present ``values``."""
    sample = _sample(values).astype(str).str.lower()
    found = sample.str.findall(r"(?u)\b\w\w+\b").explode().dropna()  # the vectorizer's words
    counts = found.groupby(level=0).unique().explode().value_counts()  # rows per word
    return bool(len(counts)) and counts.iloc[0] >= max(TEXT_WORD_SHARE * len(sample), TEXT_WORD_ROWS)


def text_columns(X: pd.DataFrame, kinds: dict[str, str]) -> tuple[str, ...]:
    """The text columns read as words (:func:`mlkiln.pipeline.words`), not categories: reviews, notes, names.

    Prose (a typical value of :data:`PROSE_WORDS` words or more) whose distinct
    values are more than the encoders keep as categories, or nearly one per row,
    and whose words repeat (:func:`_has_common_words`).
    """
    found = []
    for name, kind in kinds.items():
        if kind != "categorical" or len(X) < 20:
            continue
        present = X[name].dropna()
        if not _is_prose(present):  # a sample's words first: most text columns end here, before a count of values
            continue
        n_unique = present.nunique()
        many = n_unique > MAX_LISTED_CATEGORIES or n_unique >= ID_UNIQUE_RATIO * len(present)
        if many and _has_common_words(present):
            found.append(name)
    return tuple(found)


def _integer_id(col: pd.Series, name="") -> str | None:
    """Why a column of distinct whole numbers is an identifier (its name, or its values' steps), or None."""
    values = pd.to_numeric(col, errors="coerce")
    if values.isna().any() or len(values) < 20:
        return None
    arr = values.to_numpy(dtype="float64")
    if not np.all(np.mod(arr, 1.0) == 0.0) or values.nunique() != len(values):  # the cheap test first
        return None
    if _named_as_key(name):
        return "named as a key"
    if _calendar(arr, name):
        return None
    steps = np.diff(np.sort(arr))
    if np.mean(steps == 1.0) >= ID_CONSECUTIVE_SHARE:
        return "(nearly) all consecutive"
    # rising row by row in small steps: row numbers with the gaps of rows filtered out. Not any rising column: a
    # table sorted by a measure (area, a timestamp) has that measure rise too
    if np.all(np.diff(arr) > 0) and np.median(steps) <= ID_ROW_STEP:
        return f"rising row by row in steps of {ID_ROW_STEP:g} or less"
    return None


def _leak_reason(col: pd.Series, y: pd.Series, task: str, score: float | None, classes=None) -> str | None:
    """Why ``col`` leaks the target, or None; ``classes``: the target's ``pd.factorize(y, sort=True)``."""
    if task == "classification" and col.nunique() == 2:
        reason = _pure_flag_reason(col, y)
        if reason:
            return reason
    if (task == "classification" and pd.api.types.is_numeric_dtype(col)
            and (reason := _class_boundary_reason(col, *(classes or pd.factorize(y, sort=True))))):
        return reason
    if score is not None and score >= LEAK_SCORE:
        what = "R2" if task == "regression" else "balanced accuracy"
        rows = min(len(col), SCREENING_ROWS)
        return f"predicts the target on its own with {what} {score:.3f} (screening sample of {rows:,} rows)"
    return None


def _pure_flag_reason(col: pd.Series, y: pd.Series) -> str | None:
    shares = y.value_counts(normalize=True)
    for value, rows in y.groupby(col, observed=True):
        classes = rows.unique()
        if len(classes) != 1:
            continue
        cls = classes[0]
        chance = float(shares[cls]) ** len(rows)
        if len(rows) >= 3 and chance <= LEAK_CHANCE:
            return (
                f"value {scalar_text(value)} occurs only with target {scalar_text(cls)} "
                f"({len(rows)} rows; chance {chance:.0e})"
            )
    return None


#: rows at a value two classes share (a tie at their boundary) that a column cutting the classes at thresholds may
#: have, as a share of its rows with a value
BOUNDARY_TIES = 0.02


def _class_boundary_reason(col: pd.Series, codes: np.ndarray, classes) -> str | None:
    """Why a number column is the target cut at thresholds (``low`` birth weight is weight up to 5.5 lb), or None.

    Each class holds one range of the column's values, the ranges meeting at most at a shared value held by
    few rows, and chance alone would order the classes so with at most :data:`LEAK_CHANCE`. The held-out score
    misses such a cut where a class is rare: a part of 5 rows straddling 5.5 lb cost one of the 40 low weights
    of the held-out half, balanced accuracy 0.987 (sweep 10, births14). ``codes``, ``classes``: the target
    factorized."""
    x = col.to_numpy(dtype="float64", na_value=np.nan)
    present = ~np.isnan(x)
    x, codes = x[present], codes[present]
    kept = np.unique(codes)  # the classes of the rows with a value
    if len(kept) < 2 or len(x) < 20:
        return None
    low = np.array([x[codes == k].min() for k in kept])
    high = np.array([x[codes == k].max() for k in kept])
    order = np.argsort(low, kind="stable")
    low, high = low[order], high[order]
    if np.any(high[:-1] > low[1:]):
        return None
    shared = np.unique(high[:-1][high[:-1] == low[1:]])
    ties = np.isin(x, shared)
    if ties.sum() > BOUNDARY_TIES * len(x):
        return None
    counts = np.bincount(codes[~ties], minlength=len(classes))[kept]
    n = int(counts.sum())
    # the chance that random labels of these counts fall into one block per class, in some order
    log_chance = sum(math.lgamma(c + 1) for c in counts) - math.lgamma(n + 1) + math.lgamma(len(kept) + 1)
    if log_chance > math.log(LEAK_CHANCE):
        return None
    ranges = ", ".join(f"{scalar_text(classes[kept[k]])} {scalar_text(lo)} to {scalar_text(hi)}"
                       for k, lo, hi in zip(order[:5], low, high))
    more = f" (and {len(kept) - 5} more)" if len(kept) > 5 else ""
    return (f"its values cut the target at thresholds: each class holds one range of them ({ranges}{more}; "
            f"chance 1e{math.floor(log_chance / math.log(10))})")


#: the screening's one-column model: the training half's values cut at as many quantiles as a depth-8 tree has
#: leaves (256), at least SCREEN_LEAF_ROWS rows apart, each part predicting its mean (or most frequent class).
#: The same partition a tree would grow, without fitting one: a tree per column took 8 ms, 10 s of a
#: 1,000-column table's run; the parts take well under a millisecond
SCREEN_PARTS = 256
SCREEN_LEAF_ROWS = 5


def _single_column_scores(X: pd.DataFrame, y: pd.Series, task: str, seed: int,
                          names: Sequence[str] | None = None) -> dict[str, float | None]:
    """Score each column's parts (:data:`SCREEN_PARTS`) learnt on one half of the screening rows, on the other half.

    Classification: balanced accuracy. Regression: R2, or a rank correlation's
    square where higher (parts approximate a straight line in steps; ranks see
    any monotone copy of the target at once). None on fewer than 20 rows.
    ``names``: the columns to score (default: all).
    """
    names = list(X.columns if names is None else names)
    order = _screening_rows(len(X), seed)
    half = len(order) // 2
    if half < 10:
        return dict.fromkeys(names)
    if task == "classification":
        codes, classes = pd.factorize(y.to_numpy()[order], sort=True)
        return {name: _class_score(x, codes, len(classes), half) for name, x, _ in _sampled_columns(X, names, order)}
    target = y.to_numpy(dtype="float64")[order]
    ranks = pd.Series(target).rank().to_numpy()
    # the target's own: the same for every column
    learnt_mean, spread = target[:half].mean(), np.sum((target[half:] - target[half:].mean()) ** 2)
    scores = {}
    for name, x, x_ranks in _sampled_columns(X, names, order, ranked=True):
        part = _parts(x, half)
        n_parts = int(part.max()) + 1
        sums = np.bincount(part[:half], weights=target[:half], minlength=n_parts)
        counts = np.bincount(part[:half], minlength=n_parts)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), learnt_mean)
        r2 = 1.0 - np.sum((target[half:] - means[part[half:]]) ** 2) / spread if spread > 0 else np.nan
        present = ~np.isnan(x)
        # the target's ranks among the rows with a value: the sample's ranks when none is missing
        y_ranks = ranks if present.all() else pd.Series(target[present]).rank().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            rank_r = np.corrcoef(x_ranks[present], y_ranks)[0, 1] if present.sum() > 2 else np.nan
        scores[name] = float(np.nanmax([r2, rank_r**2])) if not (np.isnan(r2) and np.isnan(rank_r)) else None
    return scores


#: number columns screened together (_sampled_columns): 20,000 rows of them are 41 MB, with their ranks 82 MB
SCREEN_BLOCK = 256


def _sampled_columns(X: pd.DataFrame, names: list[str], order: np.ndarray,
                     ranked: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    """Each of ``names``' screening-row values as floats (:func:`_sampled_values`), with, where ``ranked``, their
    ranks among the values present (pandas' average ranks). Number columns are read :data:`SCREEN_BLOCK` at a time:
    one by one, 3,013 columns took 3.4 s to sample and 2 s to rank."""
    numbers = [name for name in names if pd.api.types.is_numeric_dtype(X[name].dtype)]
    at = {name: k for k, name in enumerate(numbers)}
    block = ranks = None
    for name in names:
        k = at.get(name)
        if k is None:
            x = _sampled_values(X[name], order)
            yield name, x, pd.Series(x).rank().to_numpy() if ranked else None
            continue
        if k % SCREEN_BLOCK == 0:
            columns = [X.columns.get_loc(c) for c in numbers[k:k + SCREEN_BLOCK]]
            block = X.iloc[order, columns].to_numpy(dtype="float64", na_value=np.nan)
            ranks = pd.DataFrame(block).rank().to_numpy() if ranked else None
        i = k % SCREEN_BLOCK
        yield name, block[:, i], None if ranks is None else ranks[:, i]


def _sampled_values(col: pd.Series, order: np.ndarray) -> np.ndarray:
    """The screening rows' values as floats: numbers as they are, text as the codes of its sorted categories."""
    sample = col.iloc[order]
    if pd.api.types.is_numeric_dtype(col):
        return sample.to_numpy(dtype="float64")
    x = sample.astype("category").cat.codes.to_numpy(dtype="float64")
    x[x < 0] = np.nan
    return x


def _class_score(x: np.ndarray, codes: np.ndarray, k: int, half: int) -> float:
    """Balanced accuracy on the second half of the most frequent class of each part in the first."""
    part = _parts(x, half)
    n_parts = int(part.max()) + 1
    counts = np.bincount(part[:half] * k + codes[:half], minlength=n_parts * k).reshape(n_parts, k)
    counts[counts.sum(axis=1) == 0] = np.bincount(codes[:half], minlength=k)  # a part with no training rows
    pred, truth = counts.argmax(axis=1)[part[half:]], codes[half:]
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def _parts(x: np.ndarray, half: int) -> np.ndarray:
    """Each value's part: its place among the training half's quantiles; missing values are a part of their own."""
    present = x[:half][~np.isnan(x[:half])]
    n_cuts = min(SCREEN_PARTS, len(present) // SCREEN_LEAF_ROWS) - 1
    if n_cuts < 1:
        cuts = np.empty(0)
    else:
        cuts = np.unique(np.quantile(present, np.arange(1, n_cuts + 1) / (n_cuts + 1)))
    part = np.searchsorted(cuts, x, side="right")
    part[np.isnan(x)] = len(cuts) + 1
    return part


#: the rows every column's screening reads (at most)
SCREENING_ROWS = 20_000


@functools.lru_cache(maxsize=2)
def _screening_rows(n: int, seed: int) -> np.ndarray:
    """The same :data:`SCREENING_ROWS` random rows (at most) for every column's screening: one permutation."""
    return np.random.default_rng(seed).permutation(n)[: min(n, SCREENING_ROWS)]


#: text values a numeric or date column's card lists as read as missing in training (the most frequent)
MAX_LISTED_UNREADABLE = 100


def describe_columns(frame: pd.DataFrame, kinds: dict[str, str], coerced: pd.DataFrame | None = None,
                     dropped: pd.DataFrame | None = None) -> tuple[Column, ...]:
    """The input schema stored in the card: names, kinds, dtypes, categories, ranges.

    ``coerced`` is ``coerce_frame(frame, kinds)`` when the caller has it already;
    ``dropped``: rows left out for a missing target, whose unreadable text is listed too.
    """
    described = []
    coerced = coerce_frame(frame, kinds) if coerced is None else coerced
    decimal_file = frame.attrs.get("read_options", {}).get("decimal") == ","
    for name, kind in kinds.items():
        col = coerced[name]
        facts = {}
        if kind == "categorical":
            counts = col.value_counts()
            facts = {"n_categories": int(len(counts)), "categories": tuple(str(v) for v in counts.index[:MAX_LISTED_CATEGORIES])}
        else:
            facts = {"min": float(col.min()), "max": float(col.max())} if col.notna().any() else {}
            raw = frame[name]
            if not pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_datetime64_any_dtype(raw):
                lost = raw[unreadable(raw, col)].astype(str).str.strip()
                if dropped is not None and len(dropped):
                    other = dropped[name]
                    read = (to_number if kind == "numeric" else to_seconds)(other)
                    lost = pd.concat([lost, other[unreadable(other, read)].astype(str).str.strip()])
                if len(lost):
                    facts["unreadable"] = tuple(lost.value_counts().index[:MAX_LISTED_UNREADABLE])
                if kind == "numeric" and (reading := comma_reading(raw.dropna())):
                    facts["comma"] = reading
                if kind == "datetime" and (order := date_order(raw.dropna())):
                    facts["date_order"] = order
            elif kind == "numeric" and decimal_file and pd.api.types.is_float_dtype(raw):
                facts["comma"] = "decimal"  # the reader's decimal comma: new rows written as "2,980" are 2.98
        described.append(Column(str(name), kind, str(frame[name].dtype), round(float(col.isna().mean()), 6), **facts))
    return tuple(described)


#: the warning of new values a column did not hold in training (its arguments: the column, how many, one of them),
#: which scoring a file in batches, or a dataset's parts, sums over them (:func:`mlkiln.scoring.predict_path`)
UNSEEN_VALUES = "column %r: %d value(s) not seen in training (e.g. %s), handled as unknown"


def conform(frame: pd.DataFrame, columns: Sequence[Column], target: str | None = None, first_row: int = 1,
            known: dict | None = None) -> pd.DataFrame:
    """Check new data against the schema and return it ready for the pipeline.

    Missing columns and values that cannot be read as the column's kind are
    errors naming the column (and the first bad row, counting ``frame``'s first
    row as ``first_row``, so a batch of a larger file names the file's row);
    extra columns are ignored with a warning (the ``target`` column silently);
    order does not matter; unseen categories are counted, against ``known`` (a column's every training category,
    from the bundle's drift profile) where the card lists only the most frequent.
    """
    kinds = {c.name: c.kind for c in columns}
    frame = frame.rename(columns=str)
    if any(name not in frame.columns for name in kinds):
        frame = frame.rename(columns=_respelled(frame.columns, kinds))
    _check_names(frame.columns, kinds, target, unknown="warn")
    verbatim, numbers = _facts(columns)
    coerced = coerce_frame(frame, kinds, {c.name: c.comma for c in columns if c.comma}, verbatim, numbers,
                           {c.name: read_order(c) for c in columns if c.kind == "datetime"})
    first = first_unreadable(frame, coerced, kinds, {c.name: c.unreadable for c in columns if c.unreadable})
    if first is not None:
        name, row = first
        raise _unreadable(name, kinds[name], frame[name].iloc[row], f" in row {row + first_row}")
    _refuse_either_comma(frame, columns, first_row)
    for spec in columns:
        listed = (known or {}).get(spec.name) or (
            spec.categories if (spec.n_categories or 0) <= len(spec.categories or ()) else None)
        if spec.kind == "categorical" and listed is not None:
            unseen = coerced[spec.name].dropna()
            unseen = unseen[~unseen.isin(listed)]
            if len(unseen):
                log.warning(UNSEEN_VALUES, spec.name, len(unseen), _shown(unseen.iloc[0]))
    return coerced


def _refuse_either_comma(frame: pd.DataFrame, columns: Sequence[Column], first_row: int) -> None:
    """A batch's numbers written "2,980", where training saw no comma in the column and none of the batch's says
    which comma it is (as "0,5" or "1,234,567" would): one record is refused so (:func:`_record_value`), and a
    batch of them would otherwise read as thousands, "1,353" as 1353 where training's values were about 1."""
    for spec in columns:
        raw = frame[spec.name]
        if spec.kind != "numeric" or spec.comma or pd.api.types.is_numeric_dtype(raw) or raw.dtype == bool:
            continue
        words = _number_words(raw)
        if not words.notna().any():
            continue
        commas = words.str.contains(",", regex=False, na=False)
        either = words.str.fullmatch(_EITHER_COMMA, na=False)
        if either.any() and (either == commas).all():
            row = int(np.flatnonzero(either.to_numpy())[0])
            value, text = raw.iloc[row], words.iloc[row]
            raise InputError(f"column {spec.name!r}: {value!r} in row {row + first_row} could be "
                             f"{text.replace(',', '')} or {text.replace(',', '.')} (training saw no comma in this "
                             "column, nor does any other value say which it is); write the numbers without commas")


def _facts(columns: Sequence[Column]) -> tuple[frozenset[str], dict[str, dict]]:
    """What reading new values needs from the schema's categories, kept per schema object (one record's check
    takes microseconds): the text columns of a bundle trained before values were cleaned (spaces, Unicode form)
    whose categories are not clean ("Zürich "), where new rows keep their text as written or they would match
    none of them; and per text column the categories that are numbers (:func:`number_categories`)."""
    known = _FACTS.get(id(columns))
    if known is not None and known[0] is columns:
        return known[1]
    text = [c for c in columns if c.kind == "categorical"]
    verbatim = frozenset(c.name for c in text if any(clean_text(v) != v for v in c.categories or ()))
    numbers = {c.name: found for c in text if (found := number_categories(c.categories))}
    if len(_FACTS) > 64:
        _FACTS.clear()
    _FACTS[id(columns)] = (columns, (verbatim, numbers))
    return verbatim, numbers


_FACTS: dict[int, tuple] = {}


def conform_record(record: dict, columns: Sequence[Column], target: str | None = None) -> dict:
    """Check one record (a dict, e.g. parsed JSON) against the schema; return it ready to predict.

    The rules are :func:`conform`'s, applied without building a DataFrame so
    one row costs microseconds: numbers (and booleans) are taken as they are,
    JSON ``null`` or NaN is a missing value, any other scalar is read by the
    same :func:`to_number` / :func:`to_seconds` / :func:`is_missing_text` as a
    batch, and a category is its text. Unlike :func:`conform`, a field the
    model does not use is an error, not a warning: a client that misspells a
    field should hear so. Nested values (lists, objects) are wrong types.
    Returns ``{column: float or str or NaN}``.
    """
    if not isinstance(record, dict):
        raise InputError(f"a record must be an object of column: value pairs, got {type(record).__name__}")
    verbatim, numbers = _facts(columns)
    row = {}
    for spec in columns:
        if spec.name not in record:  # keys written otherwise (1 for "1", another Unicode form), else the error
            respelled = _respelled(record, {c.name: c.kind for c in columns})
            record = {respelled.get(key, key): value for key, value in record.items()}
            if spec.name in record:
                return conform_record(record, columns, target)
            _check_names(record, {c.name: c.kind for c in columns}, target, unknown="error")
        value = record[spec.name]
        if spec.kind == "categorical" and isinstance(value, str) and spec.name in verbatim:
            row[spec.name] = value  # as the bundle was trained (see _facts)
            continue
        row[spec.name] = _record_value(spec.name, spec.kind, value, spec.unreadable or (), spec.comma,
                                       numbers.get(spec.name), read_order(spec))
    if len(record) - (target in record) != len(row):
        _check_names(record, {c.name: c.kind for c in columns}, target, unknown="error")
    return row


def _record_value(name: str, kind: str, value, read_as_missing: Sequence[str] = (), comma: str | None = None,
                  numbers: dict | None = None, order: str | None = None):
    """One value of a record as its column's kind reads it: ``comma``, ``numbers`` and ``order`` are its column's
    comma reading, number categories and order of day and month (:class:`~mlkiln.card.Column`)."""
    number = type(value) in (float, int, bool)
    if not (number or type(value) is str or value is None):  # JSON's own types skip these checks: 3.5 us a record
        if isinstance(value, np.datetime64):  # .item() of a nanosecond time is an integer
            value = pd.Timestamp(value)
        elif isinstance(value, (np.timedelta64, dt.timedelta)) and value == value:  # a duration: its seconds
            value = pd.Timedelta(value).total_seconds()
        elif isinstance(value, pd.Period):  # a month or day of a frame's period column: when it starts
            value = value.to_timestamp()
        elif isinstance(value, np.generic):  # a NumPy scalar from a caller's frame or array: its Python value
            value = value.item()
        elif isinstance(value, Decimal) and value.is_finite():  # a Parquet decimal column's: a number
            value = float(value)
        if value is pd.NA or value is pd.NaT:
            return np.nan
        number = type(value) in (float, int, bool)
    if value is None or (number and value != value):
        return np.nan
    if kind == "categorical":
        if isinstance(value, str):  # as a batch's
            return category_text(value, numbers) if numbers else clean_text(value)
        if number:  # as a batch's: 3.0 for a column of codes is its category "3"
            return category_text(value, numbers)
        raise _unreadable(name, kind, value)
    if kind == "numeric" and number and -VALUE_MAX <= value <= VALUE_MAX:
        return float(value)
    if not (number or isinstance(value, str) or (kind == "datetime" and isinstance(value, (dt.date, dt.time)))):
        raise _unreadable(name, kind, value)
    plain = _PLAIN_NUMBER.fullmatch(value.strip()) if kind == "numeric" and isinstance(value, str) else None
    if plain:
        parsed = float(plain.group())
        if -VALUE_MAX <= parsed <= VALUE_MAX:
            return parsed
    iso = _PLAIN_ISO_TIME.fullmatch(value.strip()) if kind == "datetime" and isinstance(value, str) else None
    if iso and _ISO_YEARS[0] <= int(iso.group(1)) <= _ISO_YEARS[1]:
        try:
            stamp = dt.datetime.fromisoformat(iso.group().replace("Z", "+00:00"))  # Python 3.10 reads no "Z"
            if stamp.tzinfo is not None:
                stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return ((stamp - _EPOCH) // dt.timedelta(microseconds=1)) / 1e6
        except ValueError:  # 2020-02-30: pandas' reading says what it is
            pass
    cell = pd.Series([value], dtype=object)
    words = str(_number_words(cell).iloc[0]) if kind == "numeric" and comma is None else ""
    if re.fullmatch(_EITHER_COMMA, words):
        # a batch's column decides (to_number); one record alone cannot, and training saw no comma here
        grouped, decimal = words.replace(",", ""), words.replace(",", ".")
        raise InputError(f"column {name!r}: {value!r} could be {grouped} or {decimal} (training saw no comma in this "
                         "column); send the number without its comma")
    parsed = float((to_number(cell, comma) if kind == "numeric" else to_seconds(cell, order)).iloc[0])
    if parsed != parsed and not is_missing_text(cell).iloc[0] and str(value).strip() not in read_as_missing:
        raise _unreadable(name, kind, value)
    return parsed


def _respelled(names, kinds: dict) -> dict:
    """``{name: the model's column}`` for the names that are a missing column written otherwise: a number for
    its text (a record's key 1 for column "1"), the same text in another Unicode form (macOS writes "Größe"
    decomposed, "o" and a combining diaeresis), or without the spaces around it (a spreadsheet's "  rate ")."""
    names = list(names)
    wanted = {unicodedata.normalize("NFC", name).strip(): name for name in kinds if name not in names}
    found = {}
    for name in names:
        column = wanted.get(unicodedata.normalize("NFC", str(name)).strip())
        if column is not None and name not in kinds and column not in found.values():
            found[name] = column
    return found


def _check_names(names, kinds: dict, target: str | None, unknown: str) -> None:
    """Fail on columns the model needs but ``names`` lacks, or has twice; warn or fail on ones it does not use."""
    names = list(names)
    counts = Counter(names)
    twice = [name for name in kinds if counts[name] > 1]
    if twice:  # which of the two would be the model's column? (a Parquet file or JSON body can hold both)
        raise InputError(f"duplicate column name(s) {', '.join(map(repr, twice))}: each of the model's columns must "
                         "appear once")
    missing = [name for name in kinds if name not in names]
    if missing:
        others = [str(name) for name in names if name not in kinds]
        close = {name: close_names(name, others, n=1) for name in missing}
        hints = [f"{close[name][0]!r} for {name!r}" for name in missing if close[name]]
        raise InputError(f"input is missing column(s) the model needs: {', '.join(map(repr, missing))}"
                         + (f"; did you mean {', '.join(hints)}?" if hints else ""))
    extra = [str(name) for name in names if name not in kinds and name != target]
    if extra and unknown == "error":
        raise InputError(f"unknown column(s) the model does not use: {', '.join(map(repr, extra))}")
    if extra:
        log.warning("ignoring %d column(s) the model does not use: %s", len(extra), ", ".join(map(repr, extra)))


def _unreadable(name: str, kind: str, value, where: str = "") -> InputError:
    return InputError(unreadable_message(name, kind, value, where))


def unreadable_message(name: str, kind: str, value, where: str = "") -> str:
    """What to say of a value that is not of its column's kind (the exported MLflow loader says it too)."""
    expected = {"numeric": "a number", "datetime": "a date/time", "categorical": "a text value"}[kind]
    if isinstance(value, np.generic):  # inf, not np.float64(inf)
        value = value.item()
    why = ""
    if kind == "numeric" and _is_infinite(value):  # training read it as missing: say why this is not the same
        why = ("; training read infinite values as missing, but a prediction does not guess: leave the cell empty "
               "to predict it as missing")
    return f"column {name!r} expects {expected}, got {_shown(value)}{where}{why}"


def _shown(value) -> str:
    """A value as a message quotes it: whole up to 80 characters, else its start and its length (a 20 MB cell
    was printed whole)."""
    value = str(value) if hasattr(value, "isoformat") else value  # '1999-01-01', not datetime.date(1999, 1, 1)
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(str(value)):,} characters)"


def _is_infinite(value) -> bool:
    number = _as_float(value)
    return number is not None and math.isinf(number)


def _as_float(value) -> float | None:
    """``value`` as Python's ``float`` reads it (a minus sign as "-" too), or None."""
    try:
        return float(str(value).strip().replace("\u2212", "-"))
    except ValueError:
        return None
