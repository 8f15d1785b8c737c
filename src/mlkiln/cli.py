"""The ``mlkiln`` command: a thin shell over the Python API.

Every command is one call into the library. Problems the user can fix end in
one line on stderr and exit status 2; an unexpected failure ends in one line
and status 1 (set ``MLKILN_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .errors import ArgumentError, InputError, MlkilnError
from .options import (C_NOTE, EXPORT_FORMATS, FAMILIES, MAX_SEED, SEARCHES, SELECTION_METRICS, TASKS, check_bundle_path,
                      check_data_path, glob_root)

log = logging.getLogger("mlkiln")

#: the library's parameter names as this command line spells them: the one place errors are translated
FLAGS = {
    "task": "--task", "metric": "--metric", "models": "--models", "folds": "--folds", "test_size": "--test-size",
    "seed": "--seed", "drop": "--drop", "keep": "--keep", "n_jobs": "--jobs", "search": "--search",
    "budget": "--budget", "trials": "--trials", "cluster": "--cluster", "ensemble": "--no-ensemble",
    "bagging": "--no-bagging",
    "max_latency_us": "--max-latency-us", "rows": "--rows", "fail_above": "--fail-above", "port": "--port", "workers": "--workers",
}


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if code and "mlkiln.workers" in sys.modules:  # a failed train: its workers are not waited for
        sys.modules["mlkiln.workers"].stop()
    return code


def _main(argv: list[str] | None) -> int:
    # SIGTERM unwinds like Ctrl-C, so temporary files are removed on the way out;
    # both are handled from here on, including while scikit-learn is imported
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_interrupt)
    sys.unraisablehook = _keep_interrupts
    try:
        args = _parser().parse_args(argv)
        _setup_logging(getattr(args, "quiet", False))
        return args.func(args) or 0
    except ArgumentError as exc:
        flag = FLAGS.get(exc.param)
        value = " ".join(map(str, exc.value)) if isinstance(exc.value, (list, tuple)) else exc.value
        print(f"mlkiln: error: {f'{flag} {value}: {exc.why}' if flag else exc}", file=sys.stderr)
        return 2
    except MlkilnError as exc:
        print(f"mlkiln: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlkiln: interrupted; nothing was written", file=sys.stderr)
        return 130
    except MemoryError:
        print("mlkiln: error: out of memory; use a sample of the table, fewer --jobs, or a larger machine", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # `predict -o - | head`: the reader has all it wanted, as for any Unix tool
            with contextlib.suppress(OSError, ValueError):  # a caller's own stdout object may have no descriptor
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 128 + signal.SIGPIPE
        print(f"mlkiln: error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return 2
    except Exception as exc:  # the promise is one line, never a traceback
        if os.environ.get("MLKILN_DEBUG"):
            raise
        print(f"mlkiln: internal error: {type(exc).__name__}: {exc} (set MLKILN_DEBUG=1 for details)", file=sys.stderr)
        return 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _keep_interrupts(unraisable) -> None:
    """An interrupt raised where it cannot propagate (a weakref or import-lock callback) is raised again.

    Python reports such an exception as "Exception ignored in ..." and goes
    on, so Ctrl-C or SIGTERM would be lost (and a traceback printed). Instead
    a one-shot timer raises it anew a millisecond later, in ordinary code.
    """
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        if not sys.is_finalizing():  # while Python shuts down, the timer would find no handler and kill it (-14)
            signal.setitimer(signal.ITIMER_REAL, 0.001)
        return
    sys.__unraisablehook__(unraisable)


def cmd_train(args) -> int:
    started = time.perf_counter()  # "Done in" counts the whole command, scikit-learn's import included
    from .options import TrainOptions

    # every argument is checked before scikit-learn is imported or any data is read
    settings = dict(
        task=args.task, metric=args.metric, models=_split_list(args.models), folds=args.folds,
        test_size=args.test_size, seed=args.seed, drop=_split_list(args.drop) or (), keep=_split_list(args.keep) or (),
        n_jobs=args.jobs, search=args.search, budget=args.budget, trials=args.trials, cluster=args.cluster,
        ensemble=args.ensemble, max_latency_us=args.max_latency_us, bagging=args.bagging,
    )
    TrainOptions(**{**settings, "models": settings["models"] and tuple(settings["models"])})
    if (args.data is None) == (args.example is None):
        raise InputError("give either a DATA file or --example NAME")
    if args.example is None and not args.target:
        raise InputError("--target is required: name the column to predict")
    if args.data is not None:
        check_data_path(args.data)
    from . import bundle, summary, workers
    from .examples import EXAMPLES, load_example
    from .workflow import train

    if args.example:
        data, source = load_example(args.example, seed=args.seed), f"example:{args.example}"
        target = args.target or EXAMPLES[args.example].target
        settings["drop"] = _example_drops(args.example, target, settings["drop"], settings["keep"])
        default_out = f"mlkiln-{args.example}"
    else:
        data, source, target = args.data, None, args.target
        default_out = f"mlkiln-{_data_name(args.data)}"
    output = bundle.check_destination(args.output or default_out, args.force, _data_inputs(args.data))
    run = train(data, target, source=source, started=started, **settings)
    path = run.save(output, force=args.force)
    workers.stop()  # the command's end: its workers are not waited for
    elapsed = time.perf_counter() - started
    if args.budget is not None and elapsed > BUDGET_SLACK * args.budget:
        log.warning("the command took %.1fs, over --budget %gs: reading the data, the smallest search, one fit, "
                    "the metrics, the report and the bundle took longer here than the budget allows", elapsed,
                    args.budget)
    print(summary.train_summary(run.card, path, elapsed=elapsed))
    return 0


#: a run may end this much after its --budget before it says so (the issue's 10 %)
BUDGET_SLACK = 1.1


def _data_inputs(data: str | None) -> list[Path]:
    """The paths a training reads: the file or directory, or a glob's directory (never to be replaced)."""
    if data is None:
        return []
    return [glob_root(data)]


