"""Property-based tests: random tables and random payloads either work or raise MlkilnError.

Never another exception: whatever a user feeds mlkiln, the answer is a model,
a prediction, or one of our own messages.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlkiln
from mlkiln.errors import InputError, MlkilnError
from mlkiln.schema import infer_task

ODD_TEXT = st.sampled_from(["", " ", "n/a", "?", "-", "1,234", "NaN", "inf", "é", "日本", "a,b", 'q"uote', "\n", "0", "True"])
CELL = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-1000, 1000),
    st.booleans(),
    ODD_TEXT,
    st.text(max_size=6),
)
COLUMN = st.one_of(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1),
    st.lists(st.integers(0, 3), min_size=1),
    st.lists(st.sampled_from(["red", "green", "blue", None]), min_size=1),
    st.lists(CELL, min_size=1),
)
NAMES = st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=5, unique=True)


@st.composite
def tables(draw):
    names = draw(NAMES)
    n = draw(st.integers(1, 60))
    columns = {}
    for name in names:
        values = draw(COLUMN)
        columns[name] = [values[i % len(values)] for i in range(n)]
    return pd.DataFrame(columns), draw(st.sampled_from(names))


def _cheap_family(frame, target):
    try:
        task = infer_task(frame[target])
    except Exception:
        return None
    return ["linear"] if task == "regression" else ["logistic_l2"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables(), st.booleans())
def test_random_tables_train_or_raise_our_error(tmp_path_factory, table, via_csv):
    frame, target = table
    data = frame
    if via_csv:
        data = tmp_path_factory.mktemp("t") / "t.csv"
        frame.to_csv(data, index=False)
    try:
        run = mlkiln.train(data, target=target, models=_cheap_family(frame, target))
    except MlkilnError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert run.card.metrics["test"]["n"] >= 1


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x": rng.normal(size=200),
        "colour": rng.choice(["red", "green"], size=200),
        "when": pd.date_range("2024-01-01", periods=200, freq="D"),
    })
    frame["label"] = np.where(frame["x"] > 0, "up", "down")
    path = tmp_path_factory.mktemp("b") / "m"
    mlkiln.train(frame, target="label", models=["logistic_l2"], keep=["x"]).save(path)
    return mlkiln.load(path)


RECORD = st.dictionaries(st.sampled_from(["x", "colour", "when", "extra", "ü"]), CELL, max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.lists(RECORD, max_size=5))
def test_random_payloads_predict_or_raise_our_error(model, records):
    try:
        proba = model.predict_proba(records)
        labels = model.predict(records)
    except MlkilnError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert len(labels) == len(records) == len(proba)
    assert all(math.isclose(p.sum(), 1.0) for p in proba)


number_like = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**25, max_value=10**25).map(str),
    st.from_regex(r"\s*[+-]?[0-9]{0,20}\.?[0-9]{0,20}([eE][+-]?[0-9]{1,3})?\s*", fullmatch=True),
    st.text(alphabet="0123456789.,-+eE $%()\u00a0\u2212\uff13_", max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(number_like)
def test_a_record_s_text_number_reads_as_the_column_rules_read_it(text):
    # one record's plain numbers skip to_number's pandas steps; what they read as must not change
    fast, slow = _read_with_and_without(text, "numeric", "_PLAIN_NUMBER")
    assert fast == slow or (fast != fast and slow != slow)


def _read_with_and_without(text: str, kind: str, shortcut: str) -> tuple:
    """One record's value (or its error) read by schema._record_value, then with its ``shortcut`` pattern never
    matching: every value the pandas way."""
    from mlkiln import schema

    def read(value):
        try:
            return schema._record_value("x", kind, value)
        except InputError as error:
            return str(error)

    fast = read(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, shortcut, re.compile(r"(?!)"))
        slow = read(text)
    return fast, slow


time_like = st.one_of(
    st.datetimes(min_value=__import__("datetime").datetime(1600, 1, 1)).map(
        lambda d: d.isoformat(sep=" " if d.microsecond % 2 else "T")),
    st.dates().map(str),
    st.from_regex(r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?\s*", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(time_like)
def test_a_record_s_iso_time_reads_as_the_column_rules_read_it(text):
    # one record's plain ISO dates and times skip to_seconds' pandas steps; what they read as must not change
    fast, slow = _read_with_and_without(text, "datetime", "_PLAIN_ISO_TIME")
    assert fast == slow or (fast != fast and slow != slow)


def test_a_record_takes_numpy_scalars_missing_markers_and_date_objects_as_a_frame_does():
    import datetime as dt

    from mlkiln.schema import _record_value, to_number, to_seconds

    for value in (np.float64(0.3), np.int64(2), np.True_, np.float32(1.5)):
        assert _record_value("x", "numeric", value) == to_number(pd.Series([value])).iloc[0]
    for value in (pd.NA, pd.NaT, np.float64("nan"), None):
        assert math.isnan(_record_value("x", "numeric", value))
    for value in (dt.date(2020, 1, 5), dt.datetime(2020, 1, 5, 8, 30), pd.Timestamp("2020-01-05 08:30", tz="UTC"),
                  np.datetime64("2020-01-05T08:30:00.000000000"), dt.time(8, 30, 15)):
        assert _record_value("t", "datetime", value) == to_seconds(pd.Series([value])).iloc[0]
    assert _record_value("t", "datetime", dt.time(8, 30, 15)) == 8 * 3600 + 30 * 60 + 15  # a time of day: 1970-01-01
