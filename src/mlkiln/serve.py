"""Serve a bundle over HTTP: ``mlkiln serve BUNDLE`` (needs ``pip install mlkiln[serve]``).

Endpoints: ``POST /predict`` (one record, or a list of records), ``GET /health``,
``GET /schema`` (the bundle's input schema), ``GET /openapi.json``,
``GET /metrics`` (Prometheus; see :mod:`mlkiln.monitor`) and ``POST /invocations``,
MLflow's scoring protocol, so clients written for an MLflow model server work unchanged.

The stack is uvicorn (with httptools and uvloop when installed) running the
small ASGI application below, with orjson for JSON. Why not FastAPI or
Starlette: their routing, dependency injection and pydantic validation cost
tens of microseconds per request, more than the compiled prediction itself,
and pydantic would be a second home for the input rules, which belong to
:func:`mlkiln.schema.conform_record` (the checks ``mlkiln predict`` applies).
Why not a hand-written asyncio server: uvicorn is a maintained, hardened
HTTP/1.1 implementation (keep-alive, pipelining, header limits, timeouts,
graceful shutdown, worker processes) that such a server would have to re-earn.

Predictions run on the event loop: a compiled prediction takes microseconds,
less than a hop to a thread pool, and the bounded body size bounds the work of
one request. Each worker process limits OpenMP and BLAS to one thread, so
``--workers`` up to the number of cores never oversubscribes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from time import perf_counter

import pandas as pd

from .data import CSV_NA_VALUES, duplicate_names
from .errors import ArgumentError, InputError, require
from .predict import Model, load

log = logging.getLogger("mlkiln")

#: largest request body accepted; a larger one gets 413
MAX_BODY_BYTES = 1 << 20
_ENV_BUNDLE = "MLKILN_SERVE_BUNDLE"
_ENV_TRUST = "MLKILN_SERVE_TRUST_PICKLE"
_ENV_METRICS = "MLKILN_SERVE_METRICS"


class App:
    """The ASGI application: validated predictions of one :class:`~mlkiln.predict.Model`.

    Parameters
    ----------
    model : Model
        A loaded bundle.
    max_body_bytes : int
        Requests with a larger body are refused with 413 before it is read.
    metrics : bool
        Count requests, latency, rows and drift for ``GET /metrics``.
    """

    def __init__(self, model: Model, max_body_bytes: int = MAX_BODY_BYTES, metrics: bool = True):
        self.model = model
        self.max_body_bytes = max_body_bytes
        self._orjson = require("orjson", "serve", "serving")
        predictor = model.predictor
        health = {"status": "ok", "task": model.task, "model": model.card.model.family,
                  "compiled": predictor.compiled, "fallback_reason": predictor.reason}
        self._static = {
            "/health": self._orjson.dumps(health),
            "/schema": self._orjson.dumps(model.card.to_dict()["schema"]),
            "/openapi.json": self._orjson.dumps(openapi(model)),
        }
        self._monitor = _monitor(model, ["/predict", "/invocations", *self._static]) if metrics else None
        self._watch = self._monitor.watch if metrics else None
        self._watch_frame = self._monitor.watch_frame if metrics else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        if self._monitor is None:
            await self._answer(scope, receive, send)
            return
        start = perf_counter()
        if self._monitor.shared:  # counted before the body leaves: a scrape another worker answers next sees it
            await self._answer(scope, receive, self._counting(send, scope["path"], start))
            return
        status = await self._answer(scope, receive, send)
        self._monitor.request(scope["path"], status, perf_counter() - start)

    def _counting(self, send, path: str, start: float):
        """``send``, counting the request when its response starts (worker processes sharing their counts).

        One process counts after the response is sent, in the same event-loop
        turn, so its next scrape sees it; another worker could scrape the shared
        files before that turn ends, so there the count comes first.
        """
        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                self._monitor.request(path, message["status"], perf_counter() - start)
            await send(message)
        return counting_send

    async def _answer(self, scope, receive, send) -> int:
        path, method = scope["path"], scope["method"]
        if path in ("/predict", "/invocations"):
            if method != "POST":
                return await _respond(send, 405, self._error(f"use POST for {path}"), [(b"allow", b"POST")])
            handler = self._predict if path == "/predict" else self._invocations
            status, body = await handler(scope, receive)
            return await _respond(send, status, body)
        if path in self._static:  # HEAD as GET, without the body (uvicorn drops it): load balancers' health checks
            if method not in ("GET", "HEAD"):
                return await _respond(send, 405, self._error(f"use GET for {path}"), [(b"allow", b"GET, HEAD")])
            return await _respond(send, 200, self._static[path])
        if path == "/metrics" and self._monitor is not None:
            return await self._metrics(send, method)
        return await _respond(send, 404, self._error(f"no endpoint {path}; try POST /predict or GET /openapi.json"))

    async def _read_json(self, scope, receive) -> tuple[int, object]:
        """``(200, parsed body)``, or ``(status, error body)`` for a body too large, cut off or not JSON."""
        status, body = await self._read_body(scope, receive)
        if status != 200:
            return status, body
        try:
            return 200, self._orjson.loads(body)
        except self._orjson.JSONDecodeError as exc:
            return 400, self._error(f"body is not valid JSON: {exc}")

    async def _read_body(self, scope, receive) -> tuple[int, bytes]:
        """``(200, the body's bytes)``, or ``(status, error body)`` for a body compressed, too large or cut off."""
        headers = dict(scope["headers"])
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding != b"identity":  # the body would be read as text and fail as something else
            return 415, self._error(f"Content-Encoding {encoding.decode('latin-1')} is not supported: send the "
                                    "body uncompressed")
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit():
            return 400, self._error("malformed Content-Length header")
        if int(declared) > self.max_body_bytes:
            return 413, self._error(f"request body larger than {self.max_body_bytes} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, self._error("client disconnected")
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return 413, self._error(f"request body larger than {self.max_body_bytes} bytes")
            if not message.get("more_body", False):
                break
        return 200, b"".join(chunks)

    async def _predict(self, scope, receive) -> tuple[int, bytes]:
        content_type = _content_type(scope)
        if content_type and not content_type.startswith(_READ_AS_JSON) \
                and not content_type.split(b";")[0].strip().endswith(b"+json"):
            return 415, self._error("POST /predict takes application/json (a record or an array of records) or "
                                    f"text/csv, not {content_type.decode('latin-1')}")
        if content_type.startswith(b"text/csv"):  # its rows, answered as a list of records
            status, frame = await self._read_frame(scope, receive, csv=True)
            if status != 200:
                return status, frame
            records = frame.to_dict("records")
            return self._scored(lambda: {"predictions": self.model.predict_records(records, self._watch)},
                                len(records))
        status, payload = await self._read_json(scope, receive)
        if status != 200:
            return status, payload
        if isinstance(payload, dict):
            return self._scored(lambda: self.model.predict_record(payload, self._watch), 1)
        if isinstance(payload, list):
            return self._scored(lambda: {"predictions": self.model.predict_records(payload, self._watch)},
                                len(payload))
        return 400, self._error("body must be a JSON object (one record) or an array of objects")

    async def _read_frame(self, scope, receive, csv: bool) -> tuple[int, object]:
        """``(200, the body's rows)``: a CSV body's (:func:`csv_frame`) or an MLflow JSON body's
        (:func:`mlflow_frame`); else ``(status, error body)``, a 400 naming what is wrong with the rows."""
        status, payload = await (self._read_body if csv else self._read_json)(scope, receive)
        if status != 200:
            return status, payload
        try:
            return 200, csv_frame(payload, [c.name for c in self.model.card.columns]) if csv else mlflow_frame(payload)
        except ValueError as exc:
            return 400, self._error(str(exc))

    def _scored(self, answer, rows: int) -> tuple[int, bytes]:
        """``(200, answer() as JSON)``, counting ``rows``; 422 for input that does not fit, 500 for a bug."""
        try:
            body = self._orjson.dumps(answer())
        except InputError as exc:
            return 422, self._error(str(exc))
        except Exception:  # a bug, never bad input: say so without leaking internals
            log.exception("prediction failed")
            return 500, self._error("internal error while predicting")
        if self._monitor is not None:
            self._monitor.scored(rows)
        return 200, body

    async def _invocations(self, scope, receive) -> tuple[int, bytes]:
        """MLflow's scoring protocol: ``{"predictions": [...]}`` for a JSON body in one of its formats, or a CSV
        body (``text/csv``: a header of column names, then the rows) as MLflow's server takes it.

        The rows go through :func:`mlkiln.schema.conform` like a batch from
        ``mlkiln predict`` (columns the model does not use are ignored with a
        warning, as MLflow's server does). A body that is not one of the formats
        is a 400 naming them; rows that do not fit the schema are a 422.
        """
        content_type = _content_type(scope, b"application/json")
        csv = content_type.startswith(b"text/csv")
        if not (csv or content_type.startswith(b"application/json")):
            return 415, self._error("POST /invocations takes application/json (dataframe_split, dataframe_records "
                                    f"or instances) or text/csv, not {content_type.decode('latin-1')}")
        status, frame = await self._read_frame(scope, receive, csv)
        if status != 200:
            return status, frame
        if not len(frame.columns):  # records: [] holds no rows, and no columns to check: empty in, empty out
            return self._scored(lambda: {"predictions": []}, 0)
        return self._scored(lambda: {"predictions": self.model.predict(frame, self._watch_frame).tolist()}, len(frame))

    def _error(self, message: str) -> bytes:
        return self._orjson.dumps({"error": message})

    async def _metrics(self, send, method: str) -> int:
        if method not in ("GET", "HEAD"):
            return await _respond(send, 405, self._error("use GET for /metrics"), [(b"allow", b"GET, HEAD")])
        body = self._monitor.exposition()
        return await _respond(send, 200, body, content_type=self._monitor.content_type.encode())


#: Content-Types ``POST /predict`` reads as JSON (or CSV), besides none and ``+json``: JSON's, and what
#: clients send JSON as when told nothing (curl -d: a form's type; a browser's fetch of a string: text/plain)
_READ_AS_JSON = (b"application/json", b"text/csv", b"text/plain", b"application/x-www-form-urlencoded")


def _content_type(scope, default: bytes = b"") -> bytes:
    """A request's Content-Type, lower case (``default`` when it has none)."""
    return dict(scope["headers"]).get(b"content-type", default).strip().lower()


def _monitor(model: Model, endpoints: list[str]):
    """The service's Prometheus counters, drift ones relative to the bundle's training profile when it has one."""
    from .monitor import Monitor

    profile = model.card.profile
    if profile is None:
        log.warning("this bundle has no training profile: /metrics has no unseen-category or out-of-range "
                    "counts (train it again to get them)")
    return Monitor(profile, [*endpoints, "/metrics"], [c.name for c in model.card.columns])


async def _respond(send, status: int, body: bytes, headers=(), content_type: bytes = b"application/json") -> int:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})
    return status