def _example_drops(name: str, target: str, drop, keep) -> list[str]:
    """``drop`` plus the columns the example's own definition drops, each announced with its reason.

    A column named in ``--keep`` (or chosen as the target) stays: the user overrides the example.
    """
    from .examples import EXAMPLES

    drop = list(drop)
    for column, why in EXAMPLES[name].drop.items():
        if column not in drop and column not in keep and column != target:
            log.info("dropping %s: %s (as --drop %s would)", column, why, column)
            drop.append(column)
    return drop


def cmd_predict(args) -> int:
    check_bundle_path(args.bundle)
    check_data_path(args.data)
    from .options import output_format

    if args.output != "-" and not Path(args.output).is_dir():
        output_format(args.output)  # predict_file's own check, before the bundle is loaded
    from .predict import predict_file

    if args.output == "-":
        return _predict_to_stdout(args, predict_file)
    rows = predict_file(args.bundle, args.data, args.output, trust_pickle=args.trust_pickle, cluster=args.cluster,
                        force=args.force)
    log.info("wrote %d scored rows to %s", rows, args.output)
    return 0


def _predict_to_stdout(args, predict_file) -> int:
    """``-o -``: the scores as CSV on standard output, for a pipe. They are scored into a temporary file
    first and copied out only once every row is scored, so a failure writes nothing (as for a file)."""
    import shutil
    import tempfile

    from .cluster import named_by, scheduler_address

    if scheduler_address(args.cluster):
        raise ArgumentError("output", "-", f"{named_by(args.cluster)}: scoring on Dask writes Parquet parts to a "
                            "directory; give -o a directory")
    with tempfile.TemporaryDirectory(prefix="mlkiln-predict-") as folder:
        scores = Path(folder) / "scores.csv"
        rows = predict_file(args.bundle, args.data, scores, trust_pickle=args.trust_pickle)
        binary = getattr(sys.stdout, "buffer", None)  # a notebook's or a caller's replaced stdout takes text
        with open(scores, "rb") if binary else open(scores, encoding="utf-8", newline="") as source:
            shutil.copyfileobj(source, binary or sys.stdout)
        sys.stdout.flush()
    log.info("wrote %d scored rows to standard output", rows)
    return 0


