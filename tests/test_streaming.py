"""Streaming predict: batch by batch, the same values as the whole-file read, nothing left behind on failure."""

import logging

import numpy as np
import pandas as pd
import pytest
from common import cli

import mlkiln
from mlkiln import data, scoring
from mlkiln.data import read_table
from mlkiln.errors import InputError
from mlkiln.predict import predict_file
from mlkiln.schema import UNSEEN_VALUES


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few hundred rows, so a test file spans many of them."""
    monkeypatch.setattr(data, "CSV_BLOCK_BYTES", 1 << 14)
    monkeypatch.setattr(data, "BATCH_ROWS", 500)


def _expected(bundle, path) -> pd.DataFrame:
    return mlkiln.load(bundle).predict_frame(read_table(path))


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12, atol=0)


@pytest.mark.parametrize("out_suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("in_suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("bundle_name", ["diamonds_bundle", "failure_bundle"])
def test_streamed_scores_equal_whole_file_scores(request, small_batches, tmp_path, bundle_name, in_suffix, out_suffix):
    bundle = request.getfixturevalue(bundle_name)
    source = request.getfixturevalue("diamonds" if bundle_name == "diamonds_bundle" else "failure_csv")
    # a part of the table is enough: 500-row batches span it either way
    frame = source if isinstance(source, pd.DataFrame) else pd.read_csv(source).head(4000)
    path = tmp_path / f"in{in_suffix}"
    data.write_table(frame, path)
    out = tmp_path / f"scored{out_suffix}"
    assert predict_file(bundle, path, out) == len(frame)
    _same(read_table(out), _expected(bundle, path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, out.name])


def test_first_block_unlike_later_blocks(diamonds_bundle, diamonds, small_batches, tmp_path, caplog):
    frame = diamonds.copy()
    frame["table"] = frame["table"].round()  # integers in every block ...
    frame.loc[2500, "table"] = 57.5  # ... but one: the whole-file read makes it float
    frame["note"] = np.where(frame.index < 2900, "1", "text later")  # a column the model ignores
    frame.loc[:1000, "depth"] = np.nan  # no value at all in the first blocks
    frame.loc[::10, "cut"] = "Sublime"  # unseen in training: counted once per row, not again for the pass re-read
    path = tmp_path / "drift.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "scored.parquet"
    with caplog.at_level(logging.INFO, logger="mlkiln"):
        predict_file(diamonds_bundle, path, out)
    assert "reading the input again" in caplog.text
    unseen = (frame["cut"] == "Sublime").sum()
    assert f"'cut': {unseen} value(s) not seen in training in all the rows scored" in caplog.text
    got, expected = read_table(out), _expected(diamonds_bundle, path)
    _same(got, expected)
    assert got["note"].iloc[0] == "1" and got["table"].dtype == np.float64


def test_bad_value_names_file_and_row_and_writes_nothing(diamonds_bundle, diamonds, small_batches, tmp_path):
    frame = diamonds.astype({"carat": object})
    frame.loc[2345, "carat"] = "heavy"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    with pytest.raises(InputError, match=r"bad\.csv: column 'carat' expects a number, got 'heavy' in row 2346"):
        predict_file(diamonds_bundle, path, out)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]


def test_memory_check_does_not_limit_predict(diamonds_bundle, diamonds_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("MLKILN_MAX_MEMORY", "64K")
    with pytest.raises(InputError, match="too large for the available memory"):
        read_table(diamonds_csv)
    assert predict_file(diamonds_bundle, diamonds_csv, tmp_path / "out.parquet") == 3000


def test_large_input_gets_progress_lines(diamonds_bundle, diamonds_csv, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(scoring, "LARGE_FILE_BYTES", 1)
    with caplog.at_level(logging.INFO, logger="mlkiln"):
        predict_file(diamonds_bundle, diamonds_csv, tmp_path / "out.csv")
    assert "in batches" in caplog.text and "rows/s" in caplog.text


def test_unseen_category_warned_once_not_per_batch(diamonds_bundle, diamonds, small_batches, tmp_path, caplog):
    frame = diamonds.assign(cut="Sublime")
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="mlkiln"):
        predict_file(diamonds_bundle, path, tmp_path / "out.csv")
    assert caplog.text.count("not seen in training") == 2  # the first batch's count, then the whole file's
    batches = [r.args[1] for r in caplog.records if r.msg == UNSEEN_VALUES]
    assert len(batches) == 1 and batches[0] < len(frame)
    assert f"'cut': {len(frame)} value(s) not seen in training in all the rows scored" in caplog.text
    caplog.clear()
    frame.head(batches[0]).to_csv(path, index=False)  # one batch: its count is the total, said once
    with caplog.at_level(logging.WARNING, logger="mlkiln"):
        predict_file(diamonds_bundle, path, tmp_path / "out.csv", force=True)
    assert caplog.text.count("not seen in training") == 1


@pytest.fixture
def parts(diamonds, tmp_path):
    """The diamonds sample as three Parquet files and one CSV file of one dataset."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, chunk in enumerate(diamonds.iloc[k:k + 750] for k in range(0, 3000, 750)):
        data.write_table(chunk, folder / (f"p{i}.csv" if i == 3 else f"p{i}.parquet"))
    return folder


