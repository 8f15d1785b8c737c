"""The streaming least-squares fit: the same fitted Pipeline as ``Pipeline.fit``, or ``Pipeline.fit`` itself."""

import pickle
import pickletools

import numpy as np
import pandas as pd
import pytest

from common import awkward_diamonds

from mlkiln import least_squares
from mlkiln.pipeline import build_pipeline
from mlkiln.schema import as_categories

TEXT = ("cut", "color", "clarity")


def _prepared(frame: pd.DataFrame):
    """Features as the workflow hands them to the fit: numbers first, text as categories."""
    frame = frame.copy()
    y = frame.pop("price").astype("float64")
    kinds = {name: ("categorical" if name in TEXT else "numeric") for name in frame.columns}
    kinds = {name: kinds[name] for name in sorted(kinds, key=lambda n: kinds[n] == "categorical")}
    return as_categories(frame[list(kinds)], kinds), y, kinds


@pytest.fixture(scope="module")
def awkward(diamonds):
    """The awkward diamonds table (common.awkward_diamonds): its rare category is first seen in the last block."""
    return _prepared(awkward_diamonds(diamonds, 7))


def _streamed(X, y, kinds, **params):
    pipe = build_pipeline("regression", "linear", kinds, max_categories=params.pop("max_categories", None))
    layout = least_squares._layout(pipe, X, y)
    took = layout is not None and least_squares._fit_streaming(pipe, X, np.asarray(y, dtype="float64"), layout)
    return pipe, took


def _assert_same_fit(plain, streamed, X_new):
    a, b = plain[-1], streamed[-1]
    assert b.rank_ == a.rank_ and b.n_features_in_ == a.n_features_in_
    np.testing.assert_allclose(b.singular_, a.singular_, rtol=1e-9, atol=1e-9 * a.singular_[0])
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=0, atol=1e-9 * np.abs(a.coef_).max())
    assert b.intercept_ == pytest.approx(a.intercept_, rel=1e-9)
    pa, pb = plain.predict(X_new), streamed.predict(X_new)
    np.testing.assert_allclose(pb, pa, rtol=0, atol=1e-9 * pa.std())
    prep_a, prep_b = plain[0].named_transformers_, streamed[0].named_transformers_
    columns = {name: cols for name, _, cols in plain[0].transformers}
    if columns["numeric"]:
        np.testing.assert_array_equal(prep_b["numeric"][0].statistics_, prep_a["numeric"][0].statistics_)
        np.testing.assert_allclose(prep_b["numeric"][1].scale_, prep_a["numeric"][1].scale_, rtol=1e-12)
        np.testing.assert_array_equal(prep_b["missing"].features_, prep_a["missing"].features_)
    if columns["categorical"]:
        assert ([list(c) for c in prep_b["categorical"][1].categories_]
                == [list(c) for c in prep_a["categorical"][1].categories_])


@pytest.mark.parametrize("block_values, qr_values", [(least_squares.BLOCK_VALUES, least_squares.QR_VALUES), (150_000, 9000)])
def test_streaming_fit_equals_plain_fit_on_a_singular_design(awkward, monkeypatch, block_values, qr_values):
    # the small blocks: about 4,000 rows, so the table is 14 blocks and a category first appears in the last
    monkeypatch.setattr(least_squares, "BLOCK_VALUES", block_values)
    monkeypatch.setattr(least_squares, "QR_VALUES", qr_values)
    X, y, kinds = awkward
    plain = build_pipeline("regression", "linear", kinds, max_categories=None).fit(X, y)
    streamed, took = _streamed(X, y, kinds)
    assert took
    # one-hot columns sum to one per text column, and two numeric columns are redundant: rank-deficient
    assert plain[-1].rank_ < plain[-1].n_features_in_
    new = X.head(500).copy()
    new["cut"] = new["cut"].cat.add_categories(["Unheard of"])
    new.iloc[:50, new.columns.get_loc("cut")] = "Unheard of"
    new.iloc[50:100, new.columns.get_loc("table")] = np.nan
    _assert_same_fit(plain, streamed, new)


def test_fit_is_fitted_in_place_and_loads_as_plain_scikit_learn(awkward):
    X, y, kinds = awkward
    pipe = build_pipeline("regression", "linear", kinds, max_categories=None)
    assert least_squares.fit(pipe, X, y) is pipe
    modules = {arg.split(" ")[0] for op, arg, _ in pickletools.genops(pickle.dumps(pipe))
               if op.name in ("GLOBAL", "STACK_GLOBAL") and arg} | {
        type(obj).__module__ for obj in (pipe, pipe[0], pipe[-1], pipe[0].named_transformers_["numeric"][1])}
    assert not any(m.startswith("mlkiln") for m in modules)
    # a second fit on other rows replaces every statistic, as Pipeline.fit does
    least_squares.fit(pipe, X.iloc[::2], y.iloc[::2])
    plain = build_pipeline("regression", "linear", kinds, max_categories=None).fit(X.iloc[::2], y.iloc[::2])
    _assert_same_fit(plain, pipe, X.head(300))


