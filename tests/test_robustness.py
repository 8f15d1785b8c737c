"""Bad input, case by case: a correct model with a warning, or one line, exit 2 and nothing written.

Each case writes a real file and runs the real CLI entry point in-process.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pandas as pd
import pytest

import mlkiln
from mlkiln import bundle
from mlkiln.cli import main
from mlkiln.data import read_table
from mlkiln.errors import ArgumentError, BundleError, InputError
from mlkiln.pipeline import REGISTRY, Family, register
from sklearn.tree import DecisionTreeRegressor
from common import cli, copy_bundle, rehash


def run(args, capsys):
    """Run ``mlkiln`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def train(tmp_path, capsys, data, target, *extra):
    out = tmp_path / "model"
    code, stdout, err = run(["train", data, "--target", target, "-o", out, "-q", *extra], capsys)
    return code, err, out


def assert_refused(result, message, tmp_path):
    code, err, out = result
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("mlkiln: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def card_of(out) -> dict:
    return json.loads((out / "card.json").read_text())


def table(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "z": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n),
        "y": 3 * x + rng.normal(scale=0.3, size=n),
        "label": np.where(x + rng.normal(scale=0.5, size=n) > 0, "yes", "no"),
    })


def write(path: Path, frame: pd.DataFrame, **kwargs) -> Path:
    frame.to_csv(path, index=False, **kwargs)
    return path


# ---- training-time data problems that end in a clear refusal ----

def test_binary_file(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(b"x,y\n" + bytes(range(256)) * 4)
    assert_refused(train(tmp_path, capsys, path, "y"), "not a text file", tmp_path)


def test_utf16_with_its_byte_order_mark_is_read(tmp_path, capsys):
    """Excel's "Unicode text" is UTF-16 with a BOM: half its bytes are NUL, and it was refused as "not a text file"."""
    frame = table()
    path = tmp_path / "u16.csv"
    frame.to_csv(path, index=False, encoding="utf-16")
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "--trials", "1")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.data.read_options["encoding"] == "utf-16" and model.card.data.rows == len(frame)
    features = tmp_path / "x.csv"
    frame.drop(columns="y").to_csv(features, index=False, encoding="utf-16")
    code, _, err = run(["predict", out, features, "-o", tmp_path / "p.csv"], capsys)
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["prediction"], model.predict(frame.drop(columns="y")))


def test_duplicate_column_names(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    path.write_text("x,x,y\n" + "".join(f"{i},{i},{i}\n" for i in range(30)))
    assert_refused(train(tmp_path, capsys, path, "y"), "duplicate column name(s) 'x'", tmp_path)


def test_misspelled_target_suggests(tmp_path, capsys):
    path = write(tmp_path / "t.csv", table())
    assert_refused(train(tmp_path, capsys, path, "lable"), "did you mean 'label'", tmp_path)
    assert_refused(train(tmp_path, capsys, path, "Y"), "target column 'Y' not found; did you mean 'y'?", tmp_path)


def test_a_column_named_in_another_case_is_suggested_at_prediction(small_bundle, tmp_path, capsys):
    frame = table(n=5).drop(columns=["y", "label"]).rename(columns={"colour": "Colour "})
    code, _, err = run(["predict", small_bundle, write(tmp_path / "new.csv", frame), "-o", tmp_path / "p.csv"], capsys)
    assert code == 2 and "missing column(s) the model needs: 'colour'; did you mean 'Colour ' for 'colour'?" in err


def test_misspelled_drop_or_keep_column_is_named_as_such(tmp_path, capsys):
    path = write(tmp_path / "t.csv", table())
    assert_refused(train(tmp_path, capsys, path, "y", "--drop", "colur"), "drop column 'colur' not found; did you mean 'colour'", tmp_path)
    assert_refused(train(tmp_path, capsys, path, "y", "--keep", "zz"), "keep column 'zz' not found", tmp_path)


def test_target_entirely_missing(tmp_path, capsys):
    frame = table().assign(y=np.nan)
    path = write(tmp_path / "t.csv", frame)
    assert_refused(train(tmp_path, capsys, path, "y"), "has no values", tmp_path)


def test_class_with_fewer_members_than_folds(tmp_path, capsys):
    frame = table()
    frame.loc[:1, "label"] = "rare"
    path = write(tmp_path / "t.csv", frame)
    result = train(tmp_path, capsys, path, "label")
    assert_refused(result, "class 'rare' has only 2 row(s)", tmp_path)
    assert "--task regression" not in result[1]  # text labels are classes


def test_a_count_taken_for_classes_points_to_regression(tmp_path, capsys):
    """Goals per match (vcd's Bundesliga): 0-12, inferred as classes, a rare count fails the folds."""
    frame = table()
    frame["goals"] = np.minimum(np.arange(len(frame)) % 7, 5)
    frame.loc[0, "goals"] = 12
    path = write(tmp_path / "t.csv", frame.drop(columns=["y", "label"]))
    result = train(tmp_path, capsys, path, "goals")
    assert_refused(result, "class 12 has only 1 row(s)", tmp_path)
    assert "use --task regression" in result[1]
    code, err, out = train(tmp_path, capsys, path, "goals", "--task", "regression", "--models", "ridge")
    assert code == 0, err


def test_tiny_table(tmp_path, capsys):
    path = write(tmp_path / "t.csv", table().head(3))
    assert_refused(train(tmp_path, capsys, path, "y", "--task", "regression"), "too few", tmp_path)
    # one row: every column is constant in it, and the rows, not the columns, are what is wrong
    path = write(tmp_path / "t.csv", table().head(1))
    code, err, _ = train(tmp_path, capsys, path, "y", "--task", "regression")
    assert_refused((code, err, tmp_path / "model"), "1 row(s) with a target are too few", tmp_path)
    assert "constant" not in err


def test_larger_than_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLKILN_MAX_MEMORY", "4K")
    path = write(tmp_path / "t.csv", table(n=500))
    assert_refused(train(tmp_path, capsys, path, "y"), "too large for the available memory", tmp_path)


# ---- training-time data problems that still give a correct model, with a warning ----

@pytest.mark.parametrize("encoding, values", [("latin-1", ("café", "crème")),
                                             ("cp1252", ("5€ plan", "\u201cPremium\u201d"))])  # Excel on Windows
def test_text_that_is_not_utf8_keeps_its_categories(tmp_path, capsys, encoding, values):
    """Read as Windows-1252 where the file decodes so: its € and curly quotes were control characters in Latin-1,
    and the same categories from a UTF-8 file were then 'unseen'."""
    frame = table()
    frame["colour"] = np.where(frame["x"] > 0, *values)
    path = write(tmp_path / "t.csv", frame, encoding=encoding)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0 and "not UTF-8; reading it as Windows-1252" in err
    colour = next(c for c in card_of(out)["schema"]["columns"] if c["name"] == "colour")
    assert sorted(colour["categories"]) == sorted(values)
    same = write(tmp_path / "utf8.csv", frame.drop(columns="y"))
    code, _, err = run(["predict", out, same, "-o", tmp_path / "p.csv"], capsys)
    assert code == 0 and "not seen in training" not in err


def test_text_that_is_not_windows_1252_is_read_as_latin1(tmp_path):
    (tmp_path / "odd.csv").write_bytes(b"x,y,colour\n1,2,a\x81b\n" * 50)  # 0x81: no character in cp1252
    assert mlkiln.data.sniff_csv(tmp_path / "odd.csv")["encoding"] == "latin-1"

def test_classic_mac_line_ends_and_pipes_are_named(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_bytes(table().to_csv(index=False).replace("\n", "\r").encode())  # pyarrow: "universal-newline mode?"
    assert_refused(train(tmp_path, capsys, path, "y"), "lines that end in a carriage return alone", tmp_path)
    os.mkfifo(tmp_path / "pipe.csv")
    assert_refused(train(tmp_path, capsys, tmp_path / "pipe.csv", "y"), "is not a regular file (a pipe?)", tmp_path)

def test_excel_s_sep_line_names_the_delimiter(tmp_path, capsys):
    """Excel writes "sep=;" above the header when asked to; it was taken for the header (column 'sep=;')."""
    path = tmp_path / "t.csv"
    path.write_text("sep=;\n" + table().to_csv(index=False, sep=";"))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert card_of(out)["data"]["read_options"]["skiprows"] == 1 and card_of(out)["metrics"]["test"]["r2"] > 0.9
    code, _, err = run(["predict", out, path, "-o", tmp_path / "p.csv"], capsys)
    assert code == 0 and len(pd.read_csv(tmp_path / "p.csv")) == len(table()), err

@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_delimiters(tmp_path, capsys, sep):
    path = write(tmp_path / "t.csv", table(), sep=sep)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert card_of(out)["data"]["read_options"]["sep"] == sep
    assert card_of(out)["metrics"]["test"]["r2"] > 0.9


def test_quoted_fields_with_newlines_and_commas(tmp_path, capsys):
    frame = table()
    frame["note"] = np.where(frame["x"] > 0, "line one,\nline two", 'say "hi", then go')
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert card_of(out)["data"]["rows"] == 120
    note = next(c for c in card_of(out)["schema"]["columns"] if c["name"] == "note")
    assert "line one,\nline two" in note["categories"]
    # with ";" or tab as the delimiter too: the sniffed lines end inside a quoted value
    for sep in (";", "\t"):
        notes = frame.drop(columns="note").assign(note=np.where(frame.index % 2, "a\nb", "c\nd"))
        path = write(tmp_path / f"t{len(sep)}.csv", notes[["note", *frame.columns.drop("note")]], sep=sep)
        code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear", "--force")
        assert code == 0 and card_of(out)["data"]["rows"] == 120, err


def test_target_with_some_missing_values(tmp_path, capsys):
    frame = table()
    frame.loc[:6, "y"] = np.nan
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0 and "dropping 7 row(s)" in err
    assert card_of(out)["data"]["rows_used"] == 113


def test_regression_target_as_text_with_thousands_separators(tmp_path, capsys):
    frame = table()
    frame["price"] = [f"{v:,.2f}" for v in 1000 * (frame["y"] + 5)]
    path = write(tmp_path / "t.csv", frame.drop(columns=["y", "label"]))
    code, err, out = train(tmp_path, capsys, path, "price", "--models", "linear")
    assert code == 0, err
    card = card_of(out)
    assert card["task"] == "regression" and card["metrics"]["test"]["r2"] > 0.9


def test_numeric_column_with_stray_text(tmp_path, capsys):
    frame = table().astype({"z": object})
    frame.loc[[3, 10, 20], "z"] = ["n/a", "-", "?"]
    frame.loc[5, "z"] = "oops"
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert "'z': 1 value(s) are not numbers (e.g. 'oops') and are treated as missing" in err
    assert next(c for c in card_of(out)["schema"]["columns"] if c["name"] == "z")["kind"] == "numeric"


def test_none_is_a_category_in_text_and_missing_in_numbers(tmp_path, capsys):
    """Tables made in R use "None" as a level (vcd's Arthritis: Improved is None, Some or Marked); a CSV reader
    that reads it as missing drops those rows. "NA" and empty cells stay missing."""
    frame = table().astype({"z": object})
    frame["label"] = np.where(frame["x"] > 0.3, "Marked", np.where(frame["x"] > -0.3, "Some", "None"))
    frame.loc[[3, 10], "z"] = "None"  # a placeholder in a column of numbers
    frame.loc[[4, 11, 12], "label"] = ["NA", "", "NA"]
    path = write(tmp_path / "t.csv", frame.drop(columns="y"))
    code, err, out = train(tmp_path, capsys, path, "label", "--models", "logistic_l2")
    assert code == 0, err
    card = card_of(out)
    assert card["data"]["rows_used"] == 117 and "dropping 3 row(s)" in err  # only the NA and empty targets
    assert sorted(card["schema"]["target"]["classes"]) == ["Marked", "None", "Some"]
    assert next(c for c in card["schema"]["columns"] if c["name"] == "z")["kind"] == "numeric"
    assert "not finite numbers" not in err  # "None" among numbers is a placeholder, not an unreadable value
    model = mlkiln.load(out)
    assert set(model.predict(frame.drop(columns=["y", "label"]))) <= {"Marked", "None", "Some"}


def test_column_names_that_are_python_and_pandas_words(tmp_path, capsys):
    """A column called "self" (Ecdat's Hdma: self-employed) once crashed training inside DataFrame.assign."""
    frame = table().rename(columns={"colour": "self", "x": "index", "z": "columns"}).assign(
        dtype=np.arange(120) % 7 * 1.5, values=np.where(np.arange(120) % 3, "a", "b"))
    path = write(tmp_path / "t.csv", frame.drop(columns="label"))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "hgb")
    assert code == 0, err
    model = mlkiln.load(out)
    record = frame.drop(columns=["y", "label"]).iloc[0].to_dict()
    assert model.predict_record(record)["prediction"] == pytest.approx(model.predict([record])[0], rel=1e-9)


def test_all_missing_constant_and_high_cardinality_columns(tmp_path, capsys):
    frame = table().assign(empty=np.nan, const="same", code=[f"id-{i:05d}x" for i in range(120)])
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    excluded = card_of(out)["excluded"]
    assert excluded["empty"].startswith("empty") and excluded["const"].startswith("constant")
    assert excluded["code"].startswith("identifier")


def test_date_and_time_columns(tmp_path, capsys):
    frame = table()
    frame["when"] = pd.date_range("2024-01-01", periods=120, freq="6h").strftime("%Y-%m-%d %H:%M")
    frame["day"] = pd.date_range("2024-01-01", periods=120, freq="D").strftime("%d/%m/%Y")
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear", "--keep", "when", "day")
    assert code == 0, err
    kinds = {c["name"]: c["kind"] for c in card_of(out)["schema"]["columns"]}
    assert kinds["when"] == "datetime" and kinds["day"] == "datetime"
    scored = mlkiln.load(out).predict(frame.head(5))
    assert np.isfinite(scored).all()


def test_more_columns_than_rows(tmp_path, capsys):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(40, 60)), columns=[f"f{i}" for i in range(60)])
    frame["y"] = frame["f0"] * 2 + rng.normal(scale=1.0, size=40)
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge")
    assert code == 0, err
    assert len(card_of(out)["schema"]["columns"]) == 60


def test_mixed_type_column(tmp_path, capsys):
    frame = table()
    frame["mixed"] = [str(i) if i % 2 else f"word{i % 7}" for i in range(120)]
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert next(c for c in card_of(out)["schema"]["columns"] if c["name"] == "mixed")["kind"] == "categorical"


def test_infinite_values(tmp_path, capsys):
    frame = table()
    frame.loc[[1, 2], "z"] = [np.inf, -np.inf]
    frame.loc[4, "y"] = np.inf
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert "'z': 2 value(s) are not finite numbers within +-3.4e38 (e.g. inf)" in err and "dropping 1 row(s)" in err
    frame["grade"] = np.where(frame["x"] > 0, 2.0, 1.0)  # classes written as numbers, one of them infinite
    frame.loc[7, "grade"] = np.inf
    code, err, out = train(tmp_path, capsys, write(tmp_path / "c.csv", frame.drop(columns="y")), "grade",
                           "--task", "classification", "--models", "logistic_l2", "--force")
    assert code == 0 and "dropping 1 row(s)" in err, err  # was scikit-learn's "Input y contains infinity"
    assert card_of(out)["schema"]["target"]["classes"] == [1, 2]


def test_comment_lines_above_the_header_are_skipped_but_a_header_may_start_with_a_hash(tmp_path, capsys):
    frame = table()
    path = tmp_path / "c.csv"
    path.write_text("# exported by a logger\n# units: mm\n" + frame.to_csv(index=False))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "--trials", "1")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.data.read_options["skiprows"] == 2 and len(model.card.columns) == 4
    np.testing.assert_allclose(model.predict(path), model.predict(frame), rtol=1e-12)
    hashed = frame.rename(columns={"z": "# of rooms"})
    path = write(tmp_path / "h.csv", hashed)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "--trials", "1", "--force")
    assert code == 0, err
    assert "# of rooms" in [c.name for c in mlkiln.load(out).card.columns]


def test_a_decimal_comma_csv_reads_its_numbers(tmp_path, capsys):
    """Excel's European CSV (";" between fields, "," as the decimal point): 0,126 was read as 126, the target too."""
    frame = table(n=300).round(3)
    path = write(tmp_path / "eu.csv", frame, sep=";", decimal=",")
    assert "0," in path.read_text()
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "--trials", "1")
    assert code == 0, err
    model = mlkiln.load(out)
    x = next(c for c in model.card.columns if c.name == "x")
    assert (x.min, x.max) == (frame["x"].min(), frame["x"].max())
    assert model.card.data.read_options["decimal"] == ","
    scored = tmp_path / "scored.csv"
    code, _, err = run(["predict", out, path, "-o", scored], capsys)
    assert code == 0, err
    expected = model.predict(frame.drop(columns="y"))
    np.testing.assert_allclose(pd.read_csv(scored)["prediction"], expected, rtol=1e-12)


def test_a_decimal_comma_csv_with_dots_between_thousands_reads_them(tmp_path, capsys):
    """A German Excel export wrote 2.695,4 once an amount passed 1.000: the column was dropped as identifiers."""
    frame = table(n=300).round(3)
    frame["amount"] = (frame["x"].abs() * 3000 + 10).round(1)
    frame["y"] += frame["amount"] / 1000
    german = frame.astype(object)
    german["amount"] = [f"{v:,.1f}".replace(",", "_").replace(".", ",").replace("_", ".") for v in frame["amount"]]
    assert german["amount"].str.contains(r"\d\.\d{3},").any()
    path = write(tmp_path / "de.csv", german, sep=";", decimal=",")
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge", "--trials", "1")
    assert code == 0, err
    model = mlkiln.load(out)
    amount = next(c for c in model.card.columns if c.name == "amount")
    assert amount.kind == "numeric" and (amount.min, amount.max) == (frame["amount"].min(), frame["amount"].max())
    record = {**frame.drop(columns="y").iloc[0].to_dict(), "amount": german["amount"].iloc[0]}
    expected = model.predict(frame.drop(columns="y").head(1))[0]
    assert model.predict_record(record)["prediction"] == pytest.approx(expected, rel=1e-12)
    from mlkiln.schema import to_number
    assert to_number(pd.Series(["1.234.567", "-2.695,4", "1.000"])).tolist() == [1234567.0, -2695.4, 1.0]


def test_a_time_of_day_column_does_not_depend_on_the_day_it_is_read(tmp_path, capsys):
    """"08:30" was read as today at 08:30: the same record predicted 12.8 on the day of training and 32.9 the next."""
    from mlkiln.schema import to_seconds

    rng = np.random.default_rng(0)
    hours, minutes = rng.integers(0, 24, 400), rng.integers(0, 60, 400)
    frame = pd.DataFrame({"time": [f"{h:02d}:{m:02d}" for h, m in zip(hours, minutes)], "x": rng.normal(size=400)})
    frame["y"] = hours * 1.5 + frame["x"] * 3 + rng.normal(size=400)
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "linear")
    assert code == 0, err
    column = next(c for c in mlkiln.load(out).card.columns if c.name == "time")
    assert column.kind == "datetime" and 0 <= column.min and column.max < 86400  # seconds since midnight
    assert to_seconds(pd.Series(["08:30", "8:30:00", "08:30 AM"])).tolist() == [30600.0] * 3
    # written otherwise (pandas put these on January 1st of year 1, 62 billion seconds before 1970)
    assert to_seconds(pd.Series(["8pm", "8 P.M.", "T20:00", "20:00:00.0"])).tolist() == [72000.0] * 4
    # predict reads the file once (it read it twice, announcing values "past its first block"), scores as in memory
    scored = tmp_path / "scored.csv"
    code, _, err = run(["predict", out, tmp_path / "t.csv", "-o", scored], capsys)
    assert code == 0 and "reading the input again" not in err, err
    np.testing.assert_allclose(pd.read_csv(scored)["prediction"], mlkiln.load(out).predict(frame), rtol=1e-9)
    assert (pd.read_csv(scored, dtype=str)["time"] == frame["time"]).all()


def test_day_first_dates_are_read_day_first_in_training_and_in_new_rows(tmp_path, capsys):
    """13/02/2020 is day first, so 01/02/2020 in the same column is February 1st, not January 2nd (pandas read
    each value on its own); the card keeps the order, so a new batch or record of 02/06/2021 alone is June 2nd."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-01", periods=120, freq="D")
    frame = pd.DataFrame({"when": days.strftime("%d/%m/%Y"), "x": rng.normal(size=120)})
    frame["y"] = np.arange(120) * 0.02 + frame["x"] + rng.normal(size=120)
    (tmp_path / "a").mkdir()
    code, err, out = train(tmp_path / "a", capsys, write(tmp_path / "dmy.csv", frame), "y", "--models", "linear",
                           "--keep", "when")
    assert code == 0 and "'when': dates such as '13/01/2020' are written day first" in err
    model = mlkiln.load(out)
    assert model.card.columns[[c.name for c in model.card.columns].index("when")].date_order == "day first"
    iso = frame.assign(when=days.strftime("%Y-%m-%d"))
    np.testing.assert_allclose(model.predict(frame.head(40)), model.predict(iso.head(40)), rtol=1e-12)
    assert model.predict_record({"when": "02/03/2020", "x": 0.0}) == model.predict_record({"when": "2020-03-02",
                                                                                           "x": 0.0})
    code, err, _ = train(tmp_path, capsys, write(tmp_path / "iso.csv", iso), "y", "--models", "linear")
    assert code == 0 and "day first" not in err


def test_currency_and_percent_signs_are_read_as_numbers(tmp_path, capsys):
    """A price written "$8,369.00" was taken for a class label ("class '$8,369.00' has only 1 row")."""
    from mlkiln.schema import to_number

    frame = table(n=200)
    price = 1000 + 100 * frame["y"]
    frame = frame.assign(y=[f"${v:,.2f}" for v in price], z=[f"{v:.1f}%" for v in frame["z"] * 10])
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "ridge")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.task == "regression" and model.card.schema.kinds["z"] == "numeric"
    assert model.card.metrics["test"]["r2"] > 0.8
    assert to_number(pd.Series(["$8,369.00", "8369 €", "-$5", "$-5", "8.4%", "A$", "5 apples"])).tolist()[:5] == \
        [8369.0, 8369.0, -5.0, -5.0, 8.4]



@pytest.mark.parametrize("scale, write_number", [
    (30000, lambda v: f"{v:,.1f}".replace(",", " ")),  # 47 845.5
    (30000, lambda v: f"{v:,.1f}".replace(",", "\u00a0").replace(".", ",")),  # 47 845,5 (French)
    (30000, lambda v: f"{v:,.1f}".replace(",", "'")),  # 47'845.5 (Swiss)
    (1, lambda v: f"{v:.3f}".replace("-", "\u2212")),  # the typographic minus sign
    (1, lambda v: f"({-v:.3f})" if v < 0 else f"{v:.3f}")],  # an accountant's negative
    ids=["space", "no-break-space-and-comma", "apostrophe", "minus-sign", "parentheses"])
def test_numbers_in_other_notations_are_numbers(tmp_path, capsys, scale, write_number):
    """They were text: the column excluded as an identifier or one-hot encoded, test R2 0.4-0.6 against 0.95."""
    frame = table(n=300)
    values = frame["x"] * scale
    frame["x"] = [write_number(v) for v in values]
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "ridge")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.schema.kinds["x"] == "numeric" and model.card.metrics["test"]["r2"] > 0.9
    np.testing.assert_allclose(mlkiln.schema.to_number(frame["x"]), values, atol=0.051)


def test_numbers_of_sixteen_digits_or_more_are_codes(tmp_path, capsys):
    """Order numbers of 20 digits were read as float64: rounded, close values kept as a numeric feature."""
    frame = table(n=300)
    frame["order"] = [str(10**19 + 7919 * int(i)) for i in np.random.default_rng(3).permutation(300)]  # one per row
    frame["account"] = np.where(frame["x"] > 0, "40000000000000000001", "40000000000000000002")  # two codes
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "ridge")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.excluded["order"].startswith("identifier")
    account = next(c for c in model.card.columns if c.name == "account")
    assert account.kind == "categorical" and sorted(account.categories) == sorted(set(frame["account"]))
    code, _, err = run(["predict", out, path, "-o", tmp_path / "p.csv"], capsys)
    assert code == 0 and "not seen in training" not in err, err
    scored = pd.read_csv(tmp_path / "p.csv", dtype={"order": str, "account": str})
    assert scored["order"].tolist() == frame["order"].tolist()  # echoed as written
    np.testing.assert_allclose(scored["prediction"], model.predict(frame.drop(columns="y")), rtol=1e-12)
    # the same numbers as a Parquet file's whole numbers: codes too (they were a numeric feature from Parquet only)
    account = np.where(frame["x"] > 0, 4_000_000_000_000_000_001, 4_000_000_000_000_000_002).astype("uint64")
    parquet = frame.assign(order=np.array([int(v) for v in frame["order"]], dtype="uint64"), account=account)
    parquet.to_parquet(tmp_path / "t.parquet")
    code, err, out = train(tmp_path, capsys, tmp_path / "t.parquet", "y", "--models", "ridge", "--force")
    assert code == 0, err
    again = mlkiln.load(out)
    assert again.card.excluded["order"].startswith("identifier")
    assert next(c for c in again.card.columns if c.name == "account").kind == "categorical"
    rows = parquet.drop(columns="y")  # scored alike as numbers or as the text they are
    np.testing.assert_array_equal(again.predict(rows), again.predict(rows.assign(account=rows["account"].astype(str))))


def test_a_duration_is_its_seconds(tmp_path, capsys):
    frame = table(n=300)
    frame["x"] = pd.to_timedelta(frame["x"] * 3600 + 10_000, unit="s")
    frame.to_parquet(tmp_path / "t.parquet")
    code, err, out = train(tmp_path, capsys, tmp_path / "t.parquet", "y", "--models", "ridge")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.card.schema.kinds["x"] == "numeric" and model.card.metrics["test"]["r2"] > 0.9
    np.testing.assert_allclose(model.predict(frame.head(20)), mlkiln.load(out).predict(
        frame.head(20).assign(x=frame["x"].head(20).dt.total_seconds())))

def test_values_too_large_for_the_models_count_as_unreadable(tmp_path, capsys):
    """Beyond float32's range a tree cannot hold a value: 1e39 in a feature and 1e308 in the target were crashes."""
    frame = table()
    frame.loc[[1, 2], "z"] = [1e39, -1e300]
    frame.loc[[4, 5], "y"] = [1e308, 1e160]
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear", "hgb", "--trials", "1")
    assert code == 0, err
    assert "'z': 2 value(s) are not finite numbers within +-3.4e38 (e.g. 1e+39)" in err and "dropping 2 row(s)" in err
    model = mlkiln.load(tmp_path / "model")
    row = {"x": 0.1, "z": 1e39, "colour": "red", "label": "yes"}
    with pytest.raises(mlkiln.MlkilnError, match="column 'z' expects a number, got 1e\\+39"):
        model.predict_record(row)  # at prediction, like inf or text, a value the model cannot hold is refused
    assert np.isfinite(model.predict_record({**row, "z": 3e38})["prediction"])
    for infinite in ("-inf", float("inf")):  # read as missing in training: said why a prediction refuses it
        with pytest.raises(mlkiln.MlkilnError, match="training read infinite values as missing, but a prediction"):
            model.predict_record({**row, "z": infinite})


# ---- prediction time ----

@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("b") / "model"
    mlkiln.train(table(n=300), target="label", models=["logistic_l2"], drop=["y"]).save(path)
    return path


def test_predict_extra_reordered_missing_and_unseen(small_bundle, caplog):
    model = mlkiln.load(small_bundle)
    frame = pd.DataFrame({"colour": ["purple", None, "red"], "extra": [1, 2, 3], "z": [0.1, None, 0.3], "x": [1.0, -1.0, None]})
    proba = model.predict_proba(frame)
    assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1)
    assert "'extra'" in caplog.text and "not seen in training" in caplog.text


def test_an_unseen_value_of_a_column_of_many_categories_is_warned_of(caplog):
    """A text column of more categories than the card lists (100): its unseen values went unsaid by predict,
    where drift and /metrics counted them from the bundle's profile (cars' 300 model names)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"name": [f"model {i % 300}" for i in range(1500)], "x": rng.normal(size=1500)})
    frame["y"] = frame["x"] + rng.normal(size=1500)
    model = mlkiln.train(frame, target="y", models=["ridge"])
    assert model.card.columns[0].n_categories == 300 > len(model.card.columns[0].categories)
    model.predict(frame.head(50))  # a rare category the card does not list is no news
    assert "not seen in training" not in caplog.text
    model.predict(pd.DataFrame({"name": ["model 299", "tesla model 3", "zzz"], "x": [0.0, 1.0, 2.0]}))
    assert "'name': 2 value(s) not seen in training (e.g. 'tesla model 3')" in caplog.text


def test_a_true_false_target_is_written_as_its_classes_are_named(tmp_path, capsys):
    """pyarrow's CSV writer wrote a boolean prediction (and the input's boolean columns) as true/false, beside
    columns proba_False and proba_True."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "flag": rng.random(300) < 0.5})
    frame["y"] = frame["x"] + rng.normal(scale=0.5, size=300) > 0
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "logistic_l2")
    assert code == 0, err
    code, scored, err = run(["predict", out, tmp_path / "t.csv", "-o", "-"], capsys)
    assert code == 0, err
    back = pd.read_csv(io.StringIO(scored), dtype=str)
    assert list(back.columns[-2:]) == ["proba_False", "proba_True"]
    assert set(back["prediction"]) == set(back["y"]) == set(back["flag"]) == {"False", "True"}
    assert (back["prediction"] == mlkiln.load(out).predict(frame).astype(str)).all()


def test_predict_wrong_type_names_column_and_row(small_bundle):
    model = mlkiln.load(small_bundle)
    with pytest.raises(mlkiln.MlkilnError, match=r"column 'x' expects a number, got 'abc' in row 2"):
        model.predict(pd.DataFrame({"x": [1.0, "abc"], "z": [0, 0], "colour": ["red", "red"]}))


def test_predict_empty_input_gives_empty_output(small_bundle, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("x,z,colour\n")
    out = tmp_path / "scored.csv"
    code, _, err = run(["predict", small_bundle, empty, "-o", out], capsys)
    assert code == 0, err
    scored = pd.read_csv(out)
    assert len(scored) == 0 and "prediction" in scored.columns


# ---- bundles ----

def test_skops_with_untrusted_type_is_refused(small_bundle, tmp_path):
    import skops.io as sio

    path = copy_bundle(small_bundle, tmp_path)
    mlkiln.load(path)  # the good model, audited and kept for the next load of the same bytes
    (path / "model.skops").write_bytes(sio.dumps({"model": os.system}))
    rehash(path)
    with pytest.raises(mlkiln.MlkilnError, match="untrusted type"):  # other bytes: audited again, at the same path
        mlkiln.load(path)


def test_pickle_that_runs_code_is_refused_without_trust(small_bundle, tmp_path):
    import pickle

    path = copy_bundle(small_bundle, tmp_path)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (path / "model.joblib").write_bytes(pickle.dumps(Exploit()))
    rehash(path)
    model = mlkiln.load(path)  # default: the audited skops file, never the pickle
    assert not marker.exists() and model.pipeline is not None


def _rename_x(card):
    card["schema"]["columns"][0]["name"] = "x2"


def _x_as_text(card):
    card["schema"]["columns"][0].update(kind="categorical", categories=["1"], n_categories=1, min=None, max=None)


def _swap_classes(card):
    card["schema"]["target"]["classes"] = card["schema"]["target"]["classes"][::-1]


def _as_regression(card):
    card["task"] = "regression"


@pytest.mark.parametrize("edit, words", [(_rename_x, "the model reads columns ['x', 'z', 'colour'], the card lists ['x2'"),
                                         (_x_as_text, "column 'x' is numeric to the model, categorical on the card"),
                                         (_swap_classes, "the model's classes are ['no', 'yes'], the card's ['yes', 'no']"),
                                         (_as_regression, "the model is a classifier, the card says regression")],
                         ids=["renamed column", "kind", "classes", "task"])
def test_a_card_edited_and_hashed_again_is_refused_as_not_its_model(small_bundle, tmp_path, capsys, edit, words):
    """The manifest vouches for the files, not that they belong together: the model itself is compared with the card."""
    path = copy_bundle(small_bundle, tmp_path)
    card = json.loads((path / "card.json").read_text())
    edit(card)
    (path / "card.json").write_text(json.dumps(card))
    rehash(path)
    for trust_pickle in (False, True):
        with pytest.raises(BundleError, match=re.escape(words)):
            mlkiln.load(path, trust_pickle=trust_pickle)
    data = write(tmp_path / "new.csv", table(n=5).drop(columns=["y", "label"]))
    code, _, err = run(["predict", path, data, "-o", tmp_path / "p.csv"], capsys)
    assert code == 2 and "card.json does not describe model.skops" in err and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("change, outcome", [("major", "refuse"), ("minor", "warn")])
def test_version_differences(small_bundle, tmp_path, caplog, change, outcome):
    path = copy_bundle(small_bundle, tmp_path)
    card = json.loads((path / "card.json").read_text())
    major, minor, *_ = card["versions"]["scikit-learn"].split(".")
    card["versions"]["scikit-learn"] = f"{int(major) + 1}.0.0" if change == "major" else f"{major}.{int(minor) + 1}.0"
    (path / "card.json").write_text(json.dumps(card))
    rehash(path)
    if outcome == "refuse":
        with pytest.raises(mlkiln.MlkilnError, match="pip install -r"):
            mlkiln.load(path)
    else:
        mlkiln.load(path)
        assert "bundle was made with scikit-learn" in caplog.text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_train_leaves_old_or_new_bundle(small_bundle, tmp_path, sig):
    data = write(tmp_path / "t.csv", table(n=2000))
    out = copy_bundle(small_bundle, tmp_path)
    before = bundle.file_sha256(out / "card.json")
    # a signal during the imports, the search, the final fit and the bundle's writing (two cheap families)
    for delay in (0.5, 1.2, 2.0, 2.8):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlkiln", "train", str(data), "--target", "y", "--models", "ridge", "hgb",
             "-o", str(out), "--force", "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err
        bundle.verify(out)  # a complete bundle, old or new
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")]
        if proc.returncode == 130:  # interrupted while working: the old bundle stays
            assert "interrupted" in err
            assert bundle.file_sha256(out / "card.json") == before
        elif proc.returncode == 0:  # finished first: the new bundle is in place
            assert bundle.file_sha256(out / "card.json") != before
        # any other end (a signal before Python started, or while it exited) is
        # covered by the checks above: a complete bundle and no leftovers
        before = bundle.file_sha256(out / "card.json")


def test_every_family_failing_says_why_and_a_kept_empty_column_is_refused(tmp_path, capsys):
    frame = table()
    frame["empty"] = np.nan
    path = write(tmp_path / "t.csv", frame)
    assert_refused(train(tmp_path, capsys, path, "y", "--keep", "empty", "--models", "hgb"),
                   "keep column 'empty' has no readable values", tmp_path)
    # a family whose every fit fails (scikit-learn refuses the depth): its reason, in scikit-learn's words
    register(Family("broken", ("regression",), lambda task, seed, n_classes=2: DecisionTreeRegressor(random_state=seed),
                    grid={"max_depth": [-1]}))
    try:
        with pytest.raises(InputError, match=r"every model family failed to fit \(broken: every candidate failed "
                                             r"to fit \(InvalidParameterError: The 'max_depth' parameter"):
            mlkiln.train(frame.drop(columns="empty"), target="y", models=["broken"])
        run = mlkiln.train(frame.drop(columns="empty"), target="y", models=["broken", "linear"])
    finally:
        del REGISTRY["broken"]
    failed = run.leaderboard.set_index("family").loc["broken"]
    assert failed["status"] == "failed" and run.card.model.family == "linear"
    assert "broken failed: every candidate failed to fit (InvalidParameterError" in capsys.readouterr().err


def test_a_target_too_large_for_the_models_is_named_as_such(tmp_path, capsys):
    frame = table()
    frame["y"] = frame["y"] * 1e160
    path = write(tmp_path / "t.csv", frame)
    assert_refused(train(tmp_path, capsys, path, "y", "--models", "linear"), "too large for the models", tmp_path)
    frame = table()
    frame.loc[:4, "y"] = 1e300
    code, err, out = train(tmp_path, capsys, write(tmp_path / "some.csv", frame), "y", "--models", "linear")
    assert code == 0 and "5 value(s) of the target 'y' are beyond" in err
    split = json.loads((out / "card.json").read_text())["split"]
    assert split["n_train"] + split["n_test"] == len(frame) - 5


def test_a_true_false_target_keeps_its_labels(tmp_path, capsys):
    frame = table()
    frame["label"] = frame["label"] == "yes"
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "label", "--models", "logistic_l2")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.classes == [False, True] and model.card.schema.target.dtype == "bool"
    record = frame.drop(columns="label").iloc[0].to_dict()
    answer = model.predict_record(record)
    assert type(answer["prediction"]) is bool and set(answer["probabilities"]) == {"False", "True"}
    scored = tmp_path / "scored.csv"
    assert run(["predict", out, path, "-o", scored], capsys)[0] == 0
    assert set(pd.read_csv(scored)["prediction"]) <= {True, False}


def test_labels_written_1_0_in_one_file_and_true_false_in_the_other_are_the_same_classes(tmp_path, capsys):
    """Evaluation compares labels by value: 1 is True. Compared as they were written, 1 matched no prediction
    True, and precision, recall and the confusion matrix came out as zeros."""
    frame = table()
    frame["label"] = frame["label"] == "yes"
    as_bool, as_int = frame.copy(), frame.assign(label=frame["label"].astype(int))
    for trained, other in ((as_bool, as_int), (as_int, as_bool)):
        path = write(tmp_path / "train.csv", trained)
        code, err, out = train(tmp_path, capsys, path, "label", "--models", "logistic_l2", "--force")
        assert code == 0, err
        model = mlkiln.load(out)
        same, written_otherwise = model.evaluate(trained), model.evaluate(other)
        assert written_otherwise == same and same["precision"] > 0.5 and sum(map(sum, same["confusion_matrix"])) == len(frame)
        with pytest.raises(InputError, match="class\\(es\\) the model never saw: 2"):
            model.evaluate(other.assign(label=2))


def test_labels_written_with_leading_zeros_stay_as_written(tmp_path, capsys):
    """Codes such as 01, 007, 010 are labels, not the numbers 1, 7 and 10 (which matched none a user wrote)."""
    frame = table(300)
    frame["label"] = np.select([frame["x"] < -0.5, frame["x"] < 0.5], ["01", "007"], "10")
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "label", "--models", "logistic_l2")
    assert code == 0, err
    model = mlkiln.load(out)
    assert model.classes == ["007", "01", "10"]
    scored = tmp_path / "scored.csv"
    assert run(["predict", out, path, "-o", scored], capsys)[0] == 0
    back = pd.read_csv(scored, dtype=str)
    assert set(back["prediction"]) <= {"01", "007", "10"} and (back["label"] == frame["label"]).all()
    assert (back["prediction"] == frame["label"]).mean() > 0.8
    # a file holding mostly 10, which reads as numbers: still the model's classes (a code is its number's, if one)
    some = pd.concat([frame[frame["label"] == "10"], frame[frame["label"] == "007"].head(5)])
    assert read_table(write(tmp_path / "e.csv", some))["label"].dtype.kind == "i"
    assert mlkiln.load(out).evaluate(some)["accuracy"] == mlkiln.load(out).evaluate(read_table(tmp_path / "e.csv"))["accuracy"]
    # classes "007" and "7" both: a file of 7s (numbers once read) is the class "7", not refused as unknown
    frame["label"] = np.select([frame["x"] < -0.5, frame["x"] < 0.5], ["7", "007"], "010")
    code, err, sevens = train(tmp_path, capsys, write(tmp_path / "sevens.csv", frame), "label", "--models",
                              "logistic_l2", "--force")
    assert code == 0, err
    lows = frame[frame["label"] != "007"]
    assert read_table(write(tmp_path / "lows.csv", lows))["label"].dtype.kind == "i"
    assert mlkiln.load(sevens).evaluate(read_table(tmp_path / "lows.csv")) == mlkiln.load(sevens).evaluate(lows)
    # some written so, every value of one width (zip codes: a fifth of the rows in a state starting with 0): codes
    frame["label"] = np.where(frame["x"] > 0.85, "02134", "90210")
    zips = read_table(write(tmp_path / "zip.csv", frame))["label"]
    assert zips.dtype.kind == "O" and (zips == frame["label"]).all()
    # some written so, widths differing (a count padded in a few rows): numbers
    frame["label"] = np.where(frame["x"] > 0.85, "07", "120")
    assert read_table(write(tmp_path / "counts.csv", frame))["label"].dtype.kind == "i"


def test_dotted_and_month_name_dates_are_dates_and_dots_are_day_first(tmp_path, capsys):
    frame = table(n=120)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(frame)) * 3, unit="D")
    frame["dotted"] = days.strftime("%d.%m.%Y")  # 01.02.2020 is the first of February, as in every dotted date
    frame["named"] = days.strftime("%d %b %Y")
    path = write(tmp_path / "t.csv", frame.drop(columns="label"))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear", "--keep", "dotted", "named")
    assert code == 0, err
    kinds = mlkiln.load(out).card.schema.kinds
    assert kinds["dotted"] == kinds["named"] == "datetime"
    assert "written day first" not in err
    from mlkiln.schema import to_seconds

    seconds = to_seconds(frame["dotted"])
    np.testing.assert_array_equal(seconds, to_seconds(frame["named"]))
    np.testing.assert_array_equal(seconds, (days - pd.Timestamp("1970-01-01")).total_seconds())


def test_outputs_in_new_folders_are_made_and_a_folder_or_file_in_the_way_is_named(tmp_path, capsys):
    """predict, evaluate and drift: a missing folder is made (as train -o makes a bundle's); an output that is a
    folder, or under a file, is one line naming it, never a temporary file's name, and nothing is written."""
    frame = table()
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    assert run(["predict", out, path, "-o", tmp_path / "new" / "deeper" / "p.csv"], capsys)[0] == 0
    assert len(pd.read_csv(tmp_path / "new" / "deeper" / "p.csv")) == len(frame)
    assert run(["evaluate", out, path, "--report", tmp_path / "reports" / "e.html"], capsys)[0] == 0
    assert (tmp_path / "reports" / "e.json").is_file()
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain").write_text("a file")
    for command, name in ((["predict", out, path, "-o"], "x.csv"), (["drift", out, path, "-o"], "x.html"),
                          (["evaluate", out, path, "--report"], "x.html")):
        for where, message in ((tmp_path / "folder", "is a directory"), (tmp_path / "plain" / name, "is a file, not a folder")):
            code, _, err = run([*command, where], capsys)
            assert code == 2 and message in err and ".tmp-" not in err, err
    assert list((tmp_path / "folder").iterdir()) == [] and (tmp_path / "plain").read_text() == "a file"


def test_an_output_nothing_can_be_written_to_is_refused_before_any_work(tmp_path, capsys):
    """Under a file, or where no file can be made (/proc refuses every new name, root's included): one line
    naming the user's path before the data is read, never a temporary file's name after training."""
    path = write(tmp_path / "t.csv", table())
    for out, message in ((tmp_path / "t.csv" / "model", "is a file, not a folder"),
                         (Path("/proc/mlkiln-none/model"), "/proc refuses new files")):
        code, _, err = run(["train", path, "--target", "y", "-o", out], capsys)
        assert code == 2 and message in err and ".tmp" not in err and "split:" not in err, err
        code, _, err = run(["example", "diamonds", "-o", out.with_suffix(".csv")], capsys)
        assert code == 2 and message in err and ".tmp" not in err, err


def test_text_that_training_read_as_missing_is_missing_again_at_prediction(tmp_path, capsys):
    """A code such as "136A" in a numeric column was missing in training: predicting the same file must work,
    and a record with it too; text training never saw there is still an error naming it."""
    frame = table()
    frame["x"] = frame["x"].round(3).astype(str)
    frame.loc[[5, 17], "x"] = "136A"
    path = write(tmp_path / "t.csv", frame.drop(columns="label"))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0 and "'x': 2 value(s) are not numbers (e.g. '136A')" in err, err
    model = mlkiln.load(out)
    assert model.card.columns[[c.name for c in model.card.columns].index("x")].unreadable == ("136A",)
    scored = tmp_path / "scored.csv"
    assert run(["predict", out, path, "-o", scored], capsys)[0] == 0
    predictions = pd.read_csv(scored)["prediction"]
    record = frame.drop(columns=["label", "y"]).iloc[5].to_dict()
    assert model.predict_record(record)["prediction"] == pytest.approx(predictions[5], rel=1e-12)
    with pytest.raises(mlkiln.MlkilnError, match="column 'x' expects a number, got '999B'"):
        model.predict_record({**record, "x": "999B"})


def test_json_and_excel_files_are_named_for_what_they_are(tmp_path, capsys):
    frame = table()
    frame.to_json(tmp_path / "t.json", orient="records")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for name in ("t.json", "t.jsonl"):
        assert_refused(train(tmp_path, capsys, tmp_path / name, "y"), "looks like JSON", tmp_path)
    import zipfile

    with zipfile.ZipFile(tmp_path / "book.xlsx", "w") as book:  # a workbook is a zip of XML files
        book.writestr("xl/workbook.xml", "<workbook/>")
    assert_refused(train(tmp_path, capsys, tmp_path / "book.xlsx", "y"), "looks like an Excel workbook", tmp_path)
    # SQL Server writes headers in brackets: still a CSV
    bracketed = frame.drop(columns="label").rename(columns=lambda c: f"[{c}]")
    code, err, _ = train(tmp_path, capsys, write(tmp_path / "sql.csv", bracketed), "[y]", "--models", "linear")
    assert code == 0, err


def test_a_model_column_given_twice_is_named(small_bundle, tmp_path, capsys):
    frame = table(n=5).drop(columns=["y", "label"])
    twice = pd.concat([frame, frame[["colour"]]], axis=1)
    with pytest.raises(InputError, match="duplicate column name\\(s\\) 'colour'"):
        mlkiln.load(small_bundle).predict(twice)
    import pyarrow as pa
    import pyarrow.parquet as pq

    # a CSV reader renames the second; a Parquet file keeps both (pandas will not write it, pyarrow will)
    arrays = [pa.array(twice.iloc[:, i].tolist()) for i in range(twice.shape[1])]
    pq.write_table(pa.Table.from_arrays(arrays, names=list(twice.columns)), tmp_path / "twice.parquet")
    code, _, err = run(["predict", small_bundle, tmp_path / "twice.parquet", "-o", tmp_path / "p.csv"], capsys)
    assert code == 2 and "duplicate column name(s) 'colour'" in err and not (tmp_path / "p.csv").exists()


def test_scoring_a_scored_file_puts_the_new_scores_under_the_same_names(small_bundle, tmp_path, capsys):
    data = write(tmp_path / "new.csv", table(n=40).drop(columns=["y", "label"]))
    model = mlkiln.load(small_bundle)
    first = model.predict_frame(pd.read_csv(data))
    stale = first.assign(prediction="stale", proba_yes=-1.0)  # as if another model had scored it
    write(tmp_path / "scored.csv", stale)
    for suffix in (".csv", ".parquet"):
        code, _, err = run(["predict", small_bundle, tmp_path / "scored.csv", "-o", tmp_path / f"again{suffix}"], capsys)
        assert code == 0 and "'prediction', 'proba_no', 'proba_yes' are replaced by this model's scores" in err
        again = pd.read_csv(tmp_path / "again.csv") if suffix == ".csv" else pd.read_parquet(tmp_path / "again.parquet")
        assert list(again.columns) == list(first.columns)  # no prediction_1: the names a job reads hold the new scores
        np.testing.assert_array_equal(again["prediction"], first["prediction"])
        np.testing.assert_allclose(again["proba_yes"], first["proba_yes"])
    assert list(model.predict_frame(stale).columns) == list(first.columns)


def test_folds_of_one_row_are_refused_and_of_a_few_rows_warned_about(tmp_path, capsys):
    path = write(tmp_path / "t.csv", table(n=60))  # 48 training rows
    assert_refused(train(tmp_path, capsys, path, "y", "--models", "ridge", "--folds", "25"),
                   "25-fold cross-validation of 48 training rows leaves validation folds of one row", tmp_path)
    code, err, _ = train(tmp_path, capsys, path, "y", "--models", "ridge", "--folds", "6")
    assert code == 0 and "validation folds of 8 rows score each candidate on so few rows" in err


def test_columns_the_model_does_not_use_are_echoed_as_written(small_bundle, tmp_path, capsys):
    """Identifiers kept their type's reading: '000157' came out 157, and twenty-digit ids all as 1e+20."""
    frame = table(n=30).drop(columns=["y", "label"])
    frame.insert(0, "acct", [f"{i:06d}" for i in range(30)])
    frame.insert(1, "id20", [str(10**20 + i) for i in range(30)])
    data = tmp_path / "new.csv"
    frame.to_csv(data, index=False)
    for out in (tmp_path / "p.csv", tmp_path / "p.parquet"):
        code, _, err = run(["predict", small_bundle, data, "-o", out], capsys)
        assert code == 0, err
        scored = pd.read_csv(out, dtype=str) if out.suffix == ".csv" else pd.read_parquet(out)
        assert scored["acct"].tolist() == frame["acct"].tolist() and scored["id20"].tolist() == frame["id20"].tolist()
        np.testing.assert_allclose(scored["proba_yes"].astype(float), mlkiln.load(small_bundle).predict_frame(frame)["proba_yes"])


def test_classes_that_differ_only_in_case_are_warned_about(tmp_path, capsys):
    frame = table(n=200)
    frame["label"] = np.where(frame["x"] > 0.5, "Yes", frame["label"])
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "label", "--drop", "y",
                           "--models", "logistic_l2")
    assert code == 0 and "classes 'Yes', 'yes' differ only in case or spaces" in err
    assert card_of(out)["schema"]["target"]["classes"] == ["Yes", "no", "yes"]  # kept as written


def test_a_test_split_of_one_row_is_refused(tmp_path, capsys):
    path = write(tmp_path / "t.csv", table(n=400))
    assert_refused(train(tmp_path, capsys, path, "y", "--models", "ridge", "--test-size", "0.001"),
                   "a test split of 0.001 holds one of the 400 rows, too few to score a model on", tmp_path)
    code, err, _ = train(tmp_path, capsys, path, "y", "--models", "ridge", "--test-size", "0.01")  # 4 rows
    assert code == 0 and "the test split holds 4 rows: its metrics are mostly noise" in err
    code, err, _ = train(tmp_path, capsys, path, "y", "--models", "ridge", "--force")  # 80 rows
    assert code == 0 and "test split holds" not in err


def test_evaluate_and_drift_say_what_is_wrong_and_where(tmp_path, capsys):
    """evaluate tells a missing target from one that is not a number; drift names the file that lacks a column."""
    frame = table()
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "linear")
    assert code == 0, err
    held = frame.astype({"y": object})
    held.loc[3, "y"], held.loc[4, "y"], held.loc[5, "y"] = "oops", "oops", None
    code, _, err = run(["evaluate", out, write(tmp_path / "held.csv", held)], capsys)
    assert code == 0, err
    assert "skipping 1 row(s) whose target is missing" in err
    assert "skipping 2 row(s) whose target is not a number, such as 'oops'" in err
    code, _, err = run(["drift", out, write(tmp_path / "nox.csv", frame.drop(columns="x")), "-o", tmp_path / "d.html"],
                       capsys)
    assert code == 2 and "mlkiln: error: " in err and "nox.csv: input is missing column(s) the model needs: 'x'" in err
    assert not (tmp_path / "d.html").exists()


def test_evaluate_on_rows_of_one_class_says_what_its_averages_mean(tmp_path, capsys):
    frame = table(n=200)
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "label", "--models", "logistic_l2")
    assert code == 0, err
    one = frame[frame["label"] == "yes"].head(30)
    code, _, err = run(["evaluate", out, write(tmp_path / "one.csv", one)], capsys)
    assert code == 0, err
    assert "the evaluation data holds no row of class(es) 'no'" in err
    code, _, err = run(["evaluate", out, write(tmp_path / "both.csv", frame.head(60))], capsys)
    assert code == 0 and "holds no row" not in err


def test_a_target_of_many_dates_is_one_line_but_a_few_ranges_are_classes(tmp_path, capsys):
    frame = table(n=200)
    frame["when"] = (pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(200), unit="D")).strftime("%Y-%m-%d")
    path = write(tmp_path / "t.csv", frame)
    for task in ("auto", "regression", "classification"):
        assert_refused(train(tmp_path, capsys, path, "when", "--task", task),
                       "target column 'when' holds dates or times; mlkiln predicts a number or a class", tmp_path)
    frame["band"] = np.select([frame["x"] < -0.5, frame["x"] < 0.5], ["1-5", "6-10"], "11-15")  # also reads as dates
    code, err, out = train(tmp_path, capsys, write(tmp_path / "b.csv", frame.drop(columns="when")), "band",
                           "--models", "logistic_l2")
    assert code == 0, err
    assert mlkiln.load(out).classes == ["1-5", "11-15", "6-10"]


def test_a_flag_column_with_a_missing_value_is_scored(tmp_path, capsys):
    """A True/False column read with an empty cell arrives as Python bools among None: still its numbers."""
    frame = table()
    frame["flag"] = frame["x"] > 0
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "linear")
    assert code == 0, err
    new = frame.head(6).astype({"flag": object})
    new.loc[2, "flag"] = None
    scored = tmp_path / "scored.csv"
    code, _, err = run(["predict", out, write(tmp_path / "new.csv", new), "-o", scored], capsys)
    assert code == 0, err
    model = mlkiln.load(out)
    expected = model.predict(frame.head(6).drop(columns="y").astype({"flag": float}).assign(
        flag=lambda f: f["flag"].where(f.index != 2)))
    np.testing.assert_allclose(pd.read_csv(scored)["prediction"], expected, rtol=1e-12)


def test_library_arguments_are_checked_at_the_boundary(tmp_path):
    """One name where a list is expected is that name, not its letters; a column both dropped and kept, or a
    target that is no column name, is one ArgumentError."""
    frame = table().assign(b=1.0, bb=lambda f: f["z"])
    run = mlkiln.train(frame.drop(columns="label"), target="y", models="linear", drop="bb")
    assert run.card.model.family == "linear" and tuple(run.card.dropped_by_user) == ("bb",)
    assert "bb" not in run.card.schema.kinds and run.card.excluded["b"].startswith("constant")
    with pytest.raises(ArgumentError, match="names no family"):
        mlkiln.train(frame, target="y", models=[])
    with pytest.raises(ArgumentError, match="'x' is also in drop"):
        mlkiln.train(frame, target="y", drop=["x"], keep=["x"])
    for target in (["y"], None, 1.5):
        with pytest.raises(ArgumentError, match="must be the name of one column"):
            mlkiln.train(frame, target=target)
    numbered = pd.DataFrame({0: frame["x"], 1: frame["y"]})
    assert mlkiln.train(numbered, target=1, models=["linear"]).card.target == "1"
    # None drops and keeps nothing, as None for models is every family (it was a TypeError)
    assert tuple(mlkiln.train(frame, target="y", models=["linear"], drop=None, keep=None).card.dropped_by_user) == ()


def test_a_blank_class_label_is_a_missing_one(tmp_path, capsys):
    frame = table()
    frame.loc[frame.index[:10], "label"] = " "  # as "", it would be written and read back as missing
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "label", "--models", "logistic_l2")
    assert code == 0, err
    assert mlkiln.load(out).classes == ["no", "yes"] and "dropping 10 row(s) whose target 'label'" in err


def test_far_target_values_are_named_and_a_file_in_the_bundle_s_place_is_said_plainly(tmp_path, capsys):
    frame = table(200)
    frame.loc[frame.index[:3], "y"] = 1e9  # a placeholder among values of a few units
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "linear")
    assert code == 0, err
    assert "3 value(s) of the target 'y' are over 1000 interquartile ranges from its median (e.g. 1e+09)" in err
    (tmp_path / "plain").mkdir()
    code, err, _ = train(tmp_path / "plain", capsys, write(tmp_path / "u.csv", table(200)), "y", "--models", "linear")
    assert code == 0 and "interquartile" not in err, err
    (tmp_path / "notes.txt").write_text("mine")
    run = mlkiln.train(table(60), target="y", models=["linear"])
    for force in (False, True):  # the first answer must not suggest a --force that the second refuses
        with pytest.raises(InputError, match="notes.txt exists and is not a directory; a bundle is a directory"):
            run.save(tmp_path / "notes.txt", force=force)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_flag_written_as_text_scores_like_the_flag(tmp_path, capsys):
    """A Parquet part holding a True/False column as the strings "True"/"False" (as JSON "true" would): the CSV
    reader makes booleans of the same text, so it reads as the flag, whether scored into parts or one file."""
    frame = table()
    frame["flag"] = frame["x"] > 0
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "linear")
    assert code == 0, err
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.head(10).drop(columns="y").to_parquet(parts / "a.parquet")
    frame.iloc[10:20].drop(columns="y").astype({"flag": str}).to_parquet(parts / "b.parquet")
    for target in (tmp_path / "scored", tmp_path / "one.parquet"):
        code, _, err = run(["predict", out, parts, "-o", target], capsys)
        assert code == 0, err
    expected = mlkiln.load(out).predict(frame.head(20).drop(columns="y"))
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "one.parquet")["prediction"], expected, rtol=1e-12)
    assert mlkiln.load(out).predict_record({"x": 0.5, "z": 0.0, "colour": "red", "flag": "true", "label": "yes"}) \
        == pytest.approx(mlkiln.load(out).predict_record({"x": 0.5, "z": 0.0, "colour": "red", "flag": True,
                                                          "label": "yes"}))


def test_a_frame_with_list_cells_trains_and_complex_numbers_are_refused():
    """A DataFrame column of lists (as a Parquet list column reads) failed hashing the frame with a TypeError;
    it trains, with the list column set aside as nested values."""
    frame = table().drop(columns="label")
    run = mlkiln.train(frame.assign(tags=[[1, 2], [3]] * (len(frame) // 2)), target="y", models=["linear"])
    assert "tags" not in run.card.schema.kinds and "nested values" in run.card.excluded["tags"]
    with pytest.raises(InputError, match="column 'wave' holds complex numbers"):
        mlkiln.train(frame.assign(wave=frame["x"] * (1 + 1j)), target="y", models=["linear"])


def test_gradient_boosting_does_not_depend_on_the_target_s_units():
    """scikit-learn's early stopping compares losses with an absolute tolerance: a target in units of 1e-4 stopped
    after 30 trees where the same target in units of 1 grew 98."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x1": rng.normal(size=500).round(4), "x2": rng.normal(size=500).round(4)})
    y = 2 * frame["x1"] - frame["x2"] + rng.normal(size=500) * 0.3
    runs = [mlkiln.train(frame.assign(y=y * scale), target="y", models=["hgb"], trials=2) for scale in (1.0, 1e-6)]
    assert runs[0].card.model.trees == runs[1].card.model.trees
    assert runs[0].metrics["test"]["r2"] == pytest.approx(runs[1].metrics["test"]["r2"], abs=1e-6)


def test_emoji_classes_draw_without_font_warnings(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.choice(["\U0001f98a", "\U0001f43b"], 200)})
    path = write(tmp_path / "t.csv", frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err, out = train(tmp_path, capsys, path, "y", "--models", "logistic_l2", "--trials", "1")
    assert code == 0, err
    assert not [w for w in caught if "Glyph" in str(w.message)] and "Glyph" not in err
    assert sorted(mlkiln.load(out).card.classes) == sorted(["\U0001f98a", "\U0001f43b"])


def test_column_names_in_another_unicode_form_or_as_numbers_are_the_same_columns():
    """'did you mean 'Größe' for 'Größe'?': macOS writes names decomposed; a frame's column 0 is the model's '0'."""
    import unicodedata

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"Größe": rng.normal(size=200), 0: rng.normal(size=200)})
    frame["y"] = 2 * frame["Größe"] + frame[0] + rng.normal(size=200) * 0.1
    model = mlkiln.train(frame, target="y", models=["ridge"]).model
    X = frame.drop(columns="y")
    expected = model.predict(X.head(5))
    decomposed = X.rename(columns={"Größe": unicodedata.normalize("NFD", "Größe")})
    assert list(decomposed.columns) != list(X.columns)
    np.testing.assert_array_equal(model.predict(decomposed.head(5)), expected)
    record = decomposed.iloc[0].to_dict()  # keys: the decomposed name and the number 0
    assert model.predict_record(record)["prediction"] == pytest.approx(expected[0], rel=1e-12)
    with pytest.raises(mlkiln.errors.InputError, match=r"missing column\(s\) the model needs: '0'"):
        model.predict_record({"Größe": 1.0})
    # a spreadsheet's header padded with spaces ("  Größe "), in training or in the new rows: the same column
    padded = mlkiln.train(frame.rename(columns={"Größe": "  Größe "}), target="y", models=["ridge"]).model
    np.testing.assert_allclose(padded.predict(X.head(5)), expected, rtol=1e-9)
    assert padded.predict_record(X.iloc[0].to_dict())["prediction"] == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_array_equal(model.predict(X.head(5).rename(columns={"Größe": " Größe"})), expected)
    # the target named without its padding: the padded column, which the card names as written
    run = mlkiln.train(frame.rename(columns={"y": " y  "}), target="y", models=["ridge"])
    assert run.card.target == " y  "
    np.testing.assert_allclose(run.model.predict(X.head(5)), expected, rtol=1e-9)


def test_inspect_cuts_long_categories(tmp_path, capsys):
    frame = table()
    frame["note"] = np.where(frame["x"] > 0, "a" * 5000, "b" * 3000)
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "ridge")
    assert code == 0, err
    code, text, err = run(["inspect", out], capsys)
    assert code == 0, err
    assert max(len(line) for line in text.splitlines()) < 400 and "a" * 37 + "..." in text


def test_one_record_takes_the_durations_and_periods_a_frame_holds():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"td": pd.to_timedelta(rng.integers(0, 3600, 200), unit="s"),
                          "per": pd.period_range("2020-01", periods=200, freq="M"), "x": rng.normal(size=200)})
    frame["y"] = frame["td"].dt.total_seconds() / 1000 + frame["x"] + rng.normal(size=200) * 0.1
    model = mlkiln.train(frame, target="y", models=["ridge"]).model
    X = frame.drop(columns="y").head(5)
    expected = model.predict(X)
    for i in range(5):  # keys hold Timedelta and Period values, as a frame's row gives them
        assert model.predict_record(X.iloc[i].to_dict())["prediction"] == pytest.approx(expected[i], rel=1e-12)
    missing = model.predict_record({"td": pd.NaT, "per": pd.Period("2020-02", "M"), "x": 0.0})  # NaT: missing
    assert missing["prediction"] == pytest.approx(
        model.predict(pd.DataFrame({"td": [pd.NaT], "per": [pd.Period("2020-02", "M")], "x": [0.0]}))[0], rel=1e-12)


def test_a_model_no_better_than_a_constant_says_so_and_names_what_may_hold_the_signal(caplog):
    # the signal is in a code set aside as an identifier: the model can only guess the class shares, and says so
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 600)
    ref = [("P" if y else "N") + f"{i:05d}" for i, y in enumerate(label)]  # a distinct code per row: its letter
    frame = pd.DataFrame({"ref": ref, "noise": rng.normal(size=600), "label": np.where(label, "pos", "neg")})
    with caplog.at_level("WARNING", logger="mlkiln"):
        run = mlkiln.train(frame, target="label", models=["logistic_l2"])
    assert run.card.excluded["ref"].startswith("identifier-like")
    warned = [r.getMessage() for r in caplog.records if "no better than predicting the class shares" in r.getMessage()]
    assert len(warned) == 1 and "'ref' (identifier-like)" in warned[0]
    # a real signal: no such warning
    caplog.clear()
    frame["noise"] = label + rng.normal(scale=0.5, size=600)
    with caplog.at_level("WARNING", logger="mlkiln"):
        mlkiln.train(frame, target="label", models=["logistic_l2"])
    assert not any("no better than" in r.getMessage() for r in caplog.records)


def test_a_model_that_labels_every_row_one_class_says_so(caplog):
    """A weak signal among four classes, the commonest half the rows: the probabilities learn a little (log loss
    below the shares'), but every label is the commonest class, and nothing said so (vega's 63 LA riots)."""
    rng = np.random.default_rng(0)
    label = rng.choice(["a", "b", "c", "d"], size=400, p=[0.55, 0.2, 0.15, 0.1])
    frame = pd.DataFrame({"x": (label == "d") * 0.3 + rng.normal(size=400), "label": label})
    with caplog.at_level("WARNING", logger="mlkiln"):
        run = mlkiln.train(frame, target="label", models=["logistic_l2"])
    assert set(run.predict(frame)) == {"a"}
    warned = [r.getMessage() for r in caplog.records if "labels every row" in r.getMessage()]
    assert warned == ["the model labels every row 'a' (out-of-fold and test): no other class is ever predicted; "
                      "its probabilities may still rank the rows (report), or give it more rows or columns"]
    caplog.clear()
    frame["x"] = (label == "d") * 3.0 + rng.normal(size=400)  # a signal: class d labelled
    with caplog.at_level("WARNING", logger="mlkiln"):
        mlkiln.train(frame, target="label", models=["logistic_l2"])
    assert not any("labels every row" in r.getMessage() for r in caplog.records)


def test_whole_number_codes_read_as_a_quantity_get_a_hint():
    from mlkiln import metrics, workflow

    diamonds = mlkiln.examples.load_example("diamonds").head(2000)
    codes = diamonds["clarity"].astype("category").cat.codes.astype(float)  # a label's codes, as a file holds them
    assert metrics.no_better_than_baseline("regression", {"r2": 0.004}, codes).startswith("the model is no better")
    assert metrics.no_better_than_baseline("regression", {"r2": 0.3}, codes) is None
    table = workflow.Table(X=diamonds[["carat"]], y=codes, task="regression", kinds={"carat": "numeric"}, columns=(),
                           target=None, metric=None, excluded={}, rows_dropped=0)
    assert "8 whole-number values may be class codes: train with --task classification" in \
        workflow._weak_model_hint(table)
    table.y = diamonds["price"] + 0.5
    assert workflow._weak_model_hint(table) == ""


def test_no_rows_are_scored_with_the_columns_and_types_of_rows(failure_bundle, failure_csv, tmp_path):
    # a part of a dataset with no rows is appended to the others downstream: it must have their schema
    model = mlkiln.load(failure_bundle)
    rows = pd.read_csv(failure_csv).head(5)
    some, none = model.predict_frame(rows), model.predict_frame(rows.head(0))
    assert len(none) == 0 and list(none.columns) == list(some.columns)
    assert none.dtypes.to_dict() == some.dtypes.to_dict()
    assert model.predict(rows.head(0)).dtype == model.predict(rows).dtype
    rows.head(0).to_csv(tmp_path / "empty.csv", index=False)
    assert main(["predict", failure_bundle, str(tmp_path / "empty.csv"), "-o", str(tmp_path / "out.parquet")]) == 0
    import pyarrow.parquet as pq
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert [n for n in schema.names if n.startswith("proba_") or n == "prediction"] == \
        ["prediction", *(f"proba_{c}" for c in model.classes)]


def test_a_row_with_another_number_of_fields_is_named_by_its_line(tmp_path, capsys):
    # pyarrow quotes the row but not where it is: in 3,000 rows, "7,8" alone does not say which
    lines = ["# exported by hand", "a,b,c"] + [f"{i},{2 * i},{i % 3}" for i in range(3000)]
    lines[2501] = "7,8"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(["train", str(path), "--target", "c", "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "Expected 3 columns, got 2: 7,8 (line 2,502 of the file)" in err
    assert sum(line.startswith("mlkiln: error:") for line in err.splitlines()) == 1 and not (tmp_path / "m").exists()
    lines[1000:1000] = ["", "", ""]  # blank lines, which pyarrow does not count, still count in the file
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(["train", str(path), "--target", "c", "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "Expected 3 columns, got 2: 7,8 (line 2,505 of the file)" in err
    path.write_text("a,b,c\n1,2,3\n4,5,6\n   \n")  # a last line of spaces: said so, not a row of one field
    code, _, err = run(["train", str(path), "--target", "c", "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "(line 4 of the file); that line holds only spaces or tabs: delete it" in err


def test_a_carriage_return_inside_an_unquoted_value_is_named(tmp_path, capsys):
    # pandas' to_csv quotes a value holding "\n" but not one holding a lone "\r" (a tweet pasted from an old Mac):
    # every CSV reader ends the row there
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"text": [f"note {i}" for i in range(300)], "x": rng.normal(size=300)})
    frame["y"] = frame["x"] + rng.normal(size=300)
    frame.loc[150, "text"] = "first part\rsecond part"
    path = tmp_path / "notes.csv"
    frame.to_csv(path, index=False)
    code, _, err = run(["train", str(path), "--target", "y", "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "carriage return (\\r) without a line feed" in err
    assert sum(line.startswith("mlkiln: error:") for line in err.splitlines()) == 1 and not (tmp_path / "m").exists()
    frame.to_csv(path, index=False, quoting=1)  # every value quoted: the "\r" is part of its value
    code, _, _ = run(["train", str(path), "--target", "y", "-o", str(tmp_path / "m"), "--models", "ridge"], capsys)
    assert code == 0


def test_a_footer_row_dropped_for_its_target_is_read_so_again_when_the_file_is_predicted(tmp_path):
    """"Total" in a number column, in a row dropped for its missing target: predicting the training file said
    "column 'a' expects a number, got 'Total'"; the card now lists it as read as missing, as training did."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300).round(3), "b": rng.normal(size=300).round(3)})
    frame["y"] = np.where(frame.a + rng.normal(scale=0.5, size=300) > 0, "yes", "no")
    path = tmp_path / "with_footer.csv"
    path.write_text(frame.to_csv(index=False) + "Total,,\n")
    run = mlkiln.train(path, target="y", models=["logistic_l2"], trials=1)
    assert next(c for c in run.card.columns if c.name == "a").unreadable == ("Total",)
    scored = run.model.predict(pd.read_csv(path))
    assert len(scored) == 301


def test_a_placeholder_in_a_few_rows_of_the_target_is_a_missing_label_not_a_class():
    """"?" and "-" in 4 % of the rows: dropped like a blank label (they were classes of their own); "+" and "-"
    as the two classes of a table stay its classes."""
    from mlkiln.schema import coerce_target

    labels = pd.Series(["yes", "no"] * 48 + ["?", "-", " ?", "#N/A"])
    assert sorted(coerce_target(labels, "classification").unique()) == ["no", "yes"]
    signs = pd.Series(["+", "-"] * 50 + ["?"])
    assert sorted(coerce_target(signs, "classification").unique()) == ["+", "-"]
    rare_positive = pd.Series(["ok"] * 98 + ["fraud"] * 2, name="fraud")  # a rare class named as its column stays
    assert sorted(coerce_target(rare_positive, "classification").unique()) == ["fraud", "ok"]
    rare_sign = pd.Series(["+"] * 97 + ["-"] * 3)  # beside "+", "-" is a class however rare
    assert sorted(coerce_target(rare_sign, "classification").unique()) == ["+", "-"]
    codes = coerce_target(pd.Series(["0", "1"] * 30 + ["?"]), "classification")  # text only for the "?"
    assert codes.dtype == "int64" and sorted(codes.unique()) == [0, 1]


def test_parquet_names_given_twice_or_empty_and_rows_over_a_block_are_one_clear_line(tmp_path):
    """pyarrow's own words were "Multiple matches for FieldRef.Name(age)" and "straddling object straddles two
    block boundaries"; a column named "" trained, and the scored file could not be read back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from common import cli, one_line_error

    pq.write_table(pa.table([[1, 2], [3, 4], ["a", "b"]], names=["age", "age", "y"]), tmp_path / "twice.parquet")
    one_line_error(cli("train", tmp_path / "twice.parquet", "--target", "y", "-o", tmp_path / "m1"),
                   "duplicate column name(s): 'age'")
    pq.write_table(pa.table([[1, 2], [3, 4], ["a", "b"]], names=["age", "", "y"]), tmp_path / "empty.parquet")
    one_line_error(cli("train", tmp_path / "empty.parquet", "--target", "y", "-o", tmp_path / "m2"),
                   "column 2 has an empty name")
    long = pd.DataFrame({"x": range(50), "y": ["a", "b"] * 25,
                         "note": ["short"] * 25 + ["z" * 3_000_000] + ["short"] * 24})
    long.to_csv(tmp_path / "long.csv", index=False)
    one_line_error(cli("train", tmp_path / "long.csv", "--target", "y", "-o", tmp_path / "m3"),
                   "a row is longer than 1 MB")
    assert not any((tmp_path / m).exists() for m in ("m1", "m2", "m3"))


def test_one_line_in_another_encoding_is_named_not_read_into_every_line(tmp_path):
    """A UTF-8 file with one Windows-1252 line was read wholly as Windows-1252: every "Zürich" became
    "ZÃ¼rich", and clean rows later matched no category. The line is named; a file wholly in Windows-1252
    still reads, with its warning."""
    from common import cli, one_line_error

    rows = "".join(f"{i % 7},{['Zürich', 'Malmö', 'Genève'][i % 3]},{'ab'[i % 2]}\n" for i in range(60))
    (tmp_path / "mixed.csv").write_bytes(("x,city,y\n" + rows).encode() + "5,Genève,a\n".encode("cp1252"))
    one_line_error(cli("train", tmp_path / "mixed.csv", "--target", "y", "-o", tmp_path / "m"),
                   "is UTF-8 text except line 62 ('5,Gen")
    (tmp_path / "last.csv").write_bytes(("x,city,y\n" + rows).encode() + "5,Genève,a".encode("cp1252"))  # no \n
    one_line_error(cli("train", tmp_path / "last.csv", "--target", "y", "-o", tmp_path / "m"),
                   "is UTF-8 text except line 62")
    (tmp_path / "ansi.csv").write_bytes(("x,city,y\n" + rows).encode("cp1252"))
    frame = read_table(tmp_path / "ansi.csv")
    assert set(frame["city"]) == {"Zürich", "Malmö", "Genève"}


def test_list_and_record_columns_are_set_aside_with_their_reason(tmp_path):
    """Parquet list and struct columns were read as their printed text ("['plus' 'x']"), categories no JSON
    record could match; they are excluded, and the same file still scores."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "tags": [["x", "yz"[i % 2]] for i in range(200)],
                          "meta": [{"k": i % 3} for i in range(200)]})
    frame["y"] = np.where(frame.a + rng.normal(scale=0.5, size=200) > 0, "hi", "lo")  # not `a` cut at 0: a leak
    frame.to_parquet(tmp_path / "nested.parquet")
    run = mlkiln.train(tmp_path / "nested.parquet", target="y", models=["logistic_l2"], trials=1)
    assert set(run.card.excluded) == {"tags", "meta"} and "nested values" in run.card.excluded["tags"]
    assert [c.name for c in run.card.columns] == ["a"]
    assert len(run.model.predict(pd.read_parquet(tmp_path / "nested.parquet"))) == 200


def test_spaces_around_a_category_are_dropped_and_case_variants_are_said(tmp_path, caplog):
    """"Zürich " (a padded export) was a category apart from "Zürich": 24 categories for 8 cities, and a clean
    record matched neither half. Spaces are dropped and Unicode's forms made one, in training, batches and
    records alike; values that differ only in case stay apart, with a warning."""
    from mlkiln.schema import conform_record

    rng = np.random.default_rng(0)
    city = rng.choice(["Zürich", "Malmö"], 300)
    frame = pd.DataFrame({"city": [c + " " * (i % 3) for i, c in enumerate(city)],
                          "plan": rng.choice(["basic", "BASIC", "plus"], 300), "a": rng.normal(size=300)})
    frame["y"] = np.where((city == "Zürich") ^ (frame.a > 1), "yes", "no")
    with caplog.at_level("WARNING", logger="mlkiln"):
        run = mlkiln.train(frame, target="y", models=["logistic_l2"], trials=1)
    column = next(c for c in run.card.columns if c.name == "city")
    assert column.n_categories == 2 and set(column.categories) == {"Zürich", "Malmö"}
    assert "column 'plan': 2 value(s) differ from another only in case" in caplog.text
    assert conform_record({"city": " Malmö  ", "plan": "plus", "a": 0.0}, run.card.columns)["city"] == "Malmö"
    decomposed = "Malmo\u0308"  # o and a combining diaeresis (macOS): the same text, another Unicode form
    assert conform_record({"city": decomposed, "plan": "plus", "a": 0.0}, run.card.columns)["city"] == "Malmö"
    assert np.allclose(run.model.predict_proba(frame.head(5).assign(city=decomposed)),
                       run.model.predict_proba(frame.head(5).assign(city="Malmö")))
    padded = run.model.predict_proba(frame.head(30))
    assert np.allclose(padded, run.model.predict_proba(frame.head(30).assign(city=lambda d: d.city.str.strip())))


def test_a_bundle_trained_on_padded_text_before_cleaning_keeps_reading_it_as_written():
    """Bundles of earlier versions learnt "Zürich " apart from "Zürich"; cleaning new rows would match neither.
    Where a card's categories are not clean, that column's new values stay as written."""
    from mlkiln.card import Column
    from mlkiln.schema import conform, conform_record

    old = (Column("city", "categorical", "object", 0.0, 2, ("Zürich ", "Malmö")), Column("a", "numeric", "float64", 0.0))
    new = (Column("city", "categorical", "object", 0.0, 2, ("Zürich", "Malmö")), Column("a", "numeric", "float64", 0.0))
    rows = pd.DataFrame({"city": ["Zürich ", " Malmö"], "a": [1.0, 2.0]})
    assert conform(rows, old)["city"].tolist() == ["Zürich ", " Malmö"]
    assert conform(rows, new)["city"].tolist() == ["Zürich", "Malmö"]
    assert conform_record({"city": "Zürich ", "a": 1.0}, old)["city"] == "Zürich "
    assert conform_record({"city": "Zürich ", "a": 1.0}, new)["city"] == "Zürich"


def test_targets_that_are_no_number_or_class_are_refused_in_their_own_words(tmp_path, capsys):
    """Parquet's list and binary columns as the target were classes of their printed forms ("[1 2]", b'x'); a
    target of infinite numbers given --task classification was told to use --task classification."""
    frame = table(60)
    for name, column in (("lists", pa.array([[1, 2], [3]] * 30)), ("bytes", pa.array([b"x", b"y"] * 30))):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(frame.drop(columns="y")).append_column("y", column), path)
        code, _, err = run(["train", path, "--target", "y", "-o", tmp_path / name], capsys)
        held = "lists or records" if name == "lists" else "bytes"
        assert code == 2 and f"target column 'y' holds {held}, not a number or a class" in err, err
    path = write(tmp_path / "inf.csv", frame.assign(y=np.inf))
    code, _, err = run(["train", path, "--target", "y", "--task", "classification", "-o", tmp_path / "i"], capsys)
    assert code == 2 and "no value usable as a class (only infinite numbers)" in err and "use --task" not in err, err


def test_evaluating_on_the_training_file_says_its_metrics_are_optimistic(tmp_path, capsys):
    frame = table(200)
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    code, _, err = run(["evaluate", out, path, "--report", tmp_path / "e.html"], capsys)
    assert code == 0 and "this is the training data (its sha256 is the card's)" in err, err
    other = write(tmp_path / "new.csv", frame.head(150))
    code, _, err = run(["evaluate", out, other, "--report", tmp_path / "f.html"], capsys)
    assert code == 0 and "training data" not in err, err


def test_a_file_of_the_user_s_is_not_replaced_by_an_output_but_mlkiln_s_own_are(tmp_path, capsys):
    """``example diamonds -o iris.csv`` replaced the user's data without a word; so did predict and the pages.
    A file mlkiln wrote (scores, the example, a page) is replaced as before, and --force replaces the others."""
    frame = table()
    path = write(tmp_path / "t.csv", frame)
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "linear")
    assert code == 0, err
    theirs = write(tmp_path / "theirs.csv", frame.head(5))
    kept = theirs.read_bytes()
    page = tmp_path / "notes.html"
    page.write_text("<html>my notes</html>")
    for args in (["example", "diamonds", "-o", theirs], ["predict", out, path, "-o", theirs],
                 ["report", out, "-o", page], ["drift", out, path, "-o", page],
                 ["evaluate", out, path, "--report", page]):
        code, _, err = run(args, capsys)
        assert code == 2 and "exists and is not" in err and "mlkiln wrote" in err, (args, err)
    assert theirs.read_bytes() == kept and page.read_text() == "<html>my notes</html>"
    scores, example = tmp_path / "scores.csv", tmp_path / "diamonds.csv"
    for _ in range(2):  # running a command again replaces what it wrote
        assert run(["predict", out, path, "-o", scores], capsys)[0] == 0
        assert run(["example", "diamonds", "-o", example], capsys)[0] == 0
        assert run(["report", out, "-o", tmp_path / "r.html"], capsys)[0] == 0
    assert run(["predict", out, path, "-o", theirs, "--force"], capsys)[0] == 0
    assert "prediction" in pd.read_csv(theirs).columns


def test_a_parquet_or_xz_file_by_another_name_is_named_for_what_it_is(tmp_path, capsys):
    import gzip
    import lzma

    frame = table(60)
    frame.to_parquet(tmp_path / "t.parquet")
    parquet = (tmp_path / "t.parquet").read_bytes()
    (tmp_path / "named.csv").write_bytes(parquet)
    (tmp_path / "t.parquet.gz").write_bytes(gzip.compress(parquet))
    (tmp_path / "t.csv.xz").write_bytes(lzma.compress(frame.to_csv(index=False).encode()))
    for name, message in (("named.csv", "is a Parquet file; name it .parquet"),
                          ("t.parquet.gz", "is a Parquet file; name it .parquet"),
                          ("t.csv.xz", "is compressed as xz, which mlkiln does not read")):
        code, _, err = run(["train", tmp_path / name, "--target", "y", "-o", tmp_path / "m"], capsys)
        assert code == 2 and message in err, err


def test_repeated_list_options_add_up_and_a_second_target_is_refused(tmp_path, capsys):
    """argparse kept only the last ``--drop``: ``--drop label --drop z`` trained on ``label``, a copy of the
    target's sign, without a word. The lists add up; a second, different ``--target`` or ``-o`` is one line."""
    path = write(tmp_path / "t.csv", table())
    code, err, out = train(tmp_path, capsys, path, "y", "--drop", "label", "--drop", "z", "--models", "linear")
    assert code == 0, err
    assert [c["name"] for c in card_of(out)["schema"]["columns"]] == ["x", "colour"]
    for args in (["--target", "label"], ["-o", tmp_path / "other"]):
        result = cli("train", path, "--target", "y", "-o", tmp_path / "m", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "given twice" in lines[0], result.stderr
        assert not (tmp_path / "m").exists() and not (tmp_path / "other").exists()


def test_a_nearly_empty_column_is_set_aside_and_gradient_boosting_fits(tmp_path, capsys):
    """One value in 600 rows: the folds without it made every gradient boosting fit fail ("window shape cannot be
    larger than input array shape"), and a weaker family won. It is set aside with its reason; a column of 10 %
    values stays."""
    frame = table(600)
    frame["rare"] = np.nan
    frame.loc[0, "rare"] = 5.0
    frame["sparse"] = np.where(np.arange(600) % 10 == 0, frame["x"], np.nan)
    path = write(tmp_path / "t.csv", frame.drop(columns="label"))
    code, err, out = train(tmp_path, capsys, path, "y", "--models", "hgb", "--trials", "1")
    assert code == 0, err
    card = card_of(out)
    assert "rare" not in [c["name"] for c in card["schema"]["columns"]]
    assert "sparse" in [c["name"] for c in card["schema"]["columns"]]
    assert "nearly empty: 1 value(s) in 600 rows" in err
    assert card["model"]["family"] == "hgb" and card["metrics"]["test"]["r2"] > 0.8


def test_a_class_of_one_row_is_named_before_the_columns_are_screened(tmp_path, capsys):
    """A float target 1.0 everywhere but one 2.0: each feature 'predicted' the one-row class perfectly, so every
    column was excluded as leakage and the error said no feature was left."""
    frame = table(200)
    frame["y"] = 1.0
    frame.loc[7, "y"] = 2.0
    path = write(tmp_path / "t.csv", frame.drop(columns="label"))
    assert_refused(train(tmp_path, capsys, path, "y"), "class 2 has only 1 row(s)", tmp_path)


def test_a_target_too_small_for_the_models_is_refused(tmp_path, capsys):
    """At 1e-300 the out-of-fold predictions (float32) were all zero and the card said R2 1.0 for a constant."""
    frame = table(200).drop(columns="label")
    frame["y"] = frame["y"] * 1e-300
    path = write(tmp_path / "t.csv", frame)
    assert_refused(train(tmp_path, capsys, path, "y"), "too small for the models; rescale it", tmp_path)
    frame["y"] = frame["y"] * 1e280  # 1e-20: float32 holds it
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t2.csv", frame), "y", "--models", "linear")
    assert code == 0 and card_of(out)["metrics"]["test"]["r2"] > 0.9, err


def test_a_column_named_as_predicts_output_is_refused(tmp_path, capsys):
    """A feature named ``prediction`` was replaced by the score in predict's output, and scoring that output
    again fed the old scores in as the feature (predictions 28.7 apart). Dropped, it is no feature."""
    frame = table().rename(columns={"x": "prediction", "z": "proba_yes"})
    path = write(tmp_path / "t.csv", frame)
    assert_refused(train(tmp_path, capsys, path, "y"), "column 'prediction' has the name of a column predict adds",
                   tmp_path)
    assert_refused(train(tmp_path, capsys, path, "label", "--drop", "prediction", "y"),
                   "column 'proba_yes' has the name of a column predict adds", tmp_path)
    code, err, out = train(tmp_path, capsys, path, "y", "--drop", "prediction", "--models", "linear")
    assert code == 0, err


def test_the_odd_file_of_a_dataset_folder_is_the_one_named(tmp_path, capsys):
    """A README.txt beside two CSV parts: the error blamed part1.csv for lacking the README's first line."""
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = table()
    write(folder / "part1.csv", frame.iloc[:60])
    write(folder / "part2.csv", frame.iloc[60:])
    (folder / "README.txt").write_text("exported 2024-01-01 from CRM\nask Ann\n")
    assert_refused(train(tmp_path, capsys, folder, "y"), "README.txt does not have the columns of", tmp_path)


def test_an_error_in_lokys_manager_thread_is_not_printed(capfd):
    """Ctrl-C under a call in flight raised a KeyError in loky's ExecutorManagerThread, printed as a traceback
    before "interrupted"; mlkiln.workers' hook keeps it quiet, and hands any other thread's error to the hook it
    replaced (here Python's own, which prints it; pytest's would record it as a warning)."""
    import threading

    from mlkiln import workers

    def fail():
        raise KeyError(5)

    saved, replaced = threading.excepthook, workers._state.pop("excepthook", None)
    threading.excepthook = threading.__excepthook__
    try:
        with workers.loky_config(1):
            pass
        for name in ("ExecutorManagerThread", "another-thread"):
            thread = threading.Thread(target=fail, name=name)
            thread.start()
            thread.join()
    finally:
        threading.excepthook = saved
        workers._state["excepthook"] = replaced or threading.__excepthook__
    err = capfd.readouterr().err
    assert "ExecutorManagerThread" not in err and "another-thread" in err and "KeyError: 5" in err


def test_a_parquet_binary_column_is_set_aside_with_its_reason(tmp_path, capsys):
    """Bytes were read as their printed forms ("b'\\x02'"), and the scored file written as CSV held "02": scoring
    it again found every value unseen (predictions 3.8 apart)."""
    frame = table(200).drop(columns="label")
    frame["code"] = [bytes([i % 3]) for i in range(len(frame))]
    frame.to_parquet(tmp_path / "t.parquet")
    code, err, out = train(tmp_path, capsys, tmp_path / "t.parquet", "y", "--models", "linear")
    assert code == 0 and "excluding column 'code': bytes, not text or numbers" in err, err
    assert "code" not in [c["name"] for c in card_of(out)["schema"]["columns"]]
    scored, again = tmp_path / "s.csv", tmp_path / "s2.csv"
    assert run(["predict", out, tmp_path / "t.parquet", "-o", scored], capsys)[0] == 0
    assert run(["predict", out, scored, "-o", again], capsys)[0] == 0
    assert np.array_equal(pd.read_csv(scored)["prediction"], pd.read_csv(again)["prediction"])


def test_models_of_two_tasks_are_refused_before_the_table_is_read(tmp_path):
    """``--models linear logistic_l2`` was refused only once the table was read and its task inferred."""
    result = cli("train", tmp_path / "not-yet-written.csv", "--target", "y", "--models", "linear", "logistic_l2")
    assert result.returncode == 2 and "no one task has all of them (regression: linear; classification: " \
        "logistic_l2)" in result.stderr, result.stderr
    assert "not-yet-written" not in result.stderr  # the options are checked first


def test_lokys_resource_tracker_writes_its_errors_nowhere_and_the_process_still_does():
    """loky's resource tracker printed a traceback (KeyError in its own main: a joblib bug) in the middle of
    train's progress on nycflights13's 100,000-row rung. It is started with its standard error on /dev/null; the
    process's own stays where it was. A fresh process: this one's tracker may be running already."""
    script = ("import os, sys\n"
              "from mlkiln import workers\n"
              "workers.start(2)\n"
              "from joblib.externals.loky.backend import resource_tracker\n"
              "pid = resource_tracker._resource_tracker._pid\n"
              "print(os.readlink(f'/proc/{pid}/fd/2'))\n"
              "print('still here', file=sys.stderr)\n"
              "workers._state['thread'].join(); workers.stop()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [os.devnull] and "still here" in done.stderr


def test_codes_that_arrive_as_numbers_are_the_training_categories(tmp_path, capsys):
    """A text column of codes ("1", "2", "3", and "unk") scored on rows without "unk": a CSV reads the digits as
    numbers (a gap makes them floats), a frame or Parquet file may hold 3.0, JSON sends 3. Each is its training
    category: the same predictions as the codes given as text, no "unseen" warning, and drift sees no new
    categories. (They were "3.0": every code unseen, accuracy near the majority class's.) So is a flag with a third
    value ("true", "false", "unknown") that a batch without "unknown" reads as booleans."""
    rng = np.random.default_rng(4)
    frame = table(400, seed=4).drop(columns="y")
    frame["code"] = rng.choice(["1", "2", "3", "unk"], size=400, p=[0.3, 0.3, 0.3, 0.1])
    frame["flag"] = rng.choice(["true", "false", "unknown"], size=400)
    frame["label"] = np.where((frame["code"] == "2") | (frame["flag"] == "true"), "yes", frame["label"])
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "label", "--models", "logistic_l2")
    assert code == 0, err
    rows = frame[(frame["code"] != "unk") & (frame["flag"] != "unknown")].head(60).copy()
    rows.iloc[0, rows.columns.get_loc("code")] = None  # a gap: pandas reads the column as floats
    new_csv = write(tmp_path / "new.csv", rows.drop(columns="label"))
    assert pd.read_csv(new_csv)["code"].dtype == "float64" and pd.read_csv(new_csv)["flag"].dtype == bool
    model = mlkiln.load(out)
    expected = model.predict(rows.drop(columns="label"))  # the codes as text
    assert (expected[(rows["code"].eq("2") | rows["flag"].eq("true")).to_numpy()] == "yes").all()
    as_floats = rows.drop(columns="label").astype({"code": "float64"}).assign(flag=rows["flag"].eq("true"))
    np.testing.assert_array_equal(model.predict(as_floats), expected)
    as_floats.to_parquet(tmp_path / "new.parquet")
    for source in (new_csv, tmp_path / "new.parquet"):
        code, _, err = run(["predict", out, source, "-o", tmp_path / f"{source.stem}-{source.suffix[1:]}.csv"], capsys)
        assert code == 0 and "not seen in training" not in err, err
        np.testing.assert_array_equal(pd.read_csv(tmp_path / f"{source.stem}-{source.suffix[1:]}.csv")["prediction"],
                                      expected)
    code, _, err = run(["evaluate", out, write(tmp_path / "labelled.csv", rows)], capsys)
    assert code == 0 and "not seen in training" not in err, err
    code, _, err = run(["drift", out, new_csv, "-o", tmp_path / "drift.html"], capsys)
    assert code == 0, err
    drift = {c["name"]: c for c in json.loads((tmp_path / "drift.json").read_text())["columns"]}
    assert drift["flag"]["unseen"] == 0 and drift["code"]["unseen"] == 0 and drift["code"]["new"][drift["code"]["bins"].index("2")] > 0.2
    record = {"x": 0.5, "z": 0.0, "colour": "red", "flag": False}
    answers = [model.predict_record({**record, "code": value}) for value in ("2", 2, 2.0, np.float64(2.0))]
    assert all(answer == answers[0] for answer in answers) and answers[0]["prediction"] == "yes"
    assert model.predict_record({**record, "code": 1, "flag": True}) == model.predict_record({**record, "code": "1",
                                                                                              "flag": "true"})


def test_now_a_lone_ambiguous_comma_and_a_decimal_are_read_as_one_record_reads_them(tmp_path, capsys):
    """"now" and "today" are no dates (pandas read them as the moment of reading: a prediction that changed every
    second); a batch whose only commas are "1,353" where training saw none is refused, as one record is (it read as
    1353 where training's values were about 1), unless another value says which comma it is; a Parquet decimal's
    value in a record is its number, as in a frame."""
    import decimal

    frame = table(200).drop(columns="label")
    frame["when"] = pd.date_range("2020-01-01", periods=200, freq="D").strftime("%Y-%m-%d")
    code, err, out = train(tmp_path, capsys, write(tmp_path / "t.csv", frame), "y", "--models", "ridge")
    assert code == 0, err
    model = mlkiln.load(out)
    record = {"x": 0.5, "z": 0.0, "colour": "red", "when": "2020-03-01"}
    for word in ("now", "Today"):
        with pytest.raises(InputError, match=f"column 'when' expects a date/time, got '{word}'"):
            model.predict_record({**record, "when": word})
        new = write(tmp_path / "new.csv", pd.DataFrame([{**record, "when": word}]))
        code, _, err = run(["predict", out, new, "-o", tmp_path / "scored.csv"], capsys)
        assert code == 2 and f"got '{word}' in row 1" in err and not (tmp_path / "scored.csv").exists()
    lone = pd.DataFrame([{**record, "x": "1,353"}, {**record, "x": "0.5"}])
    with pytest.raises(InputError, match=r"column 'x': '1,353' in row 1 could be 1353 or 1.353"):
        model.predict(lone)
    with pytest.raises(InputError, match=r"could be 1353 or 1.353"):
        model.predict_record(lone.iloc[0].to_dict())
    told = pd.DataFrame([{**record, "x": "1,353"}, {**record, "x": "0,5"}])  # "0,5": decimal commas
    np.testing.assert_allclose(model.predict(told), model.predict(told.assign(x=[1.353, 0.5])), rtol=1e-12)
    assert model.predict_record({**record, "x": decimal.Decimal("0.25")}) == model.predict_record({**record, "x": 0.25})


def test_quoted_values_holding_line_breaks_are_read_whole_across_pyarrows_blocks(tmp_path):
    # notes exported with their line breaks (quoted, as CSV writes them): pyarrow reads a file in blocks of 1 MB,
    # and a block ending inside such a value silently made a row of its pieces (no error)
    from mlkiln.data import read_table

    rng = np.random.default_rng(0)
    n = 40_000
    frame = pd.DataFrame({"note": [f"called back, {i}\n\"left a message\"\nno answer" for i in range(n)],
                          "kind": rng.choice(["a", "b"], n), "x": rng.normal(size=n).round(6)})
    path = tmp_path / "notes.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > 2 * 2**20
    read = read_table(path)
    pd.testing.assert_frame_equal(read.astype({"note": object, "kind": object}),
                                  frame.astype({"note": object, "kind": object}), check_dtype=False)
