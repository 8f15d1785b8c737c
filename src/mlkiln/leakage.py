"""Leaks no single column shows: the target rebuilt from a few columns, scores too good to be true, and test rows
that copy training rows.

Three checks, pure functions over pandas/numpy data that return small
records with their evidence (columns, the relation in one line, the score,
the rows used), so the terminal, the card and ``report.json`` say the same.

:func:`find_combination_leaks` runs while screening, on the screening sample:
it looks for at most :data:`MAX_MEMBERS` numeric or date columns from which
a linear fit rebuilds the target (``total = a + b``, ``duration = end -
start``), also on a log scale (``ratio = a / b`` is ``log ratio = log a -
log b``). :func:`ceiling_alarm` runs after tuning: a validation score at the
metric's ceiling is a warning sign of its own, named with the columns the
model leans on. :func:`copied_rows` runs after the split: test rows that are
exact copies of training rows are scored on what the model saw.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

#: a least-squares fit of the target on a few columns this good is a relation, not a signal
RELATION_R2 = 0.9999
#: classification: held-out balanced accuracy of a linear model or a shallow tree on a few columns
RELATION_BALANCED_ACCURACY = 0.999
#: at most this many columns make one relation (the search grows pairs into triples)
MAX_MEMBERS = 3
#: columns searched; with more, the ones that correlate most with the target (see find_combination_leaks)
MAX_CANDIDATES = 200
#: subsets of each size fitted exactly, best search score first
VERIFIED_PER_SIZE = 3
#: regression: subsets whose search R2 (missing values at the mean) is below this are not fitted exactly;
#: an exact relation stays above it unless a member misses more than about a tenth of its values
SEARCH_R2 = 0.9
#: pairs grown into triples
PAIRS_GROWN = 10
#: relations found in one screening; each removes its columns before the next search
MAX_RELATIONS = 3
#: depth of the tree that tries the classification leak's columns
TREE_DEPTH = 3
#: the tree's held-out balanced accuracy from which a linear model is tried as well
LINEAR_GATE = 0.95
#: classification: rows the tree and the linear model are trained on, at most; the other rows score them
TRAINING_ROWS = 5_000
#: validation scores at the ceiling, per metric: higher is better for each
CEILINGS = {"r2": 0.999, "roc_auc": 0.999, "accuracy": 1.0}
#: accuracy at the ceiling, or classes separated by a few columns, is a surprise only when the smallest class
#: has this many (held-out) rows
MIN_CLASS_ROWS = 100
#: rows the permutation importance of a ceiling alarm is computed on, at most, with each column shuffled
#: ALARM_REPEATS times...
IMPORTANCE_ROWS = 2_000
ALARM_REPEATS = 3
#: ...and at most this many rows scored in all: a wide table gets a smaller sample (never below
#: ALARM_MIN_ROWS), as the alarm names only the top columns. 61 pixel columns of scikit-learn's digits at 1,437
#: rows scored 263k rows through a 5,100-tree boosted model: 87 s of a 350 s run
IMPORTANCE_SCORED = 100_000
ALARM_MIN_ROWS = 200
#: ...and at most this many rows x trees: a large model gets fewer rows, and below ALARM_MIN_ROWS one shuffle per
#: column. The 5,100 trees of digits' model scored 100k rows, 40 s of a 200 s training; now 200 rows, once each
ALARM_TREE_ROWS = 50_000_000


@dataclass(frozen=True)
class CombinationLeak:
    """A few columns from which the target is rebuilt (nearly) exactly.

    ``columns`` are the ones to exclude; ``kept`` the ``--keep`` columns the
    relation also uses (never blamed). ``scale`` is ``raw`` or ``log`` (log of
    the target on logs of positive columns); ``metric`` is ``R2`` or
    ``balanced accuracy``, scored on ``rows`` rows of the screening sample.
    """

    columns: tuple[str, ...]
    kept: tuple[str, ...]
    relation: str
    metric: str
    score: float
    rows: int
    scale: str

    def to_dict(self) -> dict:
        return {"kind": "combination", **asdict(self)}


@dataclass(frozen=True)
class CeilingAlarm:
    """A validation score at its metric's ceiling, with the columns the model leans on most.

    ``importances`` are mean drops of the score when a column is shuffled, on
    ``rows`` rows, in the order of ``columns``; ``message`` is the one line
    shown in the terminal, the card and the report.
    """

    metric: str
    score: float
    columns: tuple[str, ...]
    importances: tuple[float, ...]
    rows: int
    message: str

    def to_dict(self) -> dict:
        return {"kind": "ceiling", **asdict(self)}


#: test rows that copy a training row (every column, the target too) are reported above this share of the test rows
COPIED_SHARE = 0.01


@dataclass(frozen=True)
class CopiedRows:
    """Test rows that are exact copies of training rows, every input column and the target alike."""

    rows: int
    test_rows: int
    message: str

    def to_dict(self) -> dict:
        return {"kind": "copies", **asdict(self)}


def copied_rows(train_rows: np.ndarray, test_rows: np.ndarray) -> CopiedRows | None:
    """The test rows that copy a training row, when more than :data:`COPIED_SHARE` of them do; the rows are given
    as their hashes, every column and the target (:func:`mlkiln.data.row_hashes`).

    A table of repeated rows (sklearn's diabetes four times over) scored test R2 1.0000 with a model that
    remembers rows (extra trees, one row a leaf), where its rows once each reach 0.51: the folds hold copies
    too, so cross-validation prefers that model. Whether copies are repeated observations or an export's
    mistake only the user knows, so they are reported, not dropped.
    """
    # a hash table (pandas' isin), not numpy's isin, which sorts: 0.4 s against 4.7 s for 1M test rows in 4M
    copied = int(pd.Series(test_rows).isin(train_rows).sum())
    if copied <= COPIED_SHARE * len(test_rows):
        return None
    message = (f"{copied:,} of the {len(test_rows):,} test rows ({copied / len(test_rows):.0%}) are exact copies of "
               "training rows, the target included: the test score (and the cross-validated one) overstates how the "
               "model does on rows it has not seen. If the copies are not real repeated observations, remove them "
               "(pandas: drop_duplicates) and train again")
    return CopiedRows(copied, len(test_rows), message)


def find_combination_leaks(
    X: pd.DataFrame,
    y: pd.Series,
    task: str,
    kinds: Mapping[str, str] | None = None,
    *,
    keep: Sequence[str] = (),
    seed: int = 0,
) -> tuple[CombinationLeak, ...]:
    """Find sets of at most :data:`MAX_MEMBERS` columns that rebuild the target; smallest sets first.

    The search runs on the rows given (the screening sample: call it with
    some 20,000 rows, not millions) over the numeric and date columns
    (``kinds`` ``numeric`` or ``datetime``, already coerced to float; all
    numeric dtypes when ``kinds`` is None), once on the raw values and, when
    the target is positive, once on logs of the target and of the positive
    columns. The target is the column itself (regression) or its one-hot
    indicators (classification). On standardised columns (missing values
    at the mean) every pair is scored exactly from the Gram matrix, and the
    :data:`PAIRS_GROWN` best pairs are grown greedily by a third column.
    The best few subsets of each size are then fitted on their complete
    rows, smallest size first: least squares reaching :data:`RELATION_R2`
    (regression), or a linear model or a depth-:data:`TREE_DEPTH` tree
    reaching :data:`RELATION_BALANCED_ACCURACY` on held-out rows
    (classification), makes a relation. Its columns leave the search and it
    runs again, at most :data:`MAX_RELATIONS` times.

    ``keep`` columns are never blamed: they take part in every fit as given
    columns, so ``total = a + b`` with ``a`` kept names ``b`` alone. With
    more than :data:`MAX_CANDIDATES` columns, the search looks at those most
    correlated with the target; a member with no correlation of its own (one
    of two nearly equal timestamps, say) can then be missed.
    """
    numeric = [c for c in X.columns if (kinds[c] in ("numeric", "datetime") if kinds is not None
                                       else pd.api.types.is_numeric_dtype(X[c]))]
    kept = [c for c in keep if c in numeric]
    candidates = [c for c in numeric if c not in kept]
    values = X[numeric].astype("float64")
    found: list[CombinationLeak] = []
    # small matrices and many small fits: BLAS threads cost more than they give (10x for a logistic fit)
    with threadpool_limits(1), np.errstate(all="ignore"):
        for _ in range(MAX_RELATIONS):
            leak = _first_leak(values, y, task, candidates, kept, seed)
            if leak is None:
                break
            found.append(leak)
            candidates = [c for c in candidates if c not in leak.columns]
    return tuple(found)


def _first_leak(values: pd.DataFrame, y: pd.Series, task: str, candidates: list[str], kept: list[str],
                seed: int) -> CombinationLeak | None:
    for scale in ("raw", "log"):
        target = _target_matrix(y, task, scale)
        if target is None:
            continue
        if scale == "log":
            usable = values.columns[(values.min() > 0).to_numpy()]
            columns = np.log(values[usable])
        else:
            columns = values
        leak = _search(columns, target, y, task, [c for c in candidates if c in columns],
                       [c for c in kept if c in columns], scale, seed)
        if leak is not None:
            return leak
    return None


def _target_matrix(y: pd.Series, task: str, scale: str) -> np.ndarray | None:
    """The target as least squares sees it: one column, or one indicator per class."""
    if task == "classification":
        if scale == "log":
            return None
        codes, _ = pd.factorize(y)
        return np.eye(codes.max() + 1)[codes]
    values = y.to_numpy(dtype="float64")
    if scale == "log":
        if not np.all(values > 0):
            return None
        values = np.log(values)
    return values[:, None]


def _search(columns: pd.DataFrame, target: np.ndarray, y: pd.Series, task: str, candidates: list[str],
            kept: list[str], scale: str, seed: int) -> CombinationLeak | None:
    Z = _standardised(columns[candidates].to_numpy())
    T = target - target.mean(axis=0)
    total = float((T * T).sum())
    if kept:  # the kept columns are given: search what they leave unexplained
        B = _standardised(columns[kept].to_numpy())
        T = T - B @ np.linalg.lstsq(B, T, rcond=None)[0]
        Z = Z - B @ np.linalg.lstsq(B, Z, rcond=None)[0]
    # constant columns, and copies of kept ones, have nothing left to offer
    alive = (Z * Z).sum(axis=0) > 1e-10 * len(Z)
    candidates = [c for c, ok in zip(candidates, alive) if ok]
    Z = Z[:, alive]
    # nothing to find without candidates, a varying target, or with the kept columns rebuilding it already
    if not candidates or float((T * T).sum()) <= (1 - RELATION_R2) * total:
        return None
    if len(candidates) > MAX_CANDIDATES:
        strength = (Z.T @ T) ** 2 / np.maximum((Z * Z).sum(axis=0), 1e-300)[:, None]
        order = np.argsort(-strength.sum(axis=1))[:MAX_CANDIDATES]
        candidates = [candidates[i] for i in order]
        Z = Z[:, order]
    unexplained = float((T * T).sum())
    for subset, explained in _ranked_subsets(Z.T @ Z, Z.T @ T):
        if task == "regression" and 1 - (unexplained - explained) / total < SEARCH_R2:
            continue  # one-hot R2 says little of how well classes separate, so classification fits them all
        if task == "classification" and len(subset) == 1 and not kept:
            continue  # one column alone: screening's deeper single-column tree has judged it already
        members = [candidates[i] for i in subset]
        leak = _verify(columns, y, target, task, members, kept, scale, seed)
        if leak is not None:
            return _pruned(leak, columns, y, target, task, members, kept, scale, seed)
    return None


def _pruned(leak: CombinationLeak, columns: pd.DataFrame, y: pd.Series, target: np.ndarray, task: str,
            members: list[str], kept: list[str], scale: str, seed: int) -> CombinationLeak:
    """``leak`` without the members it does not need: a column that adds nothing is not blamed.

    A set grown from a pair by a third column can rebuild the target through
    two of them (Ecdat's Kakadu: ``lower`` and ``upper`` bound the answer,
    ``lowrisk`` came along); each member is left out in turn while the rest
    still make a relation.
    """
    while len(members) > 1:
        for name in members:
            rest = [m for m in members if m != name]
            smaller = _verify(columns, y, target, task, rest, kept, scale, seed)
            if smaller is not None:
                leak, members = smaller, rest
                break
        else:
            break
    return leak


def _standardised(values: np.ndarray) -> np.ndarray:
    """Centred, unit-variance columns with missing values at 0 (the mean); constant columns stay 0."""
    with warnings.catch_warnings():  # a column missing in every sampled row: its mean is NaN, and it becomes 0
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
    out = (values - mean) / np.where(std > 0, std, 1.0)
    out[np.isnan(out)] = 0.0
    return out


def _ranked_subsets(G: np.ndarray, C: np.ndarray):
    """Subsets of column indices with the sum of squares they explain; smallest first, best first within a size.

    ``G`` is the Gram matrix of the standardised columns, ``C`` their products
    with the centred target: a subset S explains trace(C_S' G_SS^-1 C_S).
    """
    p = len(G)
    diag = np.diag(G)
    single = (C * C).sum(axis=1) / diag
    yield from (([int(i)], single[i]) for i in np.argsort(-single)[:VERIFIED_PER_SIZE])
    if p < 2 or MAX_MEMBERS < 2:
        return
    det = np.outer(diag, diag) - G * G
    # nearly collinear pairs hold no more than their better member
    solid = det > 1e-10 * np.outer(diag, diag)
    np.fill_diagonal(solid, False)
    with np.errstate(divide="ignore", invalid="ignore"):
        pair = (np.einsum("ik,jk->ij", C, C) * -2 * G + (C * C).sum(axis=1)[:, None] * diag[None, :]
                + (C * C).sum(axis=1)[None, :] * diag[:, None]) / det
    pair = np.where(solid, pair, -np.inf)
    pair[np.tril_indices(p)] = -np.inf
    best_pairs = np.argsort(-pair, axis=None)[:max(VERIFIED_PER_SIZE, PAIRS_GROWN)]
    best_pairs = [divmod(int(k), p) for k in best_pairs if np.isfinite(pair.flat[k])]
    yield from ((list(ij), pair[ij]) for ij in best_pairs[:VERIFIED_PER_SIZE])
    if p < 3 or MAX_MEMBERS < 3:
        return
    triples = {}
    for i, j in best_pairs[:PAIRS_GROWN]:
        S = [i, j]
        inverse = np.linalg.inv(G[np.ix_(S, S)])
        # the Schur complement adds each third column's part not explained by the pair
        cross = G[:, S] @ inverse  # p x 2
        residual_var = diag - (cross * G[:, S]).sum(axis=1)
        residual_c = C - cross @ C[S]
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = (residual_c * residual_c).sum(axis=1) / residual_var
        gain[(residual_var <= 1e-10 * diag) | np.isin(np.arange(p), S)] = -np.inf
        k = int(np.argmax(gain))
        if np.isfinite(gain[k]):
            triples[tuple(sorted((i, j, k)))] = pair[i, j] + gain[k]
    yield from ((list(t), triples[t]) for t in sorted(triples, key=triples.get, reverse=True)[:VERIFIED_PER_SIZE])


def _verify(columns: pd.DataFrame, y: pd.Series, target: np.ndarray, task: str, members: list[str],
            kept: list[str], scale: str, seed: int) -> CombinationLeak | None:
    """Fit the target exactly on ``kept + members`` over their complete rows; a relation or None."""
    names = [*kept, *members]
    values = columns[names].to_numpy()
    rows = ~np.isnan(values).any(axis=1)
    n = int(rows.sum())
    if n < max(50, 10 * (len(names) + 1)):
        return None
    values, target = values[rows], target[rows]
    if task == "regression":
        mean_x, mean_t = values.mean(axis=0), target.mean(axis=0)
        coef = np.linalg.lstsq(values - mean_x, target - mean_t, rcond=None)[0][:, 0]
        residual = (target - mean_t)[:, 0] - (values - mean_x) @ coef
        total = float(((target - mean_t) ** 2).sum())
        score = 1.0 - float(residual @ residual) / total
        if not score >= RELATION_R2:  # NaN too, from values too large to square
            return None
        relation = _equation(str(y.name), names, coef, float(mean_t[0] - mean_x @ coef), scale,
                             float(np.sqrt(total / n)))
        return CombinationLeak(tuple(members), tuple(kept), f"{relation} (R2 {score:.4f} on {n:,} rows)", "R2",
                               score, n, scale)
    labels = pd.factorize(y)[0][rows]  # integer codes: object labels make every fit sort strings
    order = np.random.default_rng(seed).permutation(n)  # rows may come sorted; the split must not see that
    values, labels = values[order], labels[order]
    split = min(n // 2, TRAINING_ROWS)  # a few thousand rows place a shallow boundary; the rest judge it
    if np.bincount(labels[split:], minlength=labels.max() + 1).min() < MIN_CLASS_ROWS:
        # separating a few dozen held-out rows per class is what honest, separable tables do: the species of
        # palmerpenguins' 344 birds from bill and body measurements (171 held-out rows) is their signal
        return None
    score, how = _best_classifier(values, labels, split, seed)
    if score < RELATION_BALANCED_ACCURACY:
        return None
    relation = (f"{y.name} is separated by {how.format(', '.join(names))} "
                f"(balanced accuracy {score:.4f} on {n - split:,} held-out rows)")
    return CombinationLeak(tuple(members), tuple(kept), relation, "balanced accuracy", score, n - split, scale)


def _best_classifier(values: np.ndarray, labels: np.ndarray, split: int, seed: int) -> tuple[float, str]:
    """The best held-out balanced accuracy of two shallow trees and, when they come close, a linear model.

    All are trained on the first ``split`` rows and scored on the rest. One
    tree sees the columns, the other also their least-squares combinations
    (one per class), so a sloping boundary costs it one split (the first
    alone would miss it; the second, picking a combination first, can miss
    a boundary along the axes). The logistic fit, some 10x dearer, runs only
    when a tree reaches :data:`LINEAR_GATE`, which an honest table seldom
    lets it. ``labels`` are class codes 0..k-1.
    """
    if len(np.unique(labels[:split])) < 2:
        return 0.0, ""
    scaled = (values - values.mean(axis=0)) / np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
    design = np.column_stack([np.ones(len(scaled)), scaled])
    indicators = np.eye(labels.max() + 1)[labels[:split]]
    combinations = design @ np.linalg.lstsq(design[:split], indicators, rcond=None)[0]
    best = (0.0, "")
    for features, how in ((values, "a depth-{depth} tree on {{}}"),
                          (np.column_stack([values, combinations]),
                           "a depth-{depth} tree on {{}} and their least-squares combination")):
        tree = DecisionTreeClassifier(max_depth=TREE_DEPTH, random_state=seed).fit(features[:split], labels[:split])
        best = max(best, (_held_out(tree.predict(features), labels, split), how.format(depth=TREE_DEPTH)))
    if best[0] >= LINEAR_GATE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no convergence on separable classes is the point, not a problem
            linear = LogisticRegression(C=1e4, max_iter=500).fit(scaled[:split], labels[:split])
        best = max(best, (_held_out(linear.predict(scaled), labels, split), "a linear function of {}"))
    return best


def _held_out(predicted: np.ndarray, labels: np.ndarray, split: int) -> float:
    return float(balanced_accuracy_score(labels[split:], predicted[split:]))


def _equation(target: str, names: list[str], coef: np.ndarray, intercept: float, scale: str, spread: float) -> str:
    """``total = 1.00 * a + 1.00 * b``; on the log scale ``log(r) = 1.00 * log(a) - 1.00 * log(b)``.

    The intercept is left out when it is below a millionth of the target's spread: rounding, not a term.
    """
    wrap = (lambda name: f"log({name})") if scale == "log" else (lambda name: name)
    terms = [(c, f"{wrap(name)}") for name, c in zip(names, coef)]
    if abs(intercept) > 1e-6 * spread:
        terms.append((intercept, ""))
    text = " ".join(f"{'-' if c < 0 else '+'} {_number(abs(c))}{' * ' + name if name else ''}" for c, name in terms)
    return f"{wrap(target)} = {text[2:] if text.startswith('+') else '-' + text[2:]}"


def _number(value: float) -> str:
    return f"{value:.2f}" if 0.01 <= value < 1e5 else f"{value:.3g}"


def ceiling_alarm(
    task: str,
    scores: Mapping[str, float],
    pipeline,
    X: pd.DataFrame,
    y: pd.Series,
    *,
    class_counts: Mapping | None = None,
    seed: int = 0,
    top: int = 3,
    trees: int = 0,
) -> CeilingAlarm | None:
    """Warn when a validation score is at its metric's ceiling; name the columns the model leans on.

    Parameters
    ----------
    task : {"regression", "classification"}
    scores : mapping
        The chosen model's validation scores by metric name (the mean over the
        folds); ``r2``, ``roc_auc`` and ``accuracy`` are checked against
        :data:`CEILINGS`, whichever metric selected the model.
    pipeline : fitted estimator
        The chosen model, taking ``X`` as it is.
    X, y : DataFrame, Series
        Rows to compute the permutation importance on (training rows are fine:
        the question is what the model uses, not how well it generalises); at
        most :data:`IMPORTANCE_ROWS` of them are drawn, fewer for a wide table (:data:`IMPORTANCE_SCORED`).
    class_counts : mapping, optional
        Rows per class; accuracy 1.0 alarms only when the smallest has at
        least :data:`MIN_CLASS_ROWS` (a perfect score on a few rare rows is
        no surprise).
    seed : int
        Seeds the row sample and the shuffles.
    top : int
        How many columns to name.
    trees : int
        The model's trees (:func:`mlkiln.metrics.count_trees`): a large model is shuffled on fewer rows
        (:data:`ALARM_TREE_ROWS`).

    Returns
    -------
    CeilingAlarm or None
    """
    hit = next(((m, float(scores[m])) for m in CEILINGS if scores.get(m) is not None
                and float(scores[m]) >= CEILINGS[m]), None)
    if hit is None:
        return None
    metric, score = hit
    if metric == "accuracy" and (not class_counts or min(class_counts.values()) < MIN_CLASS_ROWS):
        return None
    rng = np.random.default_rng(seed)
    scored, width = min(IMPORTANCE_SCORED, ALARM_TREE_ROWS // max(trees, 1)), max(X.shape[1], 1)
    repeats = ALARM_REPEATS if scored // (width * ALARM_REPEATS) >= ALARM_MIN_ROWS else 1
    n_rows = max(ALARM_MIN_ROWS, min(IMPORTANCE_ROWS, scored // (width * repeats)))
    rows = rng.permutation(len(X))[:n_rows]
    sample_X, sample_y = X.iloc[rows], y.iloc[rows]
    # one thread: a call scores a few hundred rows, where OpenMP's start per tree costs more than it saves
    # (digits' 5,100-tree model: 23.2 s on two threads, 5.4 s on one, the same columns)
    with threadpool_limits(1):
        result = permutation_importance(pipeline, sample_X, sample_y, n_repeats=repeats, random_state=seed,
                                        scoring="r2" if task == "regression" else "balanced_accuracy")
    order = np.argsort(-result.importances_mean)[:top]
    columns = tuple(str(X.columns[i]) for i in order)
    importances = tuple(round(float(result.importances_mean[i]), 4) for i in order)
    leaning = ", ".join(f"{c} ({v:.3f})" for c, v in zip(columns, importances))
    message = (
        f"validation {metric} {score:.4f} is at the ceiling: too good to be true? The model leans most on "
        f"{leaning} (drop in score when shuffled, {len(rows):,} rows). Check that these are known before the "
        f"target is, are not computed from it, and that no row is duplicated across the split; --drop removes a column"
    )
    return CeilingAlarm(metric, score, columns, importances, len(rows), message)