#: the JSON bodies of MLflow's scoring protocol that name their columns
MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances")


def mlflow_frame(payload) -> pd.DataFrame:
    """The rows of an MLflow scoring request as a DataFrame; ValueError naming what is wrong.

    ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
    ``{"dataframe_records": [{...}, ...]}`` or ``{"instances": [{...}, ...]}``.
    Cells must be JSON scalars: a nested value is no column's value. MLflow's
    optional ``"params"`` (an object of inference parameters) is accepted and
    unused, as MLflow does for a model without a params schema.
    """
    # rows are counted from 1 here as in schema.conform's errors about their values ("... in row 2")
    keys = [k for k in MLFLOW_FORMATS if isinstance(payload, dict) and k in payload]
    if len(keys) != 1 or len(payload) != 1 + ("params" in payload):
        raise ValueError(f"body must be a JSON object with exactly one of {', '.join(MLFLOW_FORMATS)} (and optionally params)")
    if not isinstance(payload.get("params", {}), (dict, type(None))):
        raise ValueError("params must be an object of parameter names and values")
    (key,) = keys
    body = payload[key]
    if key == "dataframe_split":
        if not isinstance(body, dict) or not isinstance(body.get("columns"), list) or not isinstance(body.get("data"), list):
            raise ValueError('dataframe_split must be an object with "columns" (a list of names) and "data" (a list of rows)')
        columns, rows = body["columns"], body["data"]
        if not all(isinstance(c, str) for c in columns):
            raise ValueError("dataframe_split: every column name must be a string")
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ValueError(f"dataframe_split: row {i + 1} must be a list of {len(columns)} values, one per column")
        index = body.get("index")
        if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
            raise ValueError(f'dataframe_split: "index" must be a list of {len(rows)} labels, one per row of "data"')
        records = [dict(zip(columns, row)) for row in rows]
    else:
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise ValueError(f"{key} must be a list of objects (one per row, column: value)")
        records, columns = body, None
        names = set().union(*records) if records else set()
        for i, record in enumerate(records):
            if len(record) != len(names):  # pandas would fill the gaps with missing values, unasked
                lacking = ", ".join(repr(n) for n in sorted(names - set(record)))
                raise ValueError(f"{key}: row {i + 1} lacks column(s) {lacking} that other rows have; give every row "
                                 "the same columns (null for a missing value)")
    for i, record in enumerate(records):
        for name, value in record.items():
            if isinstance(value, (list, dict)):
                raise ValueError(f"{key}: row {i + 1}, column {name!r}: expected a single value, got a nested {type(value).__name__}")
    return pd.DataFrame.from_records(records, columns=columns)


