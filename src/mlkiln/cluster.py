"""Connect to Dask: the one place that knows scheduler addresses, timeouts and local clusters.

Training's cross-validation fits (:mod:`mlkiln.tuning`) and the scoring of
partitioned datasets (:mod:`mlkiln.scoring`) both run through :func:`dask_client`.
"""

from __future__ import annotations

import contextlib
import logging
import os

from .errors import InputError, require

log = logging.getLogger("mlkiln")

#: seconds to wait for a Dask scheduler before giving up
CONNECT_TIMEOUT = 10
#: environment variable naming the scheduler when ``--cluster`` is not given
SCHEDULER_ENV = "MLKILN_DASK_SCHEDULER"


def scheduler_address(cluster: str | None) -> str | None:
    """``cluster``, else ``$MLKILN_DASK_SCHEDULER``, else ``None`` (this machine only)."""
    return cluster or os.environ.get(SCHEDULER_ENV) or None


def named_by(cluster: str | None) -> str:
    """Who named the scheduler, for a message: ``--cluster``, or the environment variable."""
    return "--cluster" if cluster else f"{SCHEDULER_ENV} (set in the environment)"


def check_dask(cluster: str | None) -> str | None:
    """:func:`scheduler_address`, once Dask is known to be installed where one is named: said before any data is
    read, not after."""
    address = scheduler_address(cluster)
    if address is not None:
        require("distributed", "dask", f"{named_by(cluster)}: a Dask cluster")
    return address


@contextlib.contextmanager
def dask_client(address: str, cores: int, purpose: str = "CV fits"):
    """A distributed.Client on ``address``, or on a new LocalCluster of ``cores`` one-thread workers.

    Raises
    ------
    InputError
        When Dask is not installed or the scheduler does not answer within
        :data:`CONNECT_TIMEOUT` seconds.
    """
    distributed = require("distributed", "dask", "a Dask cluster")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    if address == "local":
        with LocalCluster(n_workers=cores, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
            log.info("dask: started a local cluster of %d workers (%s)", cores, cluster.scheduler_address)
            yield client
        return
    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT}s; is it running?") from exc
    with client:
        log.info("dask: %s run on %s (%d workers)", purpose, address, len(client.scheduler_info().get("workers", {})))
        yield client
