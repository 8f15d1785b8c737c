"""Scoring a partitioned dataset on a real Dask LocalCluster: same scores as one process, clear failures."""

import shutil
import time

import pandas as pd
import pytest
from common import copy_bundle

import mlkiln
from mlkiln import cluster as dask_cluster
from mlkiln import data
from mlkiln.data import read_table
from mlkiln.errors import InputError
from mlkiln.scoring import predict_path

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture
def parts(diamonds, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(5):
        data.write_table(diamonds.iloc[i * 600:(i + 1) * 600], folder / f"p{i}.parquet")
    return folder


@pytest.mark.parametrize("name", ["diamonds_bundle", "bagged_bundle"])
def test_cluster_scores_equal_local_scores_without_the_bundle(request, name, parts, scheduler, tmp_path):
    bundle = copy_bundle(request.getfixturevalue(name), tmp_path)
    model = mlkiln.load(bundle)
    shutil.rmtree(bundle)  # workers get the verified model from the client, never the path
    out = tmp_path / "scored"
    assert predict_path(model, str(parts / "*.parquet"), out, cluster=scheduler) == 3000
    assert sorted(p.name for p in out.iterdir()) == [f"part-0000{i}.parquet" for i in range(5)]
    local = tmp_path / "local.parquet"
    predict_path(model, parts, local)
    pd.testing.assert_frame_equal(read_table(out), read_table(local), rtol=1e-12, atol=0)


def test_scheduler_from_environment(diamonds_bundle, parts, scheduler, tmp_path, monkeypatch):
    monkeypatch.setenv("MLKILN_DASK_SCHEDULER", scheduler)
    out = tmp_path / "scored"
    predict_path(mlkiln.load(diamonds_bundle), parts / "p0.parquet", out)
    assert [p.name for p in out.iterdir()] == ["part-00000.parquet"]


def test_bad_value_in_a_partition_names_file_and_row(diamonds_bundle, diamonds, parts, scheduler, tmp_path):
    bad = diamonds.iloc[:600].astype({"depth": object})
    bad.iloc[41, bad.columns.get_loc("depth")] = "deep"
    (parts / "p3.parquet").unlink()
    bad.to_csv(parts / "p3.csv", index=False)
    out = tmp_path / "scored"
    with pytest.raises(InputError, match=r"p3\.csv: column 'depth' expects a number, got 'deep' in row 42"):
        predict_path(mlkiln.load(diamonds_bundle), parts, out, cluster=scheduler)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


def test_unreachable_scheduler_fails_fast(diamonds_bundle, parts, tmp_path, monkeypatch):
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 2)
    started = time.perf_counter()
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        predict_path(mlkiln.load(diamonds_bundle), parts, tmp_path / "scored", cluster="tcp://127.0.0.1:9")
    assert time.perf_counter() - started < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]


def test_cluster_output_must_be_a_directory(diamonds_bundle, parts, scheduler, tmp_path):
    with pytest.raises(InputError, match="give -o a directory"):
        predict_path(mlkiln.load(diamonds_bundle), parts, tmp_path / "scored.parquet", cluster=scheduler)


def test_unseen_values_scored_on_worker_processes_are_said_by_the_client(diamonds_bundle, parts, tmp_path, caplog):
    """A worker's warnings reach its own stderr, not the user's: the client says them, with their total."""
    import logging

    for i in (1, 3):  # two parts, 600 rows each, a cut never seen in training in every third row
        frame = read_table(parts / f"p{i}.parquet")
        frame.loc[frame.index[::3], "cut"] = "Sublime"
        data.write_table(frame, parts / f"p{i}.parquet")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            caplog.at_level(logging.WARNING, logger="mlkiln"):
        assert predict_path(mlkiln.load(diamonds_bundle), parts, tmp_path / "scored", cluster=c.scheduler_address) == 3000
    assert "'cut': 200 value(s) not seen in training (e.g. 'Sublime')" in caplog.text
    assert "'cut': 400 value(s) not seen in training in all the rows scored" in caplog.text


def test_unseen_values_on_worker_threads_are_counted_once(diamonds_bundle, parts, scheduler, tmp_path, caplog):
    import logging

    frame = read_table(parts / "p2.parquet")
    frame.loc[frame.index[::2], "cut"] = "Sublime"
    data.write_table(frame, parts / "p2.parquet")
    with caplog.at_level(logging.WARNING, logger="mlkiln"):
        predict_path(mlkiln.load(diamonds_bundle), parts, tmp_path / "scored", cluster=scheduler)
    assert caplog.text.count("not seen in training") == 1 and "'cut': 300 value(s)" in caplog.text