def csv_frame(body: bytes, names=()) -> pd.DataFrame:
    """The rows of a CSV body (UTF-8, comma-separated, a header of column names) as text; ValueError naming
    what is wrong. Every value stays text here, so that :func:`mlkiln.schema.conform` reads numbers and codes by
    the model's schema ("007" stays a code where the column is text) and empty fields as missing values. ``names``:
    the model's columns, one of which a header of one column may be, whatever it holds."""
    import csv
    import io

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"CSV body is not UTF-8 text: byte {exc.start + 1} cannot be read") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValueError(f"CSV body cannot be read: {exc}") from None
    rows = [row for row in rows if row]  # blank lines, as pandas and MLflow skip them
    if not rows:
        raise ValueError("CSV body is empty: send a header line of column names, then one line per row")
    header, data = rows[0], rows[1:]
    other = [sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0] and header[0] not in names]
    if other:  # a spreadsheet's export elsewhere: every column "missing" said nothing of why
        raise ValueError(f"CSV body: its header is one column {header[0][:80]!r}, with {other[0]!r} in it; send "
                         "comma-separated values")
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise ValueError(f"CSV body: row {i + 1} has {len(row)} field(s), the header {len(header)}")
    missing = set(CSV_NA_VALUES)  # "", "NA", "NULL", "n/a"...: missing, as `mlkiln predict rows.csv` reads them
    columns = {name: [None if row[k] in missing else row[k] for row in data] for k, name in enumerate(header)}
    if len(columns) != len(header):
        raise ValueError("CSV body: duplicate column name(s) " + ", ".join(map(repr, duplicate_names(header))))
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})


