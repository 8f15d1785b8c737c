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

The hot path appends the request's latency to a list kept per endpoint and
status, and adds its rows to a plain number; the lists are folded into the
counters and histogram every :data:`FOLD_EVERY` requests and whenever
``/metrics`` is scraped, so a scrape always sees every request answered before
it. A record's drift check is one comparison per column, written out as one
expression (:func:`_record_check`), with the counting done only for a record
where one fails. See ``benchmarks/RESULTS.md``.

Several workers (``mlkiln serve --workers N``) share counts through
prometheus-client's multiprocess mode: :func:`multiprocess_directory` gives
the workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` (or uses the one set), and
each worker's ``/metrics`` answers with the sum over all of them.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np

from .errors import InputError, require

#: latency buckets in seconds: predictions take microseconds, a loaded service milliseconds
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
#: requests between two folds of the pending latencies into the histogram (one service process)
FOLD_EVERY = 1024


def _client():
    return require("prometheus_client", "serve", "GET /metrics")


def known_categories(profile: dict | None) -> dict[str, frozenset]:
    """Every training category of the text columns a training profile (:func:`mlkiln.drift.training_profile`)
    lists whole, at most :data:`mlkiln.drift.MAX_KNOWN` of them (the card lists the 100 most frequent): what tells
    a value unseen, in ``/metrics``' counts and in predict's warning."""
    return {name: frozenset(spec["categories"]) for name, spec in (profile or {}).get("columns", {}).items()
            if spec["kind"] == "categorical" and spec["n_categories"] <= len(spec["categories"])}


class Monitor:
    """The service's counters, and their exposition.

    Parameters
    ----------
    profile : dict or None
        The bundle's training profile (:func:`mlkiln.drift.training_profile`);
        without one (a bundle made before profiles) there are no per-column counters.
    endpoints : iterable of str
        The paths that are endpoints; others are counted as ``other``.
    columns : list of str, optional
        The keys of a conformed record in their order (the bundle's input
        schema; default: the profile's columns).
    """

    def __init__(self, profile: dict | None, endpoints, columns: list[str] | None = None):
        client = _client()
        from prometheus_client import multiprocess

        registry = client.CollectorRegistry(auto_describe=False)
        #: True when worker processes share the counts (prometheus-client's multiprocess mode)
        self.shared = shared = bool(os.environ.get(_MULTIPROC))
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
        self._latency = {path: _observe_all(latency.labels(path)) for path in [*self._endpoints, "other"]}
        self._pending: dict[tuple, _Pending] = {}
        # several processes fold every request at once: another worker's scrape cannot fold this one's
        self._fold_every = 1 if shared else FOLD_EVERY
        self.rows = 0
        self._known, self._bounds = [], []
        self._unseen_children, self._outside_children = {}, {}
        known = known_categories(profile)
        for name, spec in (profile or {}).get("columns", {}).items():
            if name in known:
                self._known.append((name, known[name]))
                self._unseen_children[name] = unseen.labels(name)
            elif spec["kind"] != "categorical" and spec["min"] is not None:
                self._bounds.append((name, spec["min"], spec["max"]))
                self._outside_children[name] = outside.labels(name)
        #: ``watch(record)``: count the unseen categories and out-of-range values of one conformed record
        #: (None when the profile has nothing to check)
        self.watch = (_record_check(list(columns or profile["columns"]), self._known, self._bounds, self._recount)
                      if self._known or self._bounds else None)
        self.content_type = client.CONTENT_TYPE_LATEST
        self._generate = client.generate_latest
        if shared:
            self._exposed = client.CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)
        else:
            self._exposed = registry

    def request(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request: one dict lookup and one append on the hot path."""
        pending = self._pending.get((path, status))
        if pending is None:
            pending = self._pending_for(path, status)
        pending.append(seconds)
        if len(pending) >= self._fold_every:
            self._fold(pending)

    def _pending_for(self, path: str, status: int) -> _Pending:
        """The pending latencies of ``(path, status)``, cached only for endpoints.

        Any other path counts as ``other`` uncached, so a client probing
        random paths cannot grow the cache.
        """
        endpoint = self._endpoints.get(path, "other")
        pending = self._pending.get((endpoint, status))
        if pending is None:
            pending = self._pending[endpoint, status] = _Pending(self._requests.labels(endpoint, str(status)),
                                                                 self._latency[endpoint])
        return pending

    def _fold(self, pending: _Pending) -> None:
        """Move pending latencies (and rows) into the counters prometheus-client exposes."""
        pending.counter.inc(len(pending))
        pending.observe_all(pending)
        pending.clear()
        if self.rows:
            self._rows.inc(self.rows)
            self.rows = 0

    def _recount(self, row: dict) -> None:
        """Count the unseen categories and out-of-range values of a record in which :attr:`watch` found one."""
        for name, known in self._known:
            if row[name] not in known:
                self._unseen(name, row[name])
        for name, low, high in self._bounds:
            if not low <= row[name] <= high:
                self._outside(name, row[name])

    def _unseen(self, name: str, value) -> None:
        if value.__class__ is str:  # NaN (missing) is no category
            self._unseen_children[name].inc()

    def _outside(self, name: str, value) -> None:
        if value == value:  # NaN (missing) is in no range
            self._outside_children[name].inc()

    def watch_frame(self, X) -> None:
        """Count the unseen categories and out-of-range values of a conformed DataFrame (``POST /invocations``).

        The rules are :meth:`watch`'s. A text column is checked value by
        value, as there: pandas' ``isin`` and ``notna`` cost about 460 us a
        request for diamonds' three, more than checking a few hundred values.
        """
        for name, known in self._known:
            unseen = sum(value.__class__ is str and value not in known for value in X[name].to_numpy(dtype=object))
            if unseen:
                self._unseen_children[name].inc(unseen)
        for name, low, high in self._bounds:
            values = X[name].to_numpy(dtype="float64")
            outside = int(np.count_nonzero((values < low) | (values > high)))
            if outside:
                self._outside_children[name].inc(outside)

    def scored(self, rows: int) -> None:
        """Count records predicted; they reach the counter with the request's latency (:meth:`request`)."""
        self.rows += rows

    def exposition(self) -> bytes:
        """Every series in Prometheus' text format (summed over worker processes in multiprocess mode)."""
        for pending in list(self._pending.values()):
            self._fold(pending)
        return self._generate(self._exposed)


#: the tests of one generated ``if`` (a table of many columns gets several)
TESTS_PER_IF = 64


def _record_check(columns: list[str], known: list[tuple], bounds: list[tuple], recount):
    """``check(row)``: the profile's test of every column written out, calling ``recount(row)`` when one fails.

    ``row`` is a conformed record, its keys ``columns`` in that order
    (:func:`mlkiln.schema.conform_record` builds it so). A loop over the
    columns (unpack the column's rule, look its value up by name, test it)
    cost about 6,200 CPU instructions of a diamonds ``/predict`` (9 columns;
    callgrind; the app's whole request without /metrics is about 82,000);
    here the values are unpacked in one step and each column's test is one
    comparison against categories and bounds bound as globals: about 4,000. A missing value (NaN) is in no
    set, so it sends the record to ``recount`` (which does not count it), and
    lies in no range (``v < low`` and ``v > high`` are both false). A record
    of other columns than ``columns`` (or a value of another type) is
    recounted by name.
    """
    place = {name: i for i, name in enumerate(columns)}
    if any(name not in place for name, *_ in [*known, *bounds]):  # not the records' columns: check by name
        return recount
    scope: dict = {"recount": recount}
    tests = []
    for name, categories in known:
        scope[f"known_{place[name]}"] = categories
        tests.append(f"v{place[name]} not in known_{place[name]}")
    for name, low, high in bounds:
        scope[f"low_{place[name]}"], scope[f"high_{place[name]}"] = low, high
        tests.append(f"v{place[name]} < low_{place[name]} or v{place[name]} > high_{place[name]}")
    values = ", ".join(f"v{i}" for i in range(len(columns)))
    lines = ["def check(row):", f"    if len(row) != {len(columns)}:", "        return recount(row)",
             f"    {values}, = row.values()", "    try:"]
    for start in range(0, len(tests), TESTS_PER_IF):
        lines += [f"        if {' or '.join(tests[start:start + TESTS_PER_IF])}:", "            return recount(row)"]
    lines += ["    except TypeError:", "        return recount(row)"]
    exec("\n".join(lines), scope)  # generated names and numbers only: no text of the table or a request
    return scope["check"]


class _Pending(list):
    """Latencies of one endpoint and status not yet in the histogram, with the children they go to."""

    __slots__ = ("counter", "observe_all")

    def __init__(self, counter, observe_all):
        super().__init__()
        self.counter, self.observe_all = counter, observe_all


def _observe_all(child):
    """``observe_all(latencies)`` for a histogram child: ours takes a list, prometheus-client's one value at a time."""
    if isinstance(child, _Buckets):
        return child.observe_all

    def each(seconds: list[float]) -> None:
        for value in seconds:
            child.observe(value)
    return each


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

    def observe_all(self, seconds: list[float]) -> None:
        # a bucket holds values <= its bound: numpy's "left" side, as bisect_left
        found = np.bincount(np.searchsorted(BUCKETS, seconds, side="left"), minlength=len(self.counts))
        self.counts = [a + int(b) for a, b in zip(self.counts, found)]
        self.sum += math.fsum(seconds)


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


def check_multiprocess_directory() -> None:
    """A ``PROMETHEUS_MULTIPROC_DIR`` set by the user must be an empty directory: files left by another
    run would be summed into this one's counts (prometheus-client's rule: wipe it before starting)."""
    path = os.environ.get(_MULTIPROC)
    if not path:
        return
    if not os.path.isdir(path):
        raise InputError(f"{_MULTIPROC}={path} is not a directory; create it empty, or unset it")
    if os.listdir(path):
        raise InputError(f"{_MULTIPROC}={path} is not empty: another run's counts would be added to this one's; "
                         "empty it, or unset it")


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
