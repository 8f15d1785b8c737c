"""What a running service counts, for ``GET /metrics`` in Prometheus' text format.

One service process counts in plain numbers (no lock: it counts on its one
event-loop thread) and hands them to prometheus-client as metric families when
``/metrics`` is scraped; several worker processes use prometheus-client's own
``Counter`` and ``Histogram``, whose values live in files the workers share.
Either way the exposition format is the maintained library's. Series:

``mlkiln_requests_total{endpoint, status}``
    Requests answered; paths that are not endpoints count as ``other``.
``mlkiln_request_duration_seconds{endpoint}``
    Histogram of the time from the request's arrival to the response sent.
``mlkiln_rows_scored_total``
    Records predicted.
``mlkiln_unseen_categories_total{column}``, ``mlkiln_out_of_range_values_total{column}``
    Values of scored records that the training profile never saw: a category
    outside the training categories, a number (or date) outside the training
    minimum and maximum. The same rules as ``mlkiln drift``, one record at a time.

The hot path is a few counter increments on children resolved once, here
(``labels()`` costs more than the increment itself); see ``benchmarks/RESULTS.md``.

Several workers (``mlkiln serve --workers N``) share counts through
prometheus-client's multiprocess mode: :func:`multiprocess_directory` gives
the workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` (or uses the one set), and
each worker's ``/metrics`` answers with the sum over all of them.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np

from .errors import require

#: latency buckets in seconds: predictions take microseconds, a loaded service milliseconds
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def _client():
    return require("prometheus_client", "serve", "GET /metrics")


class Monitor:
    """The service's counters, and their exposition.

    Parameters
    ----------
    profile : dict or None
        The bundle's training profile (:func:`mlkiln.drift.training_profile`);
        without one (a bundle made before profiles) there are no per-column counters.
    endpoints : iterable of str
        The paths that are endpoints; others are counted as ``other``.
    """

    def __init__(self, profile: dict | None, endpoints):
        client = _client()
        from prometheus_client import multiprocess

        registry = client.CollectorRegistry(auto_describe=False)
        shared = bool(os.environ.get(_MULTIPROC))
        if shared:  # prometheus-client's own values: they live in files the worker processes share
            def counter(name, doc, labels=()):
                return client.Counter(name, doc, list(labels), registry=registry)

            def histogram(name, doc, labels):
                return client.Histogram(name, doc, list(labels), buckets=BUCKETS, registry=registry)
        else:  # one process: plain numbers, turned into prometheus-client's metric families when scraped
            plain: list[_Plain] = []
            registry.register(_Collector(plain))

            def counter(name, doc, labels=()):
                plain.append(_Plain("counter", name, doc, labels))
                # an unlabelled family is its own one child, as prometheus-client's is
                return plain[-1] if labels else plain[-1].labels()

            def histogram(name, doc, labels):
                plain.append(_Plain("histogram", name, doc, labels))
                return plain[-1]
        self._requests = counter("mlkiln_requests", "HTTP requests answered, by endpoint and status",
                                 ["endpoint", "status"])
        latency = histogram("mlkiln_request_duration_seconds", "Time to answer a request, by endpoint", ["endpoint"])
        self._rows = counter("mlkiln_rows_scored", "Records predicted")
        unseen = counter("mlkiln_unseen_categories", "Scored values in a category training never saw", ["column"])
        outside = counter("mlkiln_out_of_range_values", "Scored values outside the training minimum and maximum",
                          ["column"])
        self._endpoints = {path: path for path in endpoints}
        self._latency = {path: latency.labels(path) for path in [*self._endpoints, "other"]}
        self._pairs: dict = {}
        self._categories, self._ranges = [], []
        for name, spec in (profile or {}).get("columns", {}).items():
            if spec["kind"] == "categorical" and spec["n_categories"] <= len(spec["categories"]):
                self._categories.append((name, frozenset(spec["categories"]), unseen.labels(name)))
            elif spec["kind"] != "categorical" and spec["min"] is not None:
                self._ranges.append((name, spec["min"], spec["max"], outside.labels(name)))
        self.content_type = client.CONTENT_TYPE_LATEST
        self._generate = client.generate_latest
        if shared:
            self._exposed = client.CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)
        else:
            self._exposed = registry

    def request(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request: one dict lookup on the hot path."""
        pair = self._pairs.get((path, status))
        if pair is None:
            pair = self._pair(path, status)
        pair[0].inc()
        pair[1].observe(seconds)

    def _pair(self, path: str, status: int) -> tuple:
        """The count and latency children of ``(path, status)``, cached only for endpoints.

        Any other path counts as ``other`` uncached, so a client probing
        random paths cannot grow the cache.
        """
        endpoint = self._endpoints.get(path, "other")
        pair = self._pairs.get((endpoint, status))
        if pair is None:
            pair = self._pairs[endpoint, status] = (self._requests.labels(endpoint, str(status)),
                                                    self._latency[endpoint])
        return pair

    def watch(self, row: dict) -> None:
        """Count the unseen categories and out-of-range values of one conformed record."""
        for name, known, child in self._categories:
            value = row[name]
            if value.__class__ is str and value not in known:  # NaN (missing) is neither
                child.inc()
        for name, low, high, child in self._ranges:
            value = row[name]
            if value < low or value > high:  # False for NaN
                child.inc()

    def watch_frame(self, X) -> None:
        """Count the unseen categories and out-of-range values of a conformed DataFrame (``POST /invocations``).

        The rules are :meth:`watch`'s. A text column is checked value by
        value, as there: pandas' ``isin`` and ``notna`` cost about 460 us a
        request for diamonds' three, more than checking a few hundred values.
        """
        for name, known, child in self._categories:
            unseen = sum(value.__class__ is str and value not in known for value in X[name].to_numpy(dtype=object))
            if unseen:
                child.inc(unseen)
        for name, low, high, child in self._ranges:
            values = X[name].to_numpy(dtype="float64")
            outside = int(np.count_nonzero((values < low) | (values > high)))
            if outside:
                child.inc(outside)

    def scored(self, rows: int) -> None:
        self._rows.inc(rows)

    def exposition(self) -> bytes:
        """Every series in Prometheus' text format (summed over worker processes in multiprocess mode)."""
        return self._generate(self._exposed)