def test_only_numbers_and_only_text(diamonds):
    X, y, kinds = _prepared(diamonds)
    for keep in (["carat", "depth", "x"], ["cut", "clarity"]):
        sub_kinds = {k: kinds[k] for k in keep}
        plain = build_pipeline("regression", "linear", sub_kinds, max_categories=None).fit(X[keep], y)
        streamed, took = _streamed(X[keep], y, sub_kinds)
        assert took
        _assert_same_fit(plain, streamed, X[keep].tail(400))


def test_columns_in_table_order(diamonds):
    """The workflow keeps the table's column order, text and numbers interleaved."""
    frame = diamonds.head(5000)
    y = frame["price"].astype("float64")
    kinds = {name: ("categorical" if name in TEXT else "numeric") for name in frame.columns if name != "price"}
    X = as_categories(frame[list(kinds)], kinds)
    assert list(X.columns)[:2] == ["carat", "cut"]
    plain = build_pipeline("regression", "linear", kinds, max_categories=None).fit(X, y)
    streamed, took = _streamed(X, y, kinds)
    assert took
    _assert_same_fit(plain, streamed, X)


def test_a_text_value_named_like_the_gap_merges_with_the_gaps_as_in_scikit_learn(diamonds):
    frame = diamonds.head(3000).copy()
    frame["cut"] = frame["cut"].astype(object)
    frame.loc[frame.index[:40], "cut"] = np.nan
    frame.loc[frame.index[40:60], "cut"] = "(missing)"
    X, y, kinds = _prepared(frame)
    plain = build_pipeline("regression", "linear", kinds, max_categories=None).fit(X, y)
    streamed, took = _streamed(X, y, kinds)
    assert took
    _assert_same_fit(plain, streamed, X)


def test_nearly_collinear_numbers_match_lapack(diamonds):
    frame = diamonds.copy()
    frame["almost_x"] = frame["x"] + np.random.default_rng(3).normal(0, 1e-6, len(frame))
    X, y, kinds = _prepared(frame)
    plain = build_pipeline("regression", "linear", kinds, max_categories=None).fit(X, y)
    streamed, took = _streamed(X, y, kinds)
    assert took
    pa = plain.predict(X)
    np.testing.assert_allclose(streamed.predict(X), pa, rtol=0, atol=1e-7 * pa.std())


def test_what_it_cannot_reproduce_falls_back_to_pipeline_fit(diamonds):
    X, y, kinds = _prepared(diamonds.head(4000))
    # more categories than the encoder keeps: scikit-learn groups the rare ones by frequency
    capped = X.copy()
    capped["clarity"] = pd.Categorical([f"c{i % 300}" for i in range(len(capped))])
    _, took = _streamed(capped, y, kinds, max_categories=100)
    assert not took
    pipe = build_pipeline("regression", "linear", kinds, max_categories=100)
    plain = build_pipeline("regression", "linear", kinds, max_categories=100).fit(capped, y)
    np.testing.assert_array_equal(least_squares.fit(pipe, capped, y).predict(capped), plain.predict(capped))
    # text as plain objects, not categories
    objects = X.astype({name: object for name in TEXT})
    pipe = build_pipeline("regression", "linear", kinds, max_categories=None)
    assert least_squares._layout(pipe, objects, y) is None
    np.testing.assert_array_equal(least_squares.fit(pipe, objects, y).predict(objects),
                                  build_pipeline("regression", "linear", kinds, max_categories=None).fit(objects, y).predict(objects))
    # other families are plain fits
    ridge = build_pipeline("regression", "ridge", kinds, max_categories=None)
    assert least_squares._layout(ridge, X, y) is None


def test_bad_numbers_get_scikit_learn_s_own_error(diamonds):
    X, y, kinds = _prepared(diamonds.head(2000))
    X = X.copy()
    X.iloc[5, X.columns.get_loc("depth")] = np.inf
    pipe = build_pipeline("regression", "linear", kinds, max_categories=None)
    with pytest.raises(ValueError, match="infinity"):
        least_squares.fit(pipe, X, y)
    y_gap = y.copy()
    y_gap.iloc[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        least_squares.fit(build_pipeline("regression", "linear", kinds, max_categories=None), X.fillna(0).replace(np.inf, 0), y_gap)