def cmd_serve(args) -> int:
    check_bundle_path(args.bundle)
    from .serve import serve

    serve(args.bundle, host=args.host, port=args.port, workers=args.workers, trust_pickle=args.trust_pickle,
          metrics=not args.no_metrics)
    return 0


def cmd_evaluate(args) -> int:
    check_bundle_path(args.bundle)
    check_data_path(args.data)
    from . import summary
    from .predict import load

    model = load(args.bundle, trust_pickle=args.trust_pickle)
    report = args.report or Path(args.data).with_name(f"{_data_name(args.data)}-report.html")
    result = model.evaluate(args.data, report=report)
    if args.json:
        from .jsonio import dumps

        print(dumps(result, indent=2).decode())  # strict JSON: an undefined metric (R2 of one row) is null
    else:
        print(summary.evaluation_summary(model.card, result))
    log.info("evaluation report written to %s (its numbers in the .json beside it)", report)
    return 0


def cmd_drift(args) -> int:
    if args.fail_above is not None and not 0 <= args.fail_above < float("inf"):
        raise ArgumentError("fail_above", args.fail_above, "must be a PSI, a number of at least 0")
    check_bundle_path(args.bundle)
    check_data_path(args.data)
    from . import drift, drift_report
    from .atomic import page_and_json
    from .bundle import check_outside
    from .data import dataset_files, read_table
    from .predict import load

    pages = page_and_json(check_outside(args.output or Path(args.data).with_name(f"{_data_name(args.data)}-drift.html")),
                          dataset_files(args.data))  # the page and its JSON, not the data
    output = pages[0]
    model = load(args.bundle, trust_pickle=args.trust_pickle)
    drift.profile_of(model.card)  # an old bundle is refused before the data is read
    frame = read_table(args.data)
    try:
        result = drift.check(model, frame)
    except InputError as exc:  # a missing column or an unreadable value: in which file, as predict says
        raise InputError(f"{args.data}: {exc}") from exc
    doc = drift_report.document(result, model.card, Path(args.data).name)
    drift_report.write(output, doc)
    print(drift_report.terminal_table(doc))
    if doc["few_rows"]:
        log.warning("%s", doc["few_rows"])
    log.info("drift report written to %s (its numbers in the .json beside it)", output)
    if args.fail_above is not None:
        # a shift no larger than the column's own sampling noise is not drift (few rows): a cron job would page on it
        over = [s for s in [*doc["columns"], *doc["predictions"]] if s["psi"] > args.fail_above]
        noise = [s["name"] for s in over if s.get("within_noise")]
        if noise:
            log.info("drift: PSI above %g within the sampling noise of so few rows in %s: not counted",
                     args.fail_above, ", ".join(map(repr, noise)))
        above = [s["name"] for s in over if not s.get("within_noise")]
        if above:
            print(f"mlkiln: drift: PSI above {args.fail_above:g} in {', '.join(map(repr, above))}", file=sys.stderr)
            return 3
    return 0


def cmd_report(args) -> int:
    from .atomic import check_page_name

    if args.output not in (None, "-"):
        check_page_name(Path(args.output))  # before the bundle is read and verified
    from .predict import rebuild_report

    log.info("report written to %s", rebuild_report(args.bundle, args.output))
    return 0


