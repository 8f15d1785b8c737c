"""Time drawing a bundle's report page from its ``report.json`` (the figures are nearly all of it).

    python benchmarks/bench_report.py BUNDLE [BUNDLE ...] [--rounds 5]

For each bundle, in a fresh process, ``mlkiln.report.render_html`` of its
saved report document: once cold (matplotlib's import, its font and text
caches empty: what ``mlkiln train`` pays, drawing one page per command), then
``--rounds`` times warm; prints both, with the number of figures. To compare
two versions of the drawing code, run it at each commit on the same bundles,
one after the other on a quiet machine, e.g. with a worktree of the older one
first on ``PYTHONPATH``::

    git worktree add /tmp/old OLD_COMMIT
    PYTHONPATH=/tmp/old/src python benchmarks/bench_report.py B1 B2
    python benchmarks/bench_report.py B1 B2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def row(bundle: Path, rounds: int) -> str:
    """One bundle's table row, timed in this process (which must not have drawn a figure yet)."""
    from mlkiln.report import REPORT_JSON, render_html

    doc = json.loads((bundle / REPORT_JSON).read_text())
    start = time.perf_counter()
    page = render_html(doc)
    first = time.perf_counter() - start
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        render_html(doc)
        times.append(time.perf_counter() - start)
    return f"| {bundle.name} | {page.count('<img ')} | {first:.3f} | {statistics.median(times):.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # one bundle, in this process
    args = parser.parse_args()
    if args.row:
        print(row(args.bundles[0], args.rounds))
        return
    import mlkiln

    print(f"mlkiln from {Path(mlkiln.__file__).parent}")
    print("| bundle | figures | first (cold) s | then (median) s |")
    print("| --- | ---: | ---: | ---: |")
    for bundle in args.bundles:
        subprocess.run([sys.executable, __file__, str(bundle), "--rounds", str(args.rounds), "--row"], check=True)


if __name__ == "__main__":
    main()
