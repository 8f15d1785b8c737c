"""The ``mlkiln`` command end to end, in subprocesses, on real files."""

import argparse
import json
import os
import subprocess
import sys
import re
from pathlib import Path

import pandas as pd
import pytest

import mlkiln
from common import cli, copy_bundle, one_line_error, run_cli


def test_train_predict_evaluate_inspect(diamonds_csv, tmp_path):
    out = tmp_path / "model"
    result = run_cli("train", diamonds_csv, "--target", "price", "--models", "linear", "ridge", "--no-ensemble", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "Best model:" in result.stdout and "ridge" in result.stdout and "r2" in result.stdout
    assert re.search(r"One row scored in [\d.,]+ us", result.stdout)
    assert "task: regression" in result.stderr  # the decision is printed
    done = re.search(r"Done in ([\d.]+)s \(training ([\d.]+)s; then the report and the bundle\)", result.stdout)
    assert done and float(done[1]) >= float(done[2])  # the command's time covers training's

    scored = tmp_path / "scored.parquet"
    result = cli("predict", out, diamonds_csv, "-o", scored)
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(scored)
    source = pd.read_csv(diamonds_csv)
    assert list(frame.columns) == [*source.columns, "prediction"]
    assert len(frame) == len(source)

    result = cli("evaluate", out, diamonds_csv, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == len(source) and 0.8 < metrics["r2"] < 1.0

    result = cli("inspect", out)
    assert result.returncode == 0, result.stderr
    for text in ("task:", "ridge", "alpha", "latency:", "Input schema", "carat", "scikit-learn", "model.skops", "ok"):
        assert text in result.stdout


def test_classification_predict_has_probabilities(failure_bundle, failure_csv, tmp_path):
    out = tmp_path / "scored.csv"
    result = cli("predict", failure_bundle, failure_csv, "-o", out)
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert {"prediction", "proba_0", "proba_1"} <= set(frame.columns)
    assert (frame["proba_0"] + frame["proba_1"]).round(9).eq(1).all()
    assert frame["prediction"].isin([0, 1]).all() and frame["prediction"].sum() > 0

    piped = run_cli("predict", failure_bundle, failure_csv, "-o", "-", cwd=tmp_path)  # CSV on standard output
    assert piped.returncode == 0 and "to standard output" in piped.stderr, piped.stderr
    assert piped.stdout == out.read_text() and not (tmp_path / "-").exists()
    assert cli("predict", failure_bundle, failure_csv, "-o", "-").stdout == out.read_text()  # a text stdout (notebooks)
    for command in (("drift", failure_bundle, failure_csv), ("report", failure_bundle)):  # a page and its .json
        refused = cli(*command, "-o", "-")
        assert refused.returncode == 2 and "takes only the tables of predict and example" in refused.stderr
    assert not Path("-").exists() and not Path("-.json").exists()
    one_line_error(cli("predict", failure_bundle, failure_csv, "-o", "-", "--cluster", "local"),
                   "--cluster: scoring on Dask writes Parquet parts to a directory")
    with pytest.MonkeyPatch.context() as env:  # the scheduler named by the environment is named as such
        env.setenv("MLKILN_DASK_SCHEDULER", "tcp://127.0.0.1:9")
        one_line_error(cli("predict", failure_bundle, failure_csv, "-o", "-"),
                       "MLKILN_DASK_SCHEDULER (set in the environment): scoring on Dask writes Parquet parts")
        one_line_error(cli("predict", failure_bundle, failure_csv, "-o", tmp_path / "scores.csv"),
                       "MLKILN_DASK_SCHEDULER (set in the environment) writes one Parquet part per input file")
    pd.read_csv(failure_csv).drop(columns="Torque [Nm]").to_csv(tmp_path / "bad.csv", index=False)
    failed = cli("predict", failure_bundle, tmp_path / "bad.csv", "-o", "-")
    assert failed.returncode == 2 and failed.stdout == "" and "'Torque [Nm]'" in failed.stderr  # nothing half written


def test_example_export_and_train(tmp_path):
    csv = tmp_path / "mf.csv"
    assert cli("example", "machine-failure", "-o", csv).returncode == 0
    frame = pd.read_csv(csv)
    assert len(frame) == 10_000 and frame["Machine failure"].sum() == 339
    piped = cli("example", "machine-failure", "-o", "-")  # CSV on standard output
    assert piped.returncode == 0 and piped.stdout == csv.read_text() and not Path("-").exists()


@pytest.mark.parametrize("extra, dropped", [([], ["RNF"]), (["--keep", "RNF"], [])])
def test_train_example_drops_rnf_by_its_definition_and_says_why(tmp_path, extra, dropped):
    out = tmp_path / "mf"
    result = cli("train", "--example", "machine-failure", "--models", "logistic_l2", "-o", out, *extra)
    assert result.returncode == 0, result.stderr
    said = "dropping RNF: a failure-mode label, known only after the outcome (as --drop RNF would)"
    assert (said in result.stderr) == bool(dropped)
    card = json.loads((out / "card.json").read_text())
    assert card["dropped_by_user"] == dropped
    assert set(card["excluded"]) == {"UDI", "Product ID", "TWF", "HDF", "PWF", "OSF"}  # screening: no name rules
    assert ("RNF" in [c["name"] for c in card["schema"]["columns"]]) == (not dropped)


def test_inspect_reports_tampering(diamonds_bundle, tmp_path):
    copy = copy_bundle(diamonds_bundle, tmp_path)
    (copy / "train.py").write_text("print('changed')\n")
    result = cli("inspect", copy)
    assert "MODIFIED" in result.stdout
    one_line_error(result, "bundle does not verify: train.py (MODIFIED)")


def test_inspect_names_a_file_of_the_user_s_without_failing(diamonds_bundle, tmp_path):
    """predict and serve never read a file the manifest does not list; inspect says so and verifies the rest."""
    copy = copy_bundle(diamonds_bundle, tmp_path)
    (copy / "notes.txt").write_text("mine")
    result = cli("inspect", copy)
    assert result.returncode == 0 and "not in the manifest, which loading ignores: notes.txt" in result.stderr


def test_inspect_refuses_a_manifest_that_leaves_files_out(diamonds_bundle, tmp_path):
    """A manifest emptied or cut to card.json was 'verified' with exit 0 while the other files were tampered with."""
    import mlkiln

    copy = copy_bundle(diamonds_bundle, tmp_path)
    lines = (copy / "MANIFEST.sha256").read_text().splitlines()
    (copy / "MANIFEST.sha256").write_text("".join(f"{line}\n" for line in lines if line.endswith("card.json")))
    (copy / "train.py").write_text("print('changed')\n")
    result = cli("inspect", copy)
    one_line_error(result, "bundle does not verify: ")
    assert "model.skops (NOT IN MANIFEST)" in result.stderr and "train.py (NOT IN MANIFEST)" in result.stderr
    with pytest.raises(mlkiln.MlkilnError, match="does not list model.skops"):
        mlkiln.load(copy)
    (copy / "MANIFEST.sha256").write_text("")
    one_line_error(cli("inspect", copy), "card.json (NOT IN MANIFEST)")


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda d: d / "nope.csv", ["--target", "y"], "data file not found"),
        (lambda d: d, ["--target", "y"], "is a directory"),
        (lambda d: _write(d / "empty.csv", b""), ["--target", "y"], "is empty"),
        (lambda d: _write(d / "header.csv", b"x,y\n"), ["--target", "y"], "no data rows"),
        (lambda d: _write(d / "bin.parquet", bytes(range(256)) * 8), ["--target", "y"], "cannot read"),
        (lambda d: _write(d / "ok.csv", b"x,y\n1,2\n3,4\n5,6\n"), ["--target", "z"], "target column 'z' not found"),
        (lambda d: _write(d / "one.csv", b"x,y\n1,a\n2,a\n3,a\n4,a\n"), ["--target", "y"], "one value ('a') in every row"),
        (lambda d: _write(d / "ok2.csv", b"x,y\n1,2\n"), [], "--target is required"),
        (lambda d: _write(d / "page.csv", b"\n<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"),
         ["--target", "y"], "is an HTML or XML document"),
        (lambda d: _link(d / "loop.csv", d / "loop.csv"), ["--target", "y"], "a symbolic link in a loop"),
        # a test split of most rows: named by its flag, and no advice to read text classes as numbers
        (lambda d: _write(d / "most.csv", b"x,y\n" + b"".join(b"%d,%s\n" % (i % 7, b"abc"[i % 3:i % 3 + 1])
                                                                for i in range(30))),
         ["--target", "y", "--test-size", "0.9"], "--test-size 0.9: leaves 3 of the 30 rows for training: class"),
        (lambda d: _link(d / "dangling.csv", d / "gone.csv"), ["--target", "y"],
         "dangling.csv is a symbolic link to"),
    ],
)
def test_bad_input_one_line_error_and_nothing_written(tmp_path, make, args, message):
    data = make(tmp_path)
    out = tmp_path / "out"
    result = cli("train", data, *args, "-o", out)
    one_line_error(result, message)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_existing_output_is_not_replaced(diamonds_csv, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    result = cli("train", diamonds_csv, "--target", "price", "-o", out)
    one_line_error(result, "already exists")


def test_predict_errors_are_one_line(diamonds_bundle, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"carat": [0.3]}).to_csv(bad, index=False)
    out = tmp_path / "out.csv"
    one_line_error(cli("predict", diamonds_bundle, bad, "-o", out), "missing column")
    assert not out.exists()
    one_line_error(cli("predict", tmp_path / "nobundle", bad, "-o", out), "not a model bundle")