def cmd_inspect(args) -> int:
    from . import bundle, summary

    from .card import Card

    files = bundle.file_status(args.bundle)
    if not (Path(args.bundle) / bundle.CARD).is_file():
        raise MlkilnError(f"{args.bundle} has no {bundle.CARD}")
    card = Card.from_json((Path(args.bundle) / bundle.CARD).read_bytes())
    if args.json:
        from .jsonio import dumps

        print(dumps({"card": card.to_dict(), "files": files}, indent=2).decode())
    else:
        print(summary.card_summary(card, files))
    # a file of the user's (notes) is never read by load, predict or serve: said, not failed; one of mlkiln's
    # own outside the manifest is tampering
    extra = [f["file"] for f in files if f["status"] == "NOT IN MANIFEST" and f["file"] not in bundle.BUNDLE_FILES]
    if extra:
        log.warning("file(s) not in the manifest, which loading ignores: %s", ", ".join(extra))
    bad = [f"{f['file']} ({f['status']})" for f in files if f["status"] != "ok" and f["file"] not in extra]
    bad += [f"{name} (missing)" for name in (bundle.CARD, bundle.MODEL_SKOPS) if name not in {f["file"] for f in files}]
    if bad:
        print(f"mlkiln: error: bundle does not verify: {', '.join(bad)}", file=sys.stderr)
        return 2
    return 0


def cmd_export(args) -> int:
    from .export import export_mlflow

    log.info("wrote MLflow model %s (from the verified bundle %s)", export_mlflow(args.bundle, args.output, args.force),
             args.bundle)
    return 0


def cmd_example(args) -> int:
    if not 0 <= args.seed <= MAX_SEED:
        raise ArgumentError("seed", args.seed, f"must be a whole number, between 0 and {MAX_SEED}")
    from .atomic import check_ours
    from .data import table_columns, write_table
    from .options import output_format
    from .examples import load_example

    if args.output == "-":  # CSV on standard output, for a pipe
        load_example(args.name, seed=args.seed, rows=args.rows).to_csv(sys.stdout, index=False)
        log.info("wrote example %r to standard output", args.name)
        return 0
    output_format(args.output)  # a name it would not be written as is refused before the table is made
    frame = load_example(args.name, seed=args.seed, rows=args.rows)
    check_ours(args.output, lambda path: table_columns(path) == [str(c) for c in frame.columns],
               f"example {args.name!r}", args.force)
    write_table(frame, args.output)
    log.info("wrote example %r to %s", args.name, args.output)
    return 0


