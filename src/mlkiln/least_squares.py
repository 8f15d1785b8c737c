"""Fit the linear-regression pipeline in blocks of rows: the same Pipeline, in bounded memory.

``Pipeline.fit`` on mlkiln's linear pipeline builds the whole float64 design
matrix (1 GB at 5M rows x 26 columns), copies it in ColumnTransformer's and
SimpleImputer's ``hstack``, then runs LAPACK least squares on it. :func:`fit`
fits the very same plain scikit-learn Pipeline from two streaming passes:

1. column statistics: medians, which columns have missing values, the
   categories present, and the scaler's mean and variance (``partial_fit``);
2. a QR decomposition of ``[1, X, y]`` accumulated over blocks of rows
   (TSQR). Its trailing block is the R factor of the centred ``[X, y]``, so
   the minimum-norm least-squares solution, rank and singular values equal
   ``LinearRegression``'s to rounding, singular designs included.

:func:`out_of_fold` gives k-fold cross-validation's out-of-fold predictions
from the same passes: one R factor per fold, combined into each fold's model.

The fitted objects are scikit-learn's own: ``model.joblib`` loads without
mlkiln. This module imports no mlkiln code: ``train.py`` embeds its source and
fits as mlkiln did, to the last bit. Before returning, the design
rows built here are compared with the fitted pipeline's own ``transform`` on a
sample; any difference, and any pipeline or input this module does not know,
falls back to ``Pipeline.fit``.
"""

import logging

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

#: values per block of the streaming passes (16 MB of float64): 75,000 rows of 26 columns
BLOCK_VALUES = 1 << 21

#: values per QR: Householder QR of a tall, narrow matrix is memory-bound; blocks
#: that fit in the CPU's cache (1 MB) are about twice as fast as 16 MB ones
QR_VALUES = 1 << 17

#: rows of the sample on which the built design must equal the pipeline's transform
CHECK_ROWS = 2048


def fit(pipe: Pipeline, X: pd.DataFrame, y) -> Pipeline:
    """Fit ``pipe`` on ``X``, ``y`` and return it; the linear-regression pipeline by streaming, others by ``fit``."""
    layout = _layout(pipe, X, y)
    if layout is not None:
        try:
            if _fit_streaming(pipe, X, np.asarray(y, dtype="float64"), layout):
                return pipe
        except Exception as error:  # noqa: BLE001 - an input this path never met: the plain fit is always right
            logging.getLogger(__name__).debug("streaming least squares fell back to Pipeline.fit: %r", error)
    return pipe.fit(X, y)


class _Layout:
    """Which input columns feed which part of the design, their values as arrays, and the text branch's settings."""

    def __init__(self, numeric: list[str], categorical: list[str], X: pd.DataFrame, fill: str, max_categories):
        self.numeric, self.categorical = numeric, categorical
        self.fill, self.max_categories = fill, max_categories
        self.values = [_numeric_values(X[name]) for name in numeric]
        self.codes = [X[name].cat.codes.to_numpy() for name in categorical]
        self.levels = [X[name].cat.categories for name in categorical]


def _layout(pipe, X, y) -> _Layout | None:
    """The columns of mlkiln's linear-regression pipeline, or None if ``pipe`` or the input is anything else."""
    if not isinstance(pipe, Pipeline) or len(pipe.steps) != 2 or not isinstance(X, pd.DataFrame):
        return None
    prep, model = pipe.steps[0][1], pipe.steps[1][1]
    if type(model) is not LinearRegression or not model.fit_intercept or model.positive:
        return None
    if not isinstance(prep, ColumnTransformer) or prep.remainder != "drop" or len(prep.transformers) != 3:
        return None
    (_, num, numeric), (_, flags, flagged), (_, cat, categorical) = prep.transformers
    if not (_is_numeric_branch(num) and _is_indicator_branch(flags) and _is_categorical_branch(cat)):
        return None
    if flagged != numeric:
        return None
    if not isinstance(numeric, list) or not isinstance(categorical, list) or len(X.columns) == 0:
        return None
    if len(X) < 2 or not X.columns.is_unique or not set(numeric + categorical) <= set(X.columns):
        return None
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "biuf" or not np.isfinite(y).all():
        return None  # plain fit raises the error that input deserves
    if not all(X[name].dtype.kind in "biuf" or _nullable_number(X[name]) for name in numeric):
        return None
    if not all(isinstance(X[name].dtype, pd.CategoricalDtype) for name in categorical):
        return None
    imputer, encoder = cat.steps[0][1], cat.steps[1][1]
    return _Layout(numeric, categorical, X, imputer.fill_value, encoder.max_categories)