def _heavy_modules_after(body: str, cwd) -> str:
    """Run ``body`` (calls of ``main``) in a fresh interpreter; the heavy modules loaded by then, as printed."""
    code = ("import contextlib, io, sys\nfrom mlkiln.cli import main\n" + body
            + "print(sorted(m for m in ('sklearn', 'pandas', 'skops') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _refused(args: list[str], words: str) -> str:
    """Code asserting that ``main(args)`` exits 2 with ``words`` in its error."""
    return ("with contextlib.redirect_stderr(io.StringIO()) as err:\n"
            f"    assert main({args!r}) == 2\n"
            f"assert {words!r} in err.getvalue(), err.getvalue()\n")


def test_a_missing_data_file_is_refused_before_scikit_learn_is_loaded(diamonds_bundle, tmp_path):
    """Every command that reads a data file says it is missing in a blink: it took 3 s of imports to say so."""
    missing, b = str(tmp_path / "nope.csv"), diamonds_bundle
    calls = [["train", missing, "--target", "y"], ["predict", b, missing, "-o", "o.csv"], ["evaluate", b, missing],
             ["drift", b, missing]]
    assert _heavy_modules_after("".join(_refused(a, "data file not found") for a in calls), tmp_path) == "[]"


@pytest.mark.parametrize("command", [["predict", "{b}", "{d}", "-o", "o.csv"], ["evaluate", "{b}", "{d}"],
                                     ["drift", "{b}", "{d}"], ["serve", "{b}"]], ids=lambda c: c[0])
def test_a_path_that_is_no_bundle_is_refused_before_scikit_learn_is_loaded(diamonds_csv, tmp_path, command):
    """No directory, or a directory without a manifest: the bundle's own words, before any heavy import."""
    cases = [(tmp_path / "nowhere", "is not a model bundle directory (it does not exist)"),
             (tmp_path, "has no MANIFEST.sha256; it is not an mlkiln bundle or it is incomplete")]
    body = "".join(_refused([a.format(b=bundle, d=diamonds_csv) for a in command], words) for bundle, words in cases)
    assert _heavy_modules_after(body, tmp_path) == "[]"


def test_a_report_or_drift_page_never_replaces_the_data_it_reads(diamonds_bundle, tmp_path):
    """evaluate --report and drift -o write a page (and its JSON): never onto the data, even through a link."""
    data = tmp_path / "week.csv"
    pd.read_csv(Path(diamonds_bundle).parent / "diamonds.csv").head(200).to_csv(data, index=False)
    before = data.read_bytes()
    (tmp_path / "link.csv").symlink_to(data)
    (tmp_path / "link.html").symlink_to(data)
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_bytes(before)
    (folder / "a.html").symlink_to(folder / "a.csv")
    for command in (["evaluate", diamonds_bundle, tmp_path / "link.csv", "--report", tmp_path / "link.html"],
                    ["drift", diamonds_bundle, data, "-o", tmp_path / "link.html"],
                    ["drift", diamonds_bundle, folder, "-o", folder / "a.html"]):
        one_line_error(cli(*command), "must not be, or hold, one of the input files")
    # nor any other file, under any name but a page's (report -o week.csv replaced the data with a page)
    other = tmp_path / "other.csv"
    other.write_bytes(before)
    for command in (["evaluate", diamonds_bundle, data, "--report", data],
                    ["drift", diamonds_bundle, data, "-o", other], ["report", diamonds_bundle, "-o", other]):
        one_line_error(cli(*command), "name the page .html")
    assert data.read_bytes() == before == other.read_bytes() and (folder / "a.csv").read_bytes() == before
    assert not (tmp_path / "other.json").exists() and not (tmp_path / "week.json").exists()


def test_a_report_page_named_json_is_refused_and_evaluate_json_is_strict(diamonds_bundle, tmp_path):
    data = tmp_path / "week.csv"
    pd.read_csv(Path(diamonds_bundle).parent / "diamonds.csv").head(200).to_csv(data, index=False)
    one_line_error(cli("evaluate", diamonds_bundle, data, "--report", tmp_path / "ev.json"), "name the page .html")
    one_line_error(cli("drift", diamonds_bundle, data, "-o", tmp_path / "dr.JSON"), "name the page .html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["week.csv"]
    pd.read_csv(data).head(1).to_csv(tmp_path / "one.csv", index=False)  # R2 of one row is undefined
    done = cli("evaluate", diamonds_bundle, tmp_path / "one.csv", "--json", "--report", tmp_path / "one.html")
    assert done.returncode == 0 and "NaN" not in done.stdout
    assert json.loads(done.stdout)["r2"] is None

@pytest.mark.parametrize("name", ["d.json", "d.csv.gz", "d.xlsx"])
def test_example_output_is_csv_or_parquet_by_name(tmp_path, name):
    one_line_error(cli("example", "diamonds", "-o", tmp_path / name), "neither .csv nor .parquet")
    assert not list(tmp_path.iterdir())

def test_an_output_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(diamonds_bundle, diamonds_csv,
                                                                                 tmp_path):
    target = copy_bundle(diamonds_bundle, tmp_path)
    (tmp_path / "current").symlink_to(target, target_is_directory=True)
    data = tmp_path / "d.csv"
    pd.read_csv(diamonds_csv).head(300).to_csv(data, index=False)
    done = cli("train", data, "--target", "price", "--models", "linear", "--no-ensemble", "-o", tmp_path / "current",
               "--force", "-q")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "current").is_symlink() and mlkiln.load(tmp_path / "current").card.data.rows == 300
    (tmp_path / "scored.csv").symlink_to(tmp_path / "old-scores.csv")
    (tmp_path / "old-scores.csv").write_text("prediction\n0\n")  # scores written before
    assert cli("predict", target, data, "-o", tmp_path / "scored.csv").returncode == 0
    assert (tmp_path / "scored.csv").is_symlink() and len(pd.read_csv(tmp_path / "old-scores.csv")) == 300
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no old link or copy left behind


def test_an_output_that_holds_an_input_is_refused_even_with_force(diamonds_bundle, tmp_path, monkeypatch):
    """--force replaces an output directory, never the data or the bundle it reads, nor the working directory."""
    project = tmp_path / "project"
    project.mkdir()
    data = project / "d.csv"
    pd.read_csv(Path(diamonds_bundle).parent / "diamonds.csv").head(300).to_csv(data, index=False)
    (project / "notes.txt").write_text("mine")
    one_line_error(cli("train", data, "--target", "price", "-o", project, "--force"), "is, or holds, the input")
    one_line_error(cli("train", project / "*.csv", "--target", "price", "-o", project, "--force"), "is, or holds")
    assert sorted(p.name for p in project.iterdir()) == ["d.csv", "notes.txt"]
    bundle = copy_bundle(diamonds_bundle, tmp_path)
    one_line_error(cli("export", bundle, "--format", "mlflow", "-o", bundle, "--force"), "is, or holds, the input")
    one_line_error(cli("predict", bundle, data, "-o", bundle, "--force"), "is, or holds, the bundle")
    one_line_error(cli("predict", bundle, data, "-o", bundle / "scored.csv"), "inside a bundle")
    assert (bundle / "card.json").is_file() and not (bundle / "scored.csv").exists()
    monkeypatch.chdir(project)
    one_line_error(cli("train", "d.csv", "--target", "price", "-o", ".", "--force"), "working directory")
    one_line_error(cli("train", "d.csv", "--target", "price", "-o", "..", "--force"), "working directory")
    assert sorted(p.name for p in project.iterdir()) == ["d.csv", "notes.txt"]
    # nor a folder of someone's files: --force replaces what mlkiln wrote there, or an empty folder
    docs = tmp_path / "docs"
    (docs / "thesis").mkdir(parents=True)
    (docs / "thesis" / "ch1.txt").write_text("mine")
    for command in (["train", "d.csv", "--target", "price", "--models", "linear", "-o", docs, "--force"],
                    ["export", bundle, "--format", "mlflow", "-o", docs, "--force"],
                    ["predict", bundle, project / "*.csv", "-o", docs, "--force"]):
        one_line_error(cli(*command), "holds files mlkiln did not write (thesis")
    assert (docs / "thesis" / "ch1.txt").read_text() == "mine"
    scored = tmp_path / "scored"
    for _ in range(2):  # scored parts are replaced with --force
        assert cli("predict", bundle, project / "*.csv", "-o", scored, "--force").returncode == 0
    assert [p.name for p in scored.iterdir()] == ["part-00000.parquet"]


@pytest.mark.parametrize("args, message", [
    (["train", "DATA", "--target", "price", "--seed", str(2**32)], "--seed 4294967296: must be a whole number, at most"),
    (["example", "machine-failure-synthetic", "--rows", "5", "-o", "OUT", "--seed", "-1"], "--seed -1"),
    (["drift", "BUNDLE", "DATA", "--fail-above", "nan"], "--fail-above nan"),
    (["drift", "BUNDLE", "DATA", "--fail-above", "-1"], "--fail-above -1"),
    (["serve", "BUNDLE", "--port", "70000"], "--port 70000: must be a TCP port"),
    (["serve", "BUNDLE", "--port", "-1"], "--port -1"),
    (["serve", "BUNDLE", "--workers", "1000"], "--workers 1000: must be between 1 and the"),
], ids=["seed-too-large", "example-seed-negative", "fail-above-nan", "fail-above-negative", "port-too-large",
        "port-negative", "workers-beyond-cores"])
def test_arguments_out_of_range_are_one_line_errors(diamonds_bundle, diamonds_csv, tmp_path, args, message):
    out = tmp_path / "out.csv"
    args = [{"DATA": diamonds_csv, "BUNDLE": diamonds_bundle, "OUT": out}.get(a, a) for a in args]
    one_line_error(cli(*args), message)
    assert not out.exists() and not (tmp_path / "out").exists()


def test_more_jobs_than_cores_are_capped_with_a_warning(caplog):
    import joblib

    from mlkiln.tuning import Compute

    with Compute(n_jobs=1000) as compute:
        assert compute.cores == joblib.cpu_count()
    assert "more than the" in caplog.text


def test_every_command_takes_quiet(diamonds_bundle):
    """-q on any command: a script can silence progress messages without knowing which command takes it."""
    from mlkiln.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert all(any("-q" in a.option_strings for a in sub._actions) for sub in commands.values()), \
        [name for name, sub in commands.items() if not any("-q" in a.option_strings for a in sub._actions)]
    result = cli("inspect", diamonds_bundle, "-q")
    assert result.returncode == 0 and "ok" in result.stdout and result.stderr == ""


def test_predict_writes_into_a_named_pipe_and_keeps_a_private_file_private(diamonds_bundle, diamonds_csv, tmp_path):
    """A named pipe (like a device) is written into, not renamed over: it was replaced by a regular file and its
    reader waited forever. A file replaced keeps its permissions: a 0600 file came back 0644."""
    import os
    import stat
    import threading

    rows = tmp_path / "rows.csv"
    pd.read_csv(diamonds_csv).head(50).to_csv(rows, index=False)
    pipe = tmp_path / "scores.csv"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    result = cli("predict", diamonds_bundle, rows, "-o", pipe)
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode) and received and received[0].count(b"\n") == 51
    sent = tmp_path / "sent.txt"  # `{ echo x; mlkiln predict -o /dev/stdout; } > sent.txt`: x, then the rows
    sent.write_text("x\n")
    with open(sent, "ab") as out:
        done = subprocess.run([sys.executable, "-m", "mlkiln", "predict", diamonds_bundle, rows, "-o", "/dev/stdout"],
                              stdout=out, stderr=subprocess.PIPE, timeout=120)
    assert done.returncode == 0 and sent.read_text().startswith("x\n\"carat\"") and sent.read_text().count("\n") == 52
    private = tmp_path / "private.csv"
    private.write_text("prediction\n1\n")  # scores written before
    private.chmod(0o600)
    assert cli("predict", diamonds_bundle, rows, "-o", private).returncode == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text().count("\n") == 51