class _Once(argparse.Action):
    """An option of one value that refuses a second, different one: argparse keeps the last, so ``--target a
    --target b`` trained on b without a word (``--drop``, ``--keep`` and ``--models`` add up instead)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest, None)
        if given is not None and given != self.default and given != values:
            raise argparse.ArgumentError(self, f"given twice ({given!r} and {values!r}): give it once")
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (argparse prints its usage block first: 13 lines for train)."""

    def error(self, message: str):
        self.exit(2, f"mlkiln: error: {message} (see {self.prog} --help)\n")  # as every other error starts


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlkiln", description="Turn a table into a tuned, evaluated, deployable scikit-learn model.",
        epilog=C_NOTE,
    )
    parser.add_argument("--version", action="version", version=f"mlkiln {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_train(sub)
    _add_predict(sub)
    _add_serve(sub)
    _add_evaluate(sub)
    _add_drift(sub)
    _add_report(sub)
    _add_inspect(sub)
    _add_example(sub)
    _add_export(sub)
    return parser


def _add_train(sub) -> None:
    from .examples import EXAMPLES

    t = sub.add_parser(
        "train", help="train, tune and evaluate; write a bundle",
        description="Train every model family by k-fold CV on the training rows, pick the best mean "
        "validation score, refit it, score the held-out test split once, and write a bundle.",
        epilog=C_NOTE + " Regression families: " + ", ".join(FAMILIES["regression"])
        + ". Classification families: " + ", ".join(FAMILIES["classification"]) + ".",
    )
    t.add_argument("data", nargs="?", help="CSV or Parquet file, or a directory or quoted glob of them (same columns)")
    t.add_argument("--example", choices=sorted(EXAMPLES), help="use a bundled example table instead of DATA")
    t.add_argument("--target", action=_Once, help="the column to predict (default for --example: its usual target)")
    t.add_argument("-o", "--output", action=_Once, help="bundle directory to write (default: mlkiln-<data name>)")
    t.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    t.add_argument("--task", choices=TASKS, default="auto")
    t.add_argument("--metric", help="selection metric: regression " + "/".join(SELECTION_METRICS["regression"])
                   + "; classification " + "/".join(SELECTION_METRICS["classification"])
                   + " (default: r2; log_loss, with the threshold tuned for f1_macro when one of two classes is rare)")
    t.add_argument("--models", nargs="+", action="extend", metavar="FAMILY", help="families to try (default: all for the task)")
    t.add_argument("--folds", type=int, default=3, help="k for k-fold cross-validation (default 3, as in the course)")
    t.add_argument("--test-size", type=float, default=0.2, help="share of rows held out for the test score (default 0.2)")
    t.add_argument("--seed", type=int, default=0, help="random seed for split, folds and models (default 0)")
    t.add_argument("--drop", nargs="+", action="extend", metavar="COL", help="columns never to use as features")
    t.add_argument("--keep", nargs="+", action="extend", metavar="COL", help="columns to use even if flagged (identifier, constant, leakage)")
    t.add_argument("--jobs", type=int, default=None,
                   help="cores to use: CV fits as one-thread workers, the final fit as threads (default: all cores)")
    t.add_argument("--search", choices=SEARCHES, default="auto",
                   help="search per family (default auto: hgb's portfolio of configurations, best first; "
                        "successive halving for rf and extra_trees; full grid for the others)")
    t.add_argument("--budget", type=float, metavar="SECONDS",
                   help="wall-clock seconds for the whole of training: a best-first search that starts "
                        "only what it estimates can finish, then the final fit, report and bundle")
    t.add_argument("--trials", type=int, metavar="N",
                   help="at most N candidates per family: same seed and data give the same model on any machine")
    t.add_argument("--cluster", metavar="ADDRESS",
                   help="run the CV fits on Dask: tcp://HOST:8786, or 'local' (default: $MLKILN_DASK_SCHEDULER; "
                   "needs pip install 'mlkiln[dask]')")
    t.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="do not weigh an ensemble of the families (default: weigh one; chosen only if it scores better)")
    t.add_argument("--no-bagging", dest="bagging", action="store_false",
                   help="fit the chosen gradient boosting model once (default: where its fit is quick, average it "
                        "with 5 more fits, each on 80%% of the rows)")
    t.add_argument("--max-latency-us", type=float, metavar="US",
                   help="choose only a model (or ensemble) that scores one row within US microseconds, "
                        "timed on the fitted model: the next best is fitted when the best is slower")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    t.set_defaults(func=cmd_train)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="score a table with a bundle",
                       description="Score a table in batches: memory does not grow with its size.")
    p.add_argument("bundle")
    p.add_argument("data", help="CSV or Parquet file to score, or a directory or quoted glob ('data/*.parquet') of them")
    p.add_argument("-o", "--output", action=_Once, required=True,
                   help="output file (.csv or .parquet), or - for CSV on standard output; for a directory/glob input, "
                   "or with --cluster, a directory that receives one Parquet part per input file")
    p.add_argument("--force", action="store_true",
                   help="replace the output directory if it exists, or a file that is not a table of scores")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="score the files on Dask: tcp://HOST:8786, or 'local' (default: $MLKILN_DASK_SCHEDULER; "
                   "needs pip install 'mlkiln[dask]'); workers must see the input and output paths")
    p.add_argument("--trust-pickle", action="store_true", help="load model.joblib (runs code) instead of model.skops")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)


def _add_serve(sub) -> None:
    s = sub.add_parser("serve", help="serve a bundle's predictions over HTTP (needs mlkiln[serve])",
                       description="HTTP JSON service: POST /predict, GET /health, GET /schema, GET /openapi.json, "
                       "GET /metrics (Prometheus), and POST /invocations (MLflow's scoring protocol).")
    s.add_argument("bundle")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (default 1; at most the number of cores)")
    s.add_argument("--trust-pickle", action="store_true", help="load model.joblib (runs code) instead of model.skops")
    s.add_argument("--no-metrics", action="store_true", help="no GET /metrics (Prometheus) and no counting")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_serve)


