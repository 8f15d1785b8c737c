"""The Dask backend: CV fits on a real (small, local) Dask cluster give the local run's model."""

import sys

import pytest

import mlkiln
from mlkiln import cluster as dask_cluster
from mlkiln.errors import MlkilnError

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    # worker processes: an in-process cluster shares its event loop with the client, and joblib's scatter races there
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def test_dask_run_finds_the_local_model(diamonds, cluster, monkeypatch):
    data = diamonds.head(600)
    local = mlkiln.train(data, target="price", models=["ridge", "hgb"], seed=3, trials=2)
    monkeypatch.setenv("MLKILN_DASK_SCHEDULER", cluster.scheduler_address)
    remote = mlkiln.train(data, target="price", models=["ridge", "hgb"], seed=3, trials=2)
    assert remote.card.tuning.dask and not local.card.tuning.dask
    assert remote.card.model == local.card.model
    assert remote.card.cv_results == local.card.cv_results
    assert remote.metrics["test"] == local.metrics["test"]


def test_unreachable_scheduler_is_one_clear_error(diamonds, monkeypatch):
    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1)
    with pytest.raises(MlkilnError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        mlkiln.train(diamonds.head(300), target="price", models=["linear"], cluster="tcp://127.0.0.1:9")


def test_missing_dask_is_one_clear_error(diamonds, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MlkilnError, match=r"pip install 'mlkiln\[dask\]'"):
        mlkiln.train(diamonds.head(300), target="price", models=["linear"], cluster="local")