def test_dataset_to_one_file_and_to_parts(diamonds_bundle, diamonds, parts, tmp_path):
    expected = mlkiln.load(diamonds_bundle).predict_frame(diamonds)
    one = tmp_path / "one.parquet"
    assert predict_file(diamonds_bundle, parts, one) == len(diamonds)
    _same(read_table(one), expected)
    folder = tmp_path / "scored"
    predict_file(diamonds_bundle, str(parts / "p*"), folder)
    assert sorted(p.name for p in folder.iterdir()) == [f"part-0000{i}.parquet" for i in range(4)]
    _same(read_table(folder), expected)


def test_dataset_errors_are_one_line_exit_2(diamonds_bundle, diamonds, parts, tmp_path):
    out = tmp_path / "out"
    result = cli("predict", diamonds_bundle, str(tmp_path / "nothing" / "*.parquet"), "-o", out)
    assert result.returncode == 2 and "no CSV or Parquet files match" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    data.write_table(diamonds.drop(columns="depth").head(10), parts / "p9.parquet")
    result = cli("predict", diamonds_bundle, parts, "-o", out)
    assert result.returncode == 2 and "p9.parquet does not have the columns of" in result.stderr
    assert "lacks ['depth']" in result.stderr
    (parts / "p9.parquet").unlink()
    out.mkdir()
    result = cli("predict", diamonds_bundle, parts, "-o", out)
    assert result.returncode == 2 and "already exists; pass --force" in result.stderr
    assert list(out.iterdir()) == []
    assert cli("predict", diamonds_bundle, parts, "-o", out, "--force").returncode == 0
    assert len(list(out.iterdir())) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]


def test_train_reads_a_glob_as_one_table(diamonds, parts, tmp_path):
    frame = read_table(parts / "*")
    pd.testing.assert_frame_equal(frame, diamonds, check_dtype=False)
    result = cli("train", str(parts / "p*"), "--target", "price", "--models", "linear", "-o", tmp_path / "m", "-q")
    assert result.returncode == 0, result.stderr
    data.write_table(diamonds.rename(columns={"x": "length"}).head(5), parts / "p5.parquet")
    with pytest.raises(InputError, match=r"p5\.parquet does not have the columns of .*p0\.parquet"):
        read_table(parts)


