"""Tests of the bundled examples: the diamonds table, the real AI4I 2020 table and its generator.

The generator is checked against the published construction of AI4I 2020 and
its published statistics only, never against its own past output; the real
table against the facts in its attribution file.
"""

import math
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlkiln.errors import MlkilnError
from mlkiln.examples import EXAMPLES, load_example
from mlkiln.synthetic import make_machine_failure

from common import cli

COLUMNS = [
    "UDI",
    "Product ID",
    "Type",
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
    "Machine failure",
    "TWF",
    "HDF",
    "PWF",
    "OSF",
    "RNF",
]
FLAGS = ["TWF", "HDF", "PWF", "OSF", "RNF"]
PUBLISHED_COUNTS = {"TWF": 51, "HDF": 115, "PWF": 95, "OSF": 98}  # per 10,000 rows
WEAR_PER_PROCESS = {"L": 2, "M": 3, "H": 5}
OVERSTRAIN_LIMIT = {"L": 11_000, "M": 12_000, "H": 13_000}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_machine_failure(seed=0)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_loads_with_its_target_and_drops(name):
    frame = load_example(name)
    assert EXAMPLES[name].target in frame.columns
    assert set(EXAMPLES[name].drop) <= set(frame.columns)
    assert len(frame) > 1000


def test_examples_targets_and_drops():
    assert {name: e.target for name, e in EXAMPLES.items()} == {
        "diamonds": "price", "machine-failure": "Machine failure", "machine-failure-synthetic": "Machine failure"}
    assert EXAMPLES["diamonds"].drop == {}
    for name in ("machine-failure", "machine-failure-synthetic"):
        assert list(EXAMPLES[name].drop) == ["RNF"]
        assert "known only after the outcome" in EXAMPLES[name].drop["RNF"]


def test_machine_failure_is_the_real_ai4i_table():
    frame = load_example("machine-failure")
    assert frame.shape == (10_000, 14)
    assert list(frame.columns) == COLUMNS
    assert (frame["UDI"].to_numpy() == np.arange(1, 10_001)).all()
    assert frame.loc[0, "Product ID"] == "M14860" and frame.loc[1, "Product ID"] == "L47181"
    assert frame["Machine failure"].sum() == 339
    assert frame[FLAGS].sum().to_dict() == {"TWF": 46, "HDF": 115, "PWF": 95, "OSF": 98, "RNF": 19}
    assert frame["Type"].value_counts().to_dict() == {"L": 6000, "M": 2997, "H": 1003}
    assert frame["Rotational speed [rpm]"].agg(["min", "max"]).tolist() == [1168, 2886]
    assert frame["Tool wear [min]"].agg(["min", "max"]).tolist() == [0, 253]
    # the published table's two known inconsistencies
    assert ((frame["RNF"] == 1) & (frame["Machine failure"] == 0)).sum() == 18
    assert ((frame[FLAGS].max(axis=1) == 0) & (frame["Machine failure"] == 1)).sum() == 9


def test_ai4i_attribution_ships_beside_the_data_and_in_the_readme():
    data = files("mlkiln") / "data"
    assert (data / "ai4i2020.csv.gz").is_file()
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for text in ((data / "AI4I.md").read_text(), readme):
        for fact in ("AI4I 2020 Predictive Maintenance Dataset", "Matzka", "10.24432/C5HS5C", "CC BY 4.0"):
            assert fact in text, fact


def test_rows_only_for_the_generated_example():
    with pytest.raises(MlkilnError, match="'machine-failure' is a fixed table; only machine-failure-synthetic"):
        load_example("machine-failure", rows=100)
    assert len(load_example("machine-failure-synthetic", rows=123)) == 123


def test_the_cli_names_its_rows_flag(tmp_path):
    from common import cli

    done = cli("example", "machine-failure", "--rows", "10", "-o", tmp_path / "x.csv")
    assert done.returncode == 2 and "error: --rows 10: example 'machine-failure' is a fixed table" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_cli_writes_the_generated_example_with_rows(tmp_path):
    out = tmp_path / "big.csv"
    result = cli("example", "machine-failure-synthetic", "--rows", "20000", "--seed", "4", "-o", out)
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out), make_machine_failure(n_rows=20_000, seed=4), check_dtype=False)