#: a CSV request body, as the OpenAPI document describes it
_CSV_BODY = {"type": "string", "description": "UTF-8, comma-separated: a header of column names, then one line per "
             "row; an empty field (or NA, NULL) is a missing value"}


def openapi(model: Model) -> dict:
    """The OpenAPI 3.1 document of the service, with the bundle's schema as the record type."""
    properties = {}
    for spec in model.card.columns:
        if spec.kind == "categorical":
            prop = {"type": ["string", "null"], "examples": list(spec.categories or ())[:10]}
        elif spec.kind == "datetime":
            prop = {"type": ["string", "null"], "format": "date-time"}
        else:
            prop = {"type": ["number", "null"]}
        duration = spec.dtype.startswith(("timedelta", "duration"))  # read as its seconds (schema.to_number)
        prop["description"] = (("a duration, in seconds" if duration else spec.kind)
                               + " (training range/categories in GET /schema)")
        properties[spec.name] = prop
    record = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    prediction = {"type": "object", "required": ["prediction"], "properties": {
        "prediction": {"type": "number"} if model.task == "regression" else {},
        **({"probabilities": {"type": "object", "additionalProperties": {"type": "number"}}}
           if model.task == "classification" else {}),
    }}
    error = {"type": "object", "properties": {"error": {"type": "string"}}}
    errors = {str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
              for code, text in ((400, "malformed body"), (413, "body too large"),
                                 (422, "a record does not fit the schema (the message names the field)"))}

    def ok(schema: dict, text: str) -> dict:
        return {"200": {"description": text, "content": {"application/json": {"schema": schema}}}}

    target = model.card.target
    return {
        "openapi": "3.1.0",
        "info": {"title": f"mlkiln model predicting {target!r}", "version": model.card.mlkiln_version},
        "paths": {
            "/predict": {"post": {
                "summary": f"predict {target!r} for one record or a list of records",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/Record"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                    ]}},
                    "text/csv": {"schema": _CSV_BODY},
                }},
                "responses": {**ok({"oneOf": [
                    {"$ref": "#/components/schemas/Prediction"},
                    {"type": "object", "properties": {"predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}}}},
                ]}, "the prediction(s), in the order of the records"), **errors,
                    "415": {"description": "a body of another type (XML, a form's files)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            }},
            "/invocations": _invocations_openapi(record, errors, ok),
            "/health": {"get": {"summary": "liveness, and whether the compiled path is used", "responses": ok({"type": "object"}, "ok")}},
            "/schema": {"get": {"summary": "the bundle's input schema", "responses": ok({"type": "object"}, "the schema")}},
            "/openapi.json": {"get": {"summary": "this document", "responses": ok({"type": "object"}, "OpenAPI 3.1")}},
        },
        "components": {"schemas": {"Record": record, "Prediction": prediction, "Error": error}},
    }


def _invocations_openapi(record: dict, errors: dict, ok) -> dict:
    """``POST /invocations`` in the OpenAPI document: MLflow's three JSON bodies or CSV, ``{"predictions": [...]}``
    back."""
    rows = {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}
    split = {"type": "object", "required": ["columns", "data"], "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}},
        "index": {"type": "array"},
    }}
    bodies = [{"type": "object", "required": [key], "additionalProperties": False, "properties": {key: schema}}
              for key, schema in (("dataframe_split", split), ("dataframe_records", rows), ("instances", rows))]
    return {"post": {
        "summary": "MLflow's scoring protocol: clients of an MLflow model server work unchanged",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"oneOf": bodies}},
            "text/csv": {"schema": _CSV_BODY},
        }},
        "responses": {**ok({"type": "object", "required": ["predictions"], "properties": {
            "predictions": {"type": "array", "description": "one prediction per row, in order (labels for classification)"},
        }}, "the predictions"), **errors, "415": {"description": "neither application/json nor text/csv",
                                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    }}


def app_from_environment() -> App:
    """The application for one worker process: the bundle named by the parent, thread pools limited."""
    limit_threads()
    return App(load(os.environ[_ENV_BUNDLE], trust_pickle=os.environ.get(_ENV_TRUST) == "1"),
               metrics=os.environ.get(_ENV_METRICS, "1") == "1")


def limit_threads() -> None:
    """One OpenMP/BLAS thread in this process: parallelism comes from worker processes."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go: a port in use or a host that is not this machine's is an
    :class:`InputError` before the service says it is serving (uvicorn would log it and exit 3, the code
    ``drift --fail-above`` gives to drift)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closing socket is no obstacle
            probe.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(bundle_path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, trust_pickle: bool = False,
          metrics: bool = True) -> None:
    """Run the service until interrupted.

    The bundle is loaded (and verified) here first, so a bad bundle fails
    before any port is bound; with several workers each loads its own copy,
    and their ``/metrics`` counts are shared (:func:`mlkiln.monitor.multiprocess_directory`).
    """
    uvicorn = require("uvicorn", "serve", "serving")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ArgumentError("port", port, "must be a TCP port, between 1 and 65535")
    cores = os.cpu_count() or 1
    if workers < 1 or workers > cores:
        raise ArgumentError("workers", workers, f"must be between 1 and the {cores} cores of this machine")
    os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    limit_threads()
    model = load(bundle_path, trust_pickle=trust_pickle)
    if metrics:
        from .monitor import check_multiprocess_directory

        check_multiprocess_directory()
    check_can_listen(host, port)
    app = App(model, metrics=metrics)
    path = "compiled" if model.predictor.compiled else f"scikit-learn ({model.predictor.reason})"
    if workers == 1:
        log.info("serving %s on http://%s:%d; predictions: %s", bundle_path, host, port, path)
    else:  # each worker loads the bundle before it listens: seconds for a large model
        log.info("serving %s on http://%s:%d with %d workers, once each has loaded the model (GET /health answers "
                 "then); predictions: %s", bundle_path, host, port, workers, path)
    options = dict(host=host, port=port, lifespan="off", access_log=False, log_level="warning", server_header=False)
    if workers == 1:
        uvicorn.run(app, **options)
        return
    os.environ.update({_ENV_BUNDLE: os.fspath(bundle_path), _ENV_TRUST: "1" if trust_pickle else "0",
                       _ENV_METRICS: "1" if metrics else "0"})
    from .monitor import multiprocess_directory

    with multiprocess_directory() if metrics else contextlib.nullcontext():
        uvicorn.run("mlkiln.serve:app_from_environment", factory=True, workers=workers, **options)