def _add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="metrics of a bundle on new labelled data")
    e.add_argument("bundle")
    e.add_argument("data", help="CSV or Parquet file that includes the target column")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--report", metavar="FILE", help="where to write the HTML report, with its .json beside it "
                   "(default: DATA-report.html next to DATA; never inside the bundle, whose manifest would break)")
    e.add_argument("--trust-pickle", action="store_true", help="load model.joblib (runs code) instead of model.skops")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def _add_drift(sub) -> None:
    d = sub.add_parser("drift", help="compare new data (and its predictions) with the training data",
                       description="Population stability index per column and for the predictions, shares of "
                       "unseen categories, out-of-range and missing values; a table here, an HTML page and JSON.",
                       epilog="Exit status 3 when --fail-above is given and exceeded (for scheduled jobs).")
    d.add_argument("bundle")
    d.add_argument("data", help="CSV or Parquet file with the model's input columns (the target is not needed)")
    d.add_argument("-o", "--output", action=_Once, metavar="FILE", help="HTML page to write, with its .json beside it "
                   "(default: DATA-drift.html next to DATA; never inside the bundle)")
    d.add_argument("--fail-above", type=float, metavar="PSI",
                   help="exit with status 3 when a column's or the predictions' PSI exceeds PSI (e.g. 0.25)")
    d.add_argument("--trust-pickle", action="store_true", help="load model.joblib (runs code) instead of model.skops")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_drift)


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="rebuild a bundle's HTML report from its card and report.json",
                       description="Redraw the report of a bundle (no data needed) into a file outside the bundle.")
    r.add_argument("bundle")
    r.add_argument("-o", "--output", action=_Once, help="HTML file to write (default: <bundle name>-report.html here)")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_report)


def _add_inspect(sub) -> None:
    i = sub.add_parser("inspect", help="show a bundle's model card and verify its files")
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true", help="print the card and file checks as JSON")
    i.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    i.set_defaults(func=cmd_inspect)


def _add_example(sub) -> None:
    from .examples import EXAMPLES

    x = sub.add_parser("example", help="write a bundled example table to a file")
    x.add_argument("name", choices=sorted(EXAMPLES))
    x.add_argument("-o", "--output", action=_Once, required=True, help="output file (.csv or .parquet), or - for CSV on standard output")
    x.add_argument("--seed", type=int, default=0, help="seed of the generated example (machine-failure-synthetic)")
    x.add_argument("--rows", type=int, metavar="N",
                   help="rows of the generated example (default 10,000; machine-failure-synthetic only)")
    x.add_argument("--force", action="store_true", help="replace an existing file that is not this example")
    x.add_argument("-q", "--quiet", action="store_true")
    x.set_defaults(func=cmd_example)


def _add_export(sub) -> None:
    x = sub.add_parser(
        "export", help="write a bundle in another tool's model format (needs mlkiln[mlflow])",
        description="Verify a bundle and write it as an MLflow Model directory: the sklearn flavour (the bare "
        "pipeline, conformed columns in) and a python_function flavour that applies mlkiln's input rules without "
        "mlkiln; signature, input example and the bundle's pinned requirements included.",
    )
    x.add_argument("bundle")
    x.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="the model format to write")
    x.add_argument("-o", "--output", action=_Once, required=True, help="directory to write")
    x.add_argument("--force", action="store_true", help="replace the output directory if it exists")
    x.add_argument("-q", "--quiet", action="store_true")
    x.set_defaults(func=cmd_export)


def _data_name(path: str) -> str:
    """A data file's name without any of its suffixes (``sales.csv.gz`` -> ``sales``), for default outputs.

    A glob (``sales/*.parquet``) is named after its directory.
    """
    path = Path(path)
    while any(c in path.name for c in "*?[") and path.parent != path:
        path = path.parent
    return path.name.split(".")[0] or "data"


def _split_list(values: list[str] | None) -> list[str] | None:
    """Accept both ``--models a b`` and ``--models a,b``."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "mlkiln: warning: " if record.levelno >= logging.WARNING else "mlkiln: "
        return prefix + record.getMessage()


if __name__ == "__main__":
    sys.exit(main())