def test_diamonds_is_the_full_table_with_string_categories():
    frame = load_example("diamonds")
    assert frame.shape == (53_940, 10)
    assert list(frame.columns) == ["carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    for column in ["cut", "color", "clarity"]:
        assert pd.api.types.is_string_dtype(frame[column])
        assert not isinstance(frame[column].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_integer_dtype(frame["price"])
    assert set(frame["cut"]) == {"Fair", "Good", "Very Good", "Premium", "Ideal"}


def test_unknown_example_raises_listing_valid_names():
    with pytest.raises(MlkilnError, match="diamonds, machine-failure, machine-failure-synthetic"):
        load_example("iris")


def test_load_example_passes_seed_and_rows_to_the_generator():
    pd.testing.assert_frame_equal(load_example("machine-failure-synthetic", seed=3), make_machine_failure(seed=3))
    pd.testing.assert_frame_equal(load_example("machine-failure-synthetic", seed=3, rows=500),
                                  make_machine_failure(n_rows=500, seed=3))
    assert load_example("machine-failure", seed=3).equals(load_example("machine-failure"))


@pytest.mark.parametrize("n_rows", [1, 10**6])
def test_out_of_range_row_count_raises(n_rows):
    with pytest.raises(MlkilnError, match=f"rows={n_rows}: must be between 2 and 52,820"):
        load_example("machine-failure-synthetic", rows=n_rows)
    # the command line names its flag, as for every other argument
    done = subprocess.run([sys.executable, "-m", "mlkiln", "example", "machine-failure-synthetic", "--rows",
                           str(n_rows), "-o", "-"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"mlkiln: error: --rows {n_rows}: must be between 2 and 52,820"), done.stderr


def test_small_tables_keep_the_layout():
    frame = make_machine_failure(n_rows=50, seed=7)
    assert frame.shape == (50, 14)
    assert list(frame.columns) == COLUMNS


def test_shape_columns_and_dtypes(table):
    assert table.shape == (10_000, 14)
    assert list(table.columns) == COLUMNS
    for column in ["UDI", "Rotational speed [rpm]", "Tool wear [min]", "Machine failure", *FLAGS]:
        assert table[column].dtype == np.int64, column
    for column in ["Air temperature [K]", "Process temperature [K]", "Torque [Nm]"]:
        tenths = table[column].to_numpy() * 10
        np.testing.assert_allclose(tenths, np.round(tenths), atol=1e-6, err_msg=column)
    for column in FLAGS + ["Machine failure"]:
        assert set(table[column]) <= {0, 1}


def test_same_seed_same_table_other_seed_other_table(table):
    pd.testing.assert_frame_equal(make_machine_failure(seed=0), table)
    assert not make_machine_failure(seed=1).equals(table)


def test_identifiers(table):
    assert (table["UDI"].to_numpy() == np.arange(1, 10_001)).all()
    ids = table["Product ID"]
    assert ids.str.fullmatch(r"[LMH]\d{5}").all()
    assert ids.is_unique
    assert (ids.str[0] == table["Type"]).all()


def test_type_shares(table):
    shares = table["Type"].value_counts(normalize=True)
    for variant, share in {"L": 0.5, "M": 0.3, "H": 0.2}.items():
        assert abs(shares[variant] - share) <= 0.02, variant


def test_temperatures(table):
    air = table["Air temperature [K]"]
    assert abs(air.mean() - 300) <= 1
    assert 1.5 <= air.std() <= 2.5
    difference = table["Process temperature [K]"] - air
    assert abs(difference.mean() - 10) <= 0.5
    assert 0.5 <= difference.std() <= 1.5


def test_speed_and_torque(table):
    speed, torque = table["Rotational speed [rpm]"], table["Torque [Nm]"]
    assert abs(speed.mean() - 1539) <= 40
    assert abs(speed.std() - 179) <= 30
    assert speed.corr(torque) < -0.8
    assert (torque >= 0).all()
    assert abs(torque.mean() - 40) <= 1
    assert abs(torque.std() - 10) <= 1


def test_tool_wear_accumulates_and_resets(table):
    wear = table["Tool wear [min]"].to_numpy()
    assert wear.min() >= 0 and wear.max() <= 253
    assert wear[0] == 0
    step = np.diff(wear)
    added = table["Type"].map(WEAR_PER_PROCESS).to_numpy()[:-1]
    new_tool = wear[1:] == 0
    assert ((step == added) | new_tool).all()
    # A tool ends at a wear of 200-240 min (plus at most one process's wear).
    ends = wear[:-1][new_tool]
    assert ends.min() >= 200 and ends.max() < 245
    assert 90 <= new_tool.sum() <= 160


def test_tool_wear_failures_end_a_tool(table):
    twf = table["TWF"].to_numpy().astype(bool)
    wear = table["Tool wear [min]"].to_numpy()
    assert (wear[twf] >= 200).all()
    followed = twf[:-1]
    assert (wear[1:][followed] == 0).all()


def test_heat_dissipation_rule_holds_exactly(table):
    rule = (table["Process temperature [K]"] - table["Air temperature [K]"] < 8.6) & (
        table["Rotational speed [rpm]"] < 1380
    )
    assert (table["HDF"] == rule.astype(int)).all()


def test_power_rule_holds_exactly(table):
    power = table["Torque [Nm]"] * table["Rotational speed [rpm]"] * 2 * np.pi / 60
    rule = (power < 3500) | (power > 9000)
    assert (table["PWF"] == rule.astype(int)).all()


def test_overstrain_rule_holds_exactly(table):
    limit = table["Type"].map(OVERSTRAIN_LIMIT)
    rule = table["Tool wear [min]"] * table["Torque [Nm]"] > limit
    assert (table["OSF"] == rule.astype(int)).all()


def test_machine_failure_is_any_mode(table):
    assert (table["Machine failure"] == table[FLAGS].max(axis=1)).all()
    assert 0.025 <= table["Machine failure"].mean() <= 0.045


@pytest.mark.parametrize("seed", range(5))
def test_mode_counts_near_published(seed):
    frame = make_machine_failure(seed=seed)
    for mode, published in PUBLISHED_COUNTS.items():
        assert abs(frame[mode].sum() - published) <= 0.4 * published, mode
    # RNF is the published 0.1 % per process: a Poisson count around 10.
    assert abs(frame["RNF"].sum() - 10) <= 3 * math.sqrt(10)
    assert 0.025 <= frame["Machine failure"].mean() <= 0.045


def test_write_table_is_all_or_nothing(tmp_path):
    """A write that fails half-way (a full disk, here a value that cannot be written) leaves the old file as it was."""
    from mlkiln.data import write_table

    class Unwritable:
        def __str__(self):
            raise OSError("No space left on device")

    path = tmp_path / "table.csv"
    path.write_text("id,precious\n1,2\n")
    frame = pd.DataFrame({"a": range(5000), "b": ["x"] * 4999 + [Unwritable()]})
    with pytest.raises(OSError, match="No space"):
        write_table(frame, path)
    assert path.read_text() == "id,precious\n1,2\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    write_table(frame.head(3), path)
    assert pd.read_csv(path)["a"].tolist() == [0, 1, 2]


def test_write_all_atomic_writes_every_file_or_none(tmp_path):
    """A report is its HTML and its JSON: a failure on the second (a full disk) must not leave the first new."""
    from mlkiln.atomic import write_all_atomic

    old = {tmp_path / "r.json": b"old json", tmp_path / "r.html": b"old html"}
    for path, content in old.items():
        path.write_bytes(content)

    with pytest.raises(OSError):  # the second file cannot be written (here: its name is too long for the disk)
        write_all_atomic({tmp_path / "r.json": b"new json", tmp_path / ("r" * 300 + ".html"): b"new html"})
    assert {p: p.read_bytes() for p in old} == old and sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.json"]
    write_all_atomic({tmp_path / "r.json": b"new json", tmp_path / "r.html": b"new html"})
    assert (tmp_path / "r.json").read_bytes() == b"new json" and (tmp_path / "r.html").read_bytes() == b"new html"


def test_the_readme_names_the_card_version_bundles_get():
    from mlkiln.card import CARD_VERSION

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert re.findall(r'"card_version": (\d+)', readme) == [str(CARD_VERSION)]
