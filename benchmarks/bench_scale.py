"""mlkiln at scale: `train --models linear` vs the plain scikit-learn way, and `predict` streaming, 5M / 50M rows, Dask.

    python benchmarks/bench_scale.py [--train-rows 1000000 5000000] [--default-rows 1000000 5000000]
                                     [--train-only] [--repeats 1]
                                     [--rows 5000000] [--big-rows 50000000] [--parts 20] [--keep]

Train: for each of ``--train-rows``, one CSV of the grown table; in fresh
processes, ``mlkiln train CSV --target price --models linear`` and the plain
scikit-learn way (``pd.read_csv``, the 80/20 split, a OneHotEncoder +
StandardScaler + LinearRegression pipeline, 3-fold ``cross_val_score``, the
final ``fit`` and the test score, one process as a user writes it), printing
the ratios mlkiln / plain of time and peak RSS, the table's in-memory size
(``memory_usage(deep=True)`` of mlkiln's read) and, from one more run inside
an instrumented process, the time and peak RSS of each step of the workflow.
Default train: for each of ``--default-rows``, ``mlkiln train FILE --target
price`` with every family (the sampled search), its time, peak RSS above the
read table and test R2.

Every run is a fresh process, timed end to end with ``/usr/bin/time -v``
(wall seconds, peak RSS of the process) as a user runs it. Inputs are the
diamonds table resampled with 1 % jitter (``_common.grown_diamonds``),
generated once; the big input repeats it as Parquet row groups, so it is the
same rows at ten times the count. Bundles are trained with the CLI on a
50,000-row sample: ``--models linear`` and ``--models hgb``.

"main" is the predict_file of main where this branch started (read the whole
table, score, write), loaded from ``git show $(git merge-base HEAD
main):src/mlkiln/predict.py`` into this installation, so both sides share
everything else. Big files are deleted at
the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from _common import grown_diamonds

HERE = Path(__file__).resolve().parent
MAIN_PREDICT = """
import importlib.util, sys, subprocess
source = subprocess.run(["git", "-C", {repo!r}, "show", {ref!r} + ":src/mlkiln/predict.py"], capture_output=True, text=True, check=True).stdout
path = {tmp!r} + "/main_predict.py"
open(path, "w").write(source)
import mlkiln
spec = importlib.util.spec_from_file_location("mlkiln._main_predict", path)
module = importlib.util.module_from_spec(spec)
module.__package__ = "mlkiln"
spec.loader.exec_module(module)
print(len(module.predict_file(sys.argv[1], sys.argv[2], sys.argv[3])))
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process."""
    result = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{result.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    hours, minutes, seconds = (float(g or 0) for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return hours * 3600 + minutes * 60 + seconds, rss / 1024


PLAIN_TRAIN = """
import sys
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

frame = pd.read_csv(sys.argv[1])
X, y = frame.drop(columns="price"), frame["price"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
model = make_pipeline(
    make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["cut", "color", "clarity"]),
                            remainder=StandardScaler()),
    LinearRegression(),
)
scores = cross_val_score(model, X_train, y_train, cv=3)
model.fit(X_train, y_train)
print(f"cv r2 {scores.mean():.4f} test r2 {model.score(X_test, y_test):.4f}")
"""

#: the workflow's steps, as names in mlkiln.workflow (and the Run's save), timed and measured one by one
STEPS = ("load_frame", "understand", "split_train_test", "select", "fit_within_latency",
         "metrics.evaluate", "drift.training_profile", "report.diagnostics", "Run.save")
STEP_PEAKS = """
import functools, json, sys, time
sys.path.insert(0, {here!r})
from _common import peak_rss_mb, reset_peak_rss, rss_mb
import mlkiln.cli
from mlkiln import workflow
steps = []

def measured(owner, name, label):
    inner = getattr(owner, name)
    @functools.wraps(inner)
    def step(*args, **kwargs):
        before, start = rss_mb(), time.perf_counter()
        reset_peak_rss()
        try:
            return inner(*args, **kwargs)
        finally:
            steps.append((label, time.perf_counter() - start, before, peak_rss_mb()))
    setattr(owner, name, step)

for step in {steps!r}:
    owner, _, name = step.rpartition(".")
    measured({{"": workflow, "metrics": workflow.metrics, "drift": workflow.drift, "report": workflow.report,
              "Run": workflow.Run}}[owner], name, step)
