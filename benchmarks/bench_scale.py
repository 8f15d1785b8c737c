"""`mlkiln predict` at scale: streaming vs main's whole-file predict, 5M and 50M rows, and on Dask.

    python benchmarks/bench_scale.py [--rows 5000000] [--big-rows 50000000] [--parts 20] [--keep]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