class _Tally:
    """A counter in a plain int: the service counts on its one event-loop thread, so it needs no lock."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class _Buckets:
    """A latency histogram in plain numbers: a count per bucket of :data:`BUCKETS` (and +Inf), and the sum."""

    __slots__ = ("counts", "sum")

    def __init__(self):
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1  # a bucket holds values <= its bound
        self.sum += seconds


class _Plain:
    """A metric family counted in plain numbers, with prometheus-client's ``labels()`` / ``inc()`` interface."""

    def __init__(self, kind: str, name: str, doc: str, labels=()):
        self.kind, self.name, self.doc, self.labelnames = kind, name, doc, list(labels)
        self.children: dict[tuple, _Tally | _Buckets] = {}

    def labels(self, *values: str):
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = _Buckets() if self.kind == "histogram" else _Tally()
        return child

    def family(self, core):
        """This family in prometheus-client's exposition types."""
        from prometheus_client.utils import floatToGoString  # bounds written as Prometheus writes them

        if self.kind == "counter":
            family = core.CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
            for values, child in self.children.items():
                family.add_metric(list(values), child.value)
            return family
        family = core.HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
        bounds = [*map(floatToGoString, BUCKETS), "+Inf"]
        for values, child in self.children.items():
            family.add_metric(list(values), list(zip(bounds, itertools.accumulate(child.counts))), child.sum)
        return family


class _Collector:
    """Hands the plain families to prometheus-client's registry, which writes the text format."""

    def __init__(self, families: list[_Plain]):
        self.families = families

    def collect(self):
        from prometheus_client import metrics_core

        for family in self.families:
            yield family.family(metrics_core)


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A ``PROMETHEUS_MULTIPROC_DIR`` for the worker processes: the one set, or a fresh one removed at the end.

    Set it before the workers start: prometheus-client decides at import
    whether its values live in memory or in files shared by the processes.
    """
    if os.environ.get(_MULTIPROC):
        yield os.environ[_MULTIPROC]
        return
    path = tempfile.mkdtemp(prefix="mlkiln-metrics-")
    os.environ[_MULTIPROC] = path
    try:
        yield path
    finally:
        del os.environ[_MULTIPROC]
        shutil.rmtree(path, ignore_errors=True)