code = mlkiln.cli.main(sys.argv[1:])
print(json.dumps(steps))
sys.exit(code)
"""


def mlkiln(*args) -> list[str]:
    return [sys.executable, "-m", "mlkiln", *map(str, args), "-q"]


def prepare(folder: Path, rows: int, big_rows: int, parts: int) -> dict:
    files = {"parquet": folder / f"rows{rows}.parquet", "big": folder / f"rows{big_rows}.parquet",
             "csv": folder / f"rows{rows}.csv", "parts": folder / f"parts{parts}"}
    if not files["parquet"].exists():
        frame = grown_diamonds(rows)
        frame.to_parquet(files["parquet"], index=False)
        frame.to_csv(files["csv"], index=False)
        files["parts"].mkdir()
        for i, chunk in enumerate(np.array_split(np.arange(rows), parts)):
            frame.iloc[chunk].to_parquet(files["parts"] / f"part-{i:02d}.parquet", index=False)
        frame.sample(50_000, random_state=0).to_parquet(folder / "sample.parquet", index=False)
        del frame
    if big_rows and not files["big"].exists():
        table = pq.read_table(files["parquet"])
        with pq.ParquetWriter(files["big"], table.schema) as writer:
            for _ in range(big_rows // rows):
                writer.write_table(table, row_group_size=1 << 20)
        del table
    for family in ("linear", "hgb"):
        if not (folder / family / "MANIFEST.sha256").exists():
            subprocess.run(mlkiln("train", folder / "sample.parquet", "--target", "price", "--models", family,
                                  "-o", folder / family, "--force"), check=True)
    return files


def row(label: str, rows: int, seconds: float, rss: float, base: float | None = None) -> None:
    ratio = f"{base / seconds:6.1f}x" if base else ""
    print(f"{label:44} {rows:>12,} {seconds:8.1f} {rows / seconds:12,.0f} {rss:9,.0f} {ratio}", flush=True)


def train_part(folder: Path, rows: int, repeats: int = 1) -> None:
    """``train --models linear`` against the plain way on one generated CSV, fresh processes; then per step.

    With ``repeats``, the two sides alternate that many times and the medians are compared (a shared machine's
    load moves single runs by a third).
    """
    csv = folder / f"train{rows}.csv"
    if not csv.exists():
        grown_diamonds(rows).to_csv(csv, index=False)
    size = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); from _common import "
                           "rss_mb; from mlkiln.data import read_table; frame = read_table(sys.argv[1]); "
                           "print(frame.memory_usage(deep=True).sum() / 2**20, rss_mb())", csv],
                          capture_output=True, text=True, check=True)
    frame_mb, table_mb = map(float, size.stdout.split())
    plain, ours = [], []
    for _ in range(repeats):
        plain.append(timed([sys.executable, "-c", PLAIN_TRAIN, csv]))
        ours.append(timed(mlkiln("train", csv, "--target", "price", "--models", "linear", "-o",
                                 folder / "linear-train", "--force")))
    (plain_s, plain_rss), (ours_s, ours_rss) = np.median(plain, axis=0), np.median(ours, axis=0)
    if repeats > 1:
        print(f"  runs (s): plain {[round(t, 1) for t, _ in plain]}, mlkiln {[round(t, 1) for t, _ in ours]}")
    print(f"train --models linear, {rows:,} rows ({csv.stat().st_size / 2**20:,.0f} MB CSV; the table in memory: "
          f"RSS {table_mb:,.0f} MB once mlkiln has read it, a {frame_mb:,.0f} MB DataFrame)", flush=True)
    print(f"  plain scikit-learn   {plain_s:7.1f} s  peak {plain_rss:7,.0f} MB", flush=True)
    print(f"  mlkiln               {ours_s:7.1f} s  peak {ours_rss:7,.0f} MB   time ratio {ours_s / plain_s:.2f}x "
          f"(goal <= 0.5x), peak RSS ratio {ours_rss / plain_rss:.2f}x, peak above the read table "
          f"{ours_rss - table_mb:,.0f} MB (goal <= 1,024)", flush=True)
    result = subprocess.run([sys.executable, "-c", STEP_PEAKS.format(here=str(HERE), steps=STEPS), "train", csv,
                             "--target", "price", "--models", "linear", "-o", folder / "linear-train", "--force", "-q"],
                            capture_output=True, text=True, check=True)
    print(f"  {'step':28} {'s':>6} {'RSS before MB':>14} {'peak MB':>8}")
    for name, seconds, before, peak in json.loads(result.stdout.strip().splitlines()[-1]):
        print(f"  {name:28} {seconds:6.1f} {before:14,.0f} {peak:8,.0f}", flush=True)
    csv.unlink()


def default_train_part(folder: Path, rows: int) -> None:
    """The default ``train`` (every family, the sampled search) on one generated Parquet file: time, peak, test R2."""
    data = folder / f"default{rows}.parquet"
    if not data.exists():
        grown_diamonds(rows).to_parquet(data, index=False)
    table_mb = float(subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); "
                                     "from _common import rss_mb; from mlkiln.data import read_table; "
                                     "frame = read_table(sys.argv[1]); print(rss_mb())", data],
                                    capture_output=True, text=True, check=True).stdout)
    seconds, rss = timed(mlkiln("train", data, "--target", "price", "-o", folder / "default-train", "--force"))
    card = json.loads((folder / "default-train" / "card.json").read_text())
    print(f"default train, {rows:,} rows: {seconds:.1f} s (goal <= 300), peak {rss:,.0f} MB, {rss - table_mb:,.0f} MB "
          f"above the read table ({table_mb:,.0f} MB; goal <= 2,048), test R2 {card['metrics']['test']['r2']:.4f} "
          f"(goal >= 0.985), model {card['model']['family']}; steps "
          + ", ".join(f"{s['step']} {s['rows']:,} rows {s['seconds']:.1f} s" for s in card["tuning"]["steps"]),
          flush=True)
    data.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, nargs="*", default=[1_000_000, 5_000_000],
                        help="table sizes of the train comparison (none: skip it)")
    parser.add_argument("--default-rows", type=int, nargs="*", default=[1_000_000, 5_000_000],
                        help="rows of the default train runs (every family; none: skip them)")
    parser.add_argument("--train-only", action="store_true", help="skip the predict parts, which take long")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side of the train comparison (median)")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--big-rows", type=int, default=50_000_000, help="0 to skip")
    parser.add_argument("--parts", type=int, default=20)
    parser.add_argument("--families", nargs="+", default=["linear", "hgb"])
    parser.add_argument("--big-families", nargs="+", default=["linear"])
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"], help="inputs compared with main")
    parser.add_argument("--no-dask", action="store_true", help="skip the 20-file dataset runs")
    parser.add_argument("--dir", default=os.environ.get("MLKILN_BENCH_DIR", "/tmp/mlkiln-bench-scale"))
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    for rows in args.train_rows:
        train_part(folder, rows, args.repeats)
    for rows in args.default_rows:
        default_train_part(folder, rows)
    if args.train_only:
        return
    files = prepare(folder, args.rows, args.big_rows, args.parts)
    out = folder / "out"
    tmp = tempfile.mkdtemp()
    repo = str(HERE.parent)
    ref = subprocess.run(["git", "-C", repo, "merge-base", "HEAD", "main"], capture_output=True, text=True,
                         check=True).stdout.strip()
    print(f"{'run':44} {'rows':>12} {'wall s':>8} {'rows/s':>12} {'peak MB':>9} speed-up vs main")
    for family in args.families:
        bundle = folder / family
        for fmt in args.formats:
            main_s, main_rss = timed([sys.executable, "-c", MAIN_PREDICT.format(repo=repo, ref=ref, tmp=tmp), bundle,
                                      files[fmt], out.with_suffix(".parquet")])
            row(f"{family} {fmt} -> parquet, main (whole file)", args.rows, main_s, main_rss)
            seconds, rss = timed(mlkiln("predict", bundle, files[fmt], "-o", out.with_suffix(".parquet")))
            row(f"{family} {fmt} -> parquet, streaming", args.rows, seconds, rss, main_s)
        if args.big_rows and family in args.big_families:
            seconds, rss = timed(mlkiln("predict", bundle, files["big"], "-o", out.with_suffix(".parquet")))
            row(f"{family} parquet -> parquet, streaming", args.big_rows, seconds, rss)
        if args.no_dask:
            continue
        local_s, local_rss = timed(mlkiln("predict", bundle, files["parts"], "-o", folder / "local-parts", "--force"))
        row(f"{family} {args.parts} files, streaming, one process", args.rows, local_s, local_rss)
        dask_s, dask_rss = timed(mlkiln("predict", bundle, files["parts"], "-o", folder / "dask-parts", "--force",
                                        "--cluster", "local"))
        row(f"{family} {args.parts} files, --cluster local (2 workers)", args.rows, dask_s, dask_rss, local_s)
        a, b = pd.read_parquet(folder / "local-parts"), pd.read_parquet(folder / "dask-parts")
        assert np.array_equal(a["prediction"].to_numpy(), b["prediction"].to_numpy()), "dask != local"
        print(f"{'':44} dask and local predictions identical ({len(a):,} rows)", flush=True)
    shutil.rmtree(tmp)
    for path in (out.with_suffix(".parquet"), folder / "local-parts", folder / "dask-parts"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if not args.keep:
        for path in files.values():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