def test_output_may_not_replace_the_input(diamonds_bundle, parts):
    before = sorted(p.name for p in parts.iterdir())
    with pytest.raises(InputError, match="must not be, or hold, one of the input files"):
        predict_file(diamonds_bundle, parts, parts, force=True)
    with pytest.raises(InputError, match="must not be, or hold"):
        predict_file(diamonds_bundle, parts / "p3.csv", parts / "p3.csv")
    # nor join it: scored rows written inside the folder, or where the glob finds them, would be read next time
    for data, output in ((parts, parts / "scored.csv"), (parts, parts / "sub" / "scored"),
                         (str(parts / "p*"), parts / "p9.parquet"), (str(parts / "*"), parts / "scored")):
        with pytest.raises(InputError, match="is inside the dataset .* being read"):
            predict_file(diamonds_bundle, data, output)
    assert sorted(p.name for p in parts.iterdir()) == before
    # a file the glob does not match may be written beside the files it does, or below them, or hidden from it
    assert predict_file(diamonds_bundle, str(parts / "*.parquet"), parts / "scored.csv") == 2250
    (parts / "scored.csv").unlink()
    assert predict_file(diamonds_bundle, str(parts / "*.csv"), parts / "sub" / "scored.csv") == 750
    assert predict_file(diamonds_bundle, str(parts / "*.csv"), parts / "_scored.csv") == 750


def test_csv_output_writes_list_struct_and_bytes_columns_as_text(diamonds_bundle, diamonds, tmp_path):
    """A Parquet input's nested or binary columns (passed through, unused) stopped `predict -o x.csv` with ArrowInvalid."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = diamonds.drop(columns="price").head(50).reset_index(drop=True)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    table = table.append_column("tags", pa.array([[i, i + 1] for i in range(50)]))
    table = table.append_column("meta", pa.array([{"k": i} for i in range(50)]))
    table = table.append_column("raw", pa.array([bytes([i]) for i in range(50)]))
    source = tmp_path / "nested.parquet"
    pq.write_table(table, source)
    predict_file(diamonds_bundle, source, tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["tags"][3] == "[3, 4]" and written["meta"][3] == '{"k": 3}' and written["raw"][3] == "03"
    np.testing.assert_allclose(written["prediction"], mlkiln.load(diamonds_bundle).predict(rows), rtol=1e-12)
    for name in ("out.json", "out.csv.gz", "out.tsv", "out.txt"):  # each would promise a format it would not have
        with pytest.raises(InputError, match="neither .csv nor .parquet"):
            predict_file(diamonds_bundle, source, tmp_path / name)
        assert not (tmp_path / name).exists()


def test_an_empty_header_name_reads_as_in_training(tmp_path):
    """pandas calls an empty CSV header cell "Unnamed: i"; the streaming reader called it "", so a bundle trained
    on a file refused to score the same file (missing 'Unnamed: 1')."""
    path = tmp_path / "t.csv"
    path.write_text("a,,y,\n1,2,3,\n4,5,6,\n")
    streamed = pd.concat(batch.to_pandas() for batch in data.read_batches(path))
    assert list(streamed.columns) == list(read_table(path).columns) == ["a", "Unnamed: 1", "y", "Unnamed: 3"]


def test_a_duration_is_written_to_csv_in_seconds_so_the_output_scores_the_same_again(tmp_path):
    """mlkiln reads a duration as seconds; pyarrow's CSV writer wrote its count of microseconds, and scoring the
    output again read those as seconds (191 of 344 predictions changed on a table of penguins)."""
    rng = np.random.default_rng(0)
    seconds = rng.integers(30, 100_000, 300)
    frame = pd.DataFrame({"wait": pd.to_timedelta(seconds, unit="s"), "x": rng.normal(size=300)})
    frame["y"] = np.where(seconds > 50_000, "long", "short")
    frame.to_parquet(tmp_path / "t.parquet")
    bundle = tmp_path / "model"
    mlkiln.train(tmp_path / "t.parquet", target="y", models=["logistic_l2"]).save(bundle)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    assert cli("predict", bundle, tmp_path / "t.parquet", "-o", first).returncode == 0
    written = pd.read_csv(first)
    np.testing.assert_array_equal(written["wait"].to_numpy(), seconds.astype(float))
    assert cli("predict", bundle, first, "-o", second).returncode == 0
    again = pd.read_csv(second)
    assert (again["prediction"] == written["prediction"]).all()
    np.testing.assert_allclose(again["proba_long"], written["proba_long"], rtol=1e-9)