def _is_numeric_branch(branch) -> bool:
    if not isinstance(branch, Pipeline) or len(branch.steps) != 2:
        return False
    imputer, scaler = branch.steps[0][1], branch.steps[1][1]
    return (
        type(imputer) is SimpleImputer and imputer.strategy is np.median and not imputer.add_indicator
        and imputer.missing_values is np.nan and not imputer.keep_empty_features
        and type(scaler) is StandardScaler and scaler.with_mean and scaler.with_std
    )


def _is_indicator_branch(branch) -> bool:
    return (type(branch) is MissingIndicator and branch.features == "missing-only" and not branch.error_on_new
            and branch.missing_values is np.nan and branch.sparse in ("auto", False))


def _is_categorical_branch(branch) -> bool:
    if not isinstance(branch, Pipeline) or len(branch.steps) != 2:
        return False
    imputer, encoder = branch.steps[0][1], branch.steps[1][1]
    return (
        type(imputer) is SimpleImputer and imputer.strategy == "constant" and not imputer.add_indicator
        and type(encoder) is OneHotEncoder and encoder.categories == "auto" and encoder.drop is None
        and encoder.min_frequency is None and encoder.handle_unknown in ("ignore", "infrequent_if_exist")
    )


def _nullable_number(col: pd.Series) -> bool:
    return isinstance(col.dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(col.dtype)


def _numeric_values(col: pd.Series) -> np.ndarray:
    """A numeric column as a numpy array without a copy where it is one already; pd.NA -> NaN."""
    if col.dtype.kind in "biuf" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.to_numpy()
    return col.to_numpy(dtype="float64", na_value=np.nan)


def _blocks(n: int, width: int, values: int | None = None):
    """Slices of rows such that a block of ``width`` columns holds about ``values`` (default BLOCK_VALUES) values."""
    size = max(64, (values or BLOCK_VALUES) // max(width, 1))
    return (slice(start, min(start + size, n)) for start in range(0, n, size))


def _fit_streaming(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, layout: _Layout) -> bool:
    """Fit ``pipe`` in place; False when this path cannot reproduce ``Pipeline.fit`` (which then refits all of it)."""
    design = _prepare(pipe, X, y, layout)
    if design is None:
        return False
    r, sums = _r_factor(design)
    model = pipe.steps[1][1]
    model.coef_, model.rank_, model.singular_, model.intercept_ = _solve(model, r, sums, len(X), float(y.mean()))
    model.n_features_in_ = design.width
    return True


def streams(pipe: Pipeline, X: pd.DataFrame, y) -> bool:
    """Whether ``pipe`` on ``X``, ``y`` is the linear-regression pipeline this module fits in blocks (before the data's checks)."""
    return _layout(pipe, X, y) is not None


def out_of_fold(pipe: Pipeline, X: pd.DataFrame, y, folds: np.ndarray) -> np.ndarray | None:
    """Out-of-fold predictions of the linear-regression pipeline for the validation folds ``folds`` (0..k-1 per row).

    Least squares needs no pass per fold: one R factor per fold's rows, all
    from one pass over a design fitted on every row, combine into each fold's
    model (the R factor of the other folds' rows). The model on a fold's
    training rows with its own scaling and medians is the same model in
    another basis (the intercept, and the missing-value indicators, absorb
    the shifts; a category absent from those rows gets weight 0 either way),
    so the predictions equal separate per-fold fits' to rounding. ``pipe`` is
    left fitted on all rows' preprocessing. None for any other pipeline or input.
    """
    layout = _layout(pipe, X, y)
    if layout is None:
        return None
    y = np.asarray(y, dtype="float64")
    design = _prepare(pipe, X, y, layout)
    if design is None:
        return None
    rows = [np.flatnonzero(folds == k) for k in range(int(folds.max()) + 1)]
    parts = [_r_factor(design, index) for index in rows]
    sums_y = [y[index].sum() for index in rows]
    model = pipe.steps[1][1]
    pred = np.empty(len(y))
    for k, index in enumerate(rows):
        others = [j for j in range(len(rows)) if j != k]
        with threadpool_limits(1, user_api="blas"):
            r = np.linalg.qr(np.vstack([parts[j][0] for j in others]), mode="r")
        n_fit = sum(len(rows[j]) for j in others)
        coef, _, _, intercept = _solve(model, r, sum(parts[j][1] for j in others), n_fit,
                                       sum(sums_y[j] for j in others) / n_fit)
        for block in _blocks(len(index), design.width + 2):
            pred[index[block]] = design(index[block])[:, 1:-1] @ coef + intercept
    return pred


def _prepare(pipe: Pipeline, X: pd.DataFrame, y: np.ndarray, layout: _Layout):
    """Fit ``pipe``'s preprocessing by streaming; return the builder of design rows, or None where it cannot.

    The builder maps rows (a slice or an index array) to ``[1, design, y]``
    as the fitted preprocessing transforms them; ``builder.width`` is the
    design's width.
    """
    # Why one long function: the passes share the per-column state (medians, gaps, scaler moments) and each
    # may give up with None; split into pieces, that state would travel in a bag of arguments.
    n = len(X)
    # pass 1a: the statistics that need no scaling
    medians, has_nan = [], []
    for values in layout.values:
        if values.dtype.kind == "f":
            missing = np.isnan(values)
            nan = bool(missing.any())
            if np.isinf(values).any() or missing.all():
                return None  # plain fit rejects infinity; an all-missing column is dropped
            has_nan.append(nan)
            medians.append(np.median(values[~missing] if nan else values))
        else:
            has_nan.append(False)
            medians.append(np.median(values))
    counts = [np.bincount(codes + 1, minlength=len(levels) + 1) for codes, levels in zip(layout.codes, layout.levels)]
    fill = layout.fill
    categories = []
    for count, levels in zip(counts, layout.levels):
        present = list(levels[count[1:] > 0])
        if not all(isinstance(value, str) for value in present):
            return None  # the encoder would sort mixed types differently, or refuse them
        # missing values become the fill value, which merges with a real category of that name
        categories.append(sorted(set(present) | ({fill} if count[0] else set())))
    if layout.max_categories is not None and any(len(c) > layout.max_categories for c in categories):
        return None  # rare categories would be grouped by frequency

    # the pipeline's structure, fitted by scikit-learn on a few real rows that hold every category and gap
    rows = {0, 1}
    for codes, count in zip(layout.codes, counts):
        rows.update(_first_rows(codes, int((count > 0).sum())))
    for values, nan in zip(layout.values, has_nan):
        if nan:
            missing = np.isnan(values)
            rows.add(int(np.argmax(missing)))
            rows.add(int(np.argmax(~missing)))
    skeleton_rows = np.array(sorted(rows))
    prep = pipe.steps[0][1]
    try:
        prep.fit(X.iloc[skeleton_rows], y[skeleton_rows])
    except Exception:  # noqa: BLE001 - the plain fit will report it
        return None
    num_pipe = prep.named_transformers_["numeric"] if layout.numeric else None
    cat_pipe = prep.named_transformers_["categorical"] if layout.categorical else None
    if cat_pipe is not None:
        got = cat_pipe.steps[1][1].categories_
        if [list(c) for c in got] != categories:
            return None
    levels_index = []
    for levels, cats in zip(layout.levels, categories):
        position = {value: i for i, value in enumerate(cats)}
        lookup = np.array([position.get(value, -1) for value in levels] + [position.get(fill, -1)], dtype="int64")
        levels_index.append(lookup)  # pandas code -> one-hot column; code -1 (missing) uses the last slot
    indicator = [i for i, nan in enumerate(has_nan) if nan]
    flag_of = {j: k for k, j in enumerate(indicator)}  # input column -> its indicator's place among them
    medians = np.asarray(medians, dtype="float64")
    if num_pipe is not None:
        if list(prep.named_transformers_["missing"].features_) != indicator:
            return None
        num_pipe.steps[0][1].statistics_ = medians.copy()

    def numeric_block(rows, flags: np.ndarray | None = None) -> np.ndarray:
        """The imputed numbers of ``rows``; with ``flags``, their missing-value indicators written into it."""
        block = np.empty((_length(rows, n), len(layout.values)))
        for j, values in enumerate(layout.values):
            column = block[:, j]
            column[:] = values[rows]
            if has_nan[j]:
                missing = np.isnan(column)
                column[missing] = medians[j]
                if flags is not None:
                    flags[:, flag_of[j]] = missing
        return block

    # pass 1b: the scaler's mean and variance, by its own partial_fit
    scaler = None
    if num_pipe is not None:
        scaler = clone(num_pipe.steps[1][1])
        for rows in _blocks(n, len(layout.values)):
            scaler.partial_fit(numeric_block(rows))
        num_pipe.steps[1] = (num_pipe.steps[1][0], scaler)
    width = (len(layout.values) + len(indicator)) + sum(len(c) for c in categories)

    def design(rows) -> np.ndarray:
        """Rows of ``[1, design, y]``, as the fitted preprocessing would transform them."""
        m = _length(rows, n)
        out = np.zeros((m, width + 2), order="F")  # column-major, as LAPACK wants it
        out[:, 0] = 1.0
        col = 1
        if scaler is not None:
            flags = out[:, col + len(layout.values):col + len(layout.values) + len(indicator)]
            block = numeric_block(rows, flags)
            block -= scaler.mean_
            block /= scaler.scale_
            out[:, col:col + block.shape[1]] = block
            col += block.shape[1] + len(indicator)
        for codes, lookup, cats in zip(layout.codes, levels_index, categories):
            hot = lookup[codes[rows]]
            out[np.arange(m), col + hot] = 1.0
            col += len(cats)
        out[:, -1] = y[rows]
        return out

    # the built design must be the fitted preprocessing's transform, on real rows and the skeleton's
    check = np.unique(np.concatenate([np.arange(min(n, CHECK_ROWS)), skeleton_rows]))
    expected = prep.transform(X.iloc[check])
    if expected.shape != (len(check), width) or not np.allclose(design(check)[:, 1:-1], expected, rtol=1e-12, atol=1e-12):
        return None

    design.width, design.n = width, n
    return design


def _r_factor(design, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """TSQR of ``[1, design, y]`` over all rows (or those of ``index``) in blocks, and the design's column sums.

    ``R[1:, 1:]`` is the R factor of the centred ``[design, y]``.
    """
    width = design.width
    r = np.zeros((0, width + 2))
    sums = np.zeros(width)
    with threadpool_limits(1, user_api="blas"):  # small QRs: threads cost more than they give
        for rows in _blocks(design.n if index is None else len(index), width + 2):
            block = design(rows if index is None else index[rows])
            sums += block[:, 1:-1].sum(axis=0)
            parts = [np.linalg.qr(block[part], mode="r") for part in _blocks(len(block), width + 2, QR_VALUES)]
            r = np.linalg.qr(np.vstack([r, *parts]), mode="r")
    return r, sums


def _solve(model: LinearRegression, r: np.ndarray, sums: np.ndarray, n: int, y_mean: float) -> tuple:
    """``(coef, rank, singular values, intercept)`` of least squares from the R factor of ``[1, design, y]``."""
    width = len(sums)
    r = r[1:, 1:]
    # LinearRegression's own cut-off for small singular values: its tol (scikit-learn >= 1.7), else LAPACK's default
    cond = getattr(model, "tol", None)
    coef, _, rank, singular = linalg.lstsq(r[:width, :width], r[:width, width], cond=cond, check_finite=False)
    return coef, int(rank), singular, y_mean - (sums / n) @ coef


def _first_rows(codes: np.ndarray, n_distinct: int) -> list[int]:
    """The first row of each distinct code, scanning only as far as needed (usually one block)."""
    first: dict[int, int] = {}
    for rows in _blocks(len(codes), 1, values=1 << 16):
        values, index = np.unique(codes[rows], return_index=True)
        for value, i in zip(values.tolist(), index.tolist()):
            first.setdefault(value, rows.start + i)
        if len(first) == n_distinct:
            break
    return list(first.values())


def _length(rows, n: int) -> int:
    return len(range(n)[rows]) if isinstance(rows, slice) else len(rows)