def test_predict_to_a_closed_pipe_stops_quietly(diamonds_bundle, diamonds_csv, tmp_path):
    """`predict -o - | head -2` (README): the reader leaves early; no "error: Broken pipe", SIGPIPE's status."""
    rows = tmp_path / "rows.csv"
    pd.concat([pd.read_csv(diamonds_csv)] * 4).to_csv(rows, index=False)
    process = subprocess.Popen([sys.executable, "-m", "mlkiln", "predict", diamonds_bundle, rows, "-o", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    header = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and header.startswith(b'"carat"')
    assert "error" not in stderr and "Traceback" not in stderr, stderr


def test_workers_started_before_the_search_are_the_ones_it_uses_and_a_failure_ends_them():
    """train's CV workers start in the background (overlapping the imports and the reading); the search reuses
    those processes rather than starting its own, and a failed command ends them instead of waiting for them."""
    code = """
import os, time, joblib
from mlkiln import workers
from mlkiln.tuning import Compute
workers.start(2)
workers._state["thread"].join()
with Compute(2) as compute, compute.parallel():
    used = set(joblib.Parallel()(joblib.delayed(os.getpid)() for _ in range(8)))
assert used <= workers.ready_pids and len(workers.ready_pids) == 2, (used, workers.ready_pids)
workers.stop()
for _ in range(100):
    alive = []
    for pid in workers.ready_pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    if not alive:
        break
    time.sleep(0.05)
assert not alive, alive
print("ok")
"""
    env = {**os.environ, "LOKY_MAX_CPU_COUNT": "2"}  # two workers, though the suite gives each of its own one core
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_cluster_without_dask_installed_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    (tmp_path / "broken.csv").write_text("a,b\n1,2,3,4\n\"unclosed\n")  # reading it would fail otherwise
    monkeypatch.setitem(sys.modules, "distributed", None)  # as on a machine without the dask extra
    one_line_error(cli("train", tmp_path / "broken.csv", "--target", "a", "--cluster", "local", "-o", tmp_path / "m"),
                   "--cluster: a Dask cluster needs the dask extra: pip install 'mlkiln[dask]'")
    monkeypatch.setenv("MLKILN_DASK_SCHEDULER", "tcp://127.0.0.1:9")
    one_line_error(cli("train", tmp_path / "broken.csv", "--target", "a", "-o", tmp_path / "m"),
                   "MLKILN_DASK_SCHEDULER (set in the environment): a Dask cluster needs the dask extra")
    assert not (tmp_path / "m").exists()


def test_openmp_threads_spin_briefly_unless_the_user_chose_a_wait_policy():
    """Importing mlkiln (before scikit-learn) sets GOMP_SPINCOUNT=10000: neither libgomp's default spin, which
    starves other processes, nor passive waits, 3.7x slower on a large final fit of an idle machine."""
    show = "import os, mlkiln; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["10000", "None"]
    for chosen in ({"OMP_WAIT_POLICY": "passive"}, {"GOMP_SPINCOUNT": "5"}):
        out = subprocess.run([sys.executable, "-c", show], env={**env, **chosen}, capture_output=True, text=True,
                             check=True)
        assert out.stdout.split() == [chosen.get("GOMP_SPINCOUNT", "None"), chosen.get("OMP_WAIT_POLICY", "None")]


def test_names_of_no_format_are_refused_before_scikit_learn_is_imported(tmp_path, linear_bundle):
    """`predict -o scores.xlsx` and `report -o notes.txt` were refused only once the bundle was loaded (3 s here;
    the sweep measured up to 56 s on a busy machine): one line, exit 2, and scikit-learn never imported."""
    import subprocess
    import sys

    (tmp_path / "new.csv").write_text("a\n1\n")
    for args, said in ((["predict", str(linear_bundle), "new.csv", "-o", "scores.xlsx"], "neither .csv nor .parquet"),
                       (["report", str(linear_bundle), "-o", "notes.txt"], "not named .html"),
                       # a typo among the families: nothing registered them at run time without importing the registry
                       (["train", "new.csv", "--target", "a", "--models", "hgbb"], "unknown: hgbb; choose from")):
        code = ("import sys; from mlkiln.cli import main; rc = main(%r); "
                "sys.exit(rc + 10 * ('sklearn' in sys.modules))" % args)
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 2 and said in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
