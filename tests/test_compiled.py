"""The compiled predictor equals the scikit-learn Pipeline, one row or many, for every family."""

import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import mlkiln
from mlkiln.compiled import compile_pipeline
from mlkiln.examples import load_example
from mlkiln.pipeline import build_ensemble, build_pipeline
from mlkiln.schema import coerce_frame, column_kind, conform, conform_record, describe_columns

RTOL = 1e-9
FEATURES = ["carat", "cut", "color", "clarity", "depth", "table", "x"]
CASES = [
    ("regression", "linear", {}, None),
    ("regression", "ridge", {"alpha": 10.0}, None),
    ("regression", "lasso", {"alpha": 1.0}, None),
    ("regression", "hgb", {"max_iter": 40}, None),
    ("regression", "rf", {"n_estimators": 15, "min_samples_leaf": 3}, None),
    ("binary", "logistic_l1", {"C": 1.0}, None),
    ("binary", "logistic_l2", {}, 0.3),
    ("binary", "hgb", {"max_iter": 30}, 0.4),
    ("binary", "rf", {"n_estimators": 15}, None),
    ("multiclass", "logistic_l2", {}, None),
    ("multiclass", "hgb", {"max_iter": 15}, None),
    ("multiclass", "rf", {"n_estimators": 10}, None),
    ("regression", "extra_trees", {"n_estimators": 15, "min_samples_leaf": 3}, None),
    ("binary", "extra_trees", {"n_estimators": 15}, None),
    ("regression", "hgb_target", {"max_iter": 30}, None),
    ("regression", "ridge_normal", {"regressor__alpha": 1.0}, None),
    ("regression", "mlp", {"regressor__alpha": 1.0}, None),
    ("binary", "hgb_target", {"max_iter": 20}, 0.4),
    ("multiclass", "hgb_target", {"max_iter": 10}, None),
    # ensembles: (name, family, params, weight) per member, as selection weighs them
    ("regression", "ensemble", [("hgb", "hgb", {"max_iter": 20}, 0.5), ("ridge", "ridge", {"alpha": 1.0}, 0.3),
                                ("extra_trees", "extra_trees", {"n_estimators": 8}, 0.2)], None),
    ("regression", "ensemble", [("hgb", "hgb", {"max_iter": 20}, 0.7), ("ridge_normal", "ridge_normal", {}, 0.3)], None),
    ("regression", "ensemble", [("mlp", "mlp", {}, 0.6), ("rf", "rf", {"n_estimators": 8}, 0.4)], None),
    ("binary", "ensemble", [("hgb", "hgb", {"max_iter": 15}, 0.6), ("logistic_l2", "logistic_l2", {}, 0.2),
                            ("rf", "rf", {"n_estimators": 8}, 0.2)], 0.35),
    ("multiclass", "ensemble", [("hgb", "hgb", {"max_iter": 10}, 0.4), ("logistic_l2", "logistic_l2", {}, 0.2),
                                ("extra_trees", "extra_trees", {"n_estimators": 8}, 0.4)], None),
    ("multiclass", "ensemble", [("hgb", "hgb", {"max_iter": 10}, 0.5),
                                ("hgb_target", "hgb_target", {"max_iter": 10}, 0.5)], None),
    # number columns encoded by the target too (pipeline.code_columns): values unseen in training, and missing
    ("regression", "hgb_target", {"max_iter": 30}, None, ("table", "depth")),
    ("binary", "hgb_target", {"max_iter": 20}, 0.4, ("table",)),
    ("multiclass", "ensemble", [("hgb", "hgb", {"max_iter": 10}, 0.5),
                                ("hgb_target", "hgb_target", {"max_iter": 10}, 0.5)], None, ("table", "depth")),
    # bagged gradient boosting (pipeline.bag): its fit on all rows and this many more
    ("regression", "hgb", {"max_iter": 20}, None, (), 3),
    ("binary", "hgb", {"max_iter": 15}, 0.4, (), 3),
    ("multiclass", "hgb_target", {"max_iter": 8}, None, ("table",), 2),
]


@pytest.fixture(autouse=True)
def one_thread():
    """The scikit-learn oracles predict one row at a time: OpenMP teams spinning up per call would dominate."""
    with threadpool_limits(1):
        yield


def _with_gaps(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Missing values in every column and, in text columns, values never seen in training."""
    rng = np.random.default_rng(seed)
    frame = frame.astype({c: object for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) == "str"})
    for name in FEATURES:
        frame.loc[rng.random(len(frame)) < 0.08, name] = None
        if column_kind(frame[name].dropna()) == "categorical":
            frame.loc[rng.random(len(frame)) < 0.05, name] = "never seen"
    return frame


@pytest.fixture(scope="module")
def tables():
    data = load_example("diamonds").sample(1600, random_state=3).reset_index(drop=True)
    data = pd.concat([data.iloc[:1200].pipe(_with_gaps, 1), data.iloc[1200:].pipe(_with_gaps, 2)], ignore_index=True)
    # a rare category that only the one-hot / ordinal "infrequent" slot knows
    data.loc[:3, "clarity"] = "rare"
    return data.iloc[:1200], data.iloc[1200:]


def _target(frame: pd.DataFrame, task: str) -> pd.Series:
    if task == "regression":
        return frame["price"]
    if task == "binary":
        return (frame["price"] > 2500).astype(int)
    return frame["cut"].fillna("Ideal").where(lambda c: c != "never seen", "Ideal")


@pytest.fixture(scope="module", params=CASES,
                ids=lambda c: f"{c[0]}-{c[1]}" + ("-threshold" if c[3] else "") + ("-codes" if c[4:] and c[4] else "")
                + ("-bagged" if c[5:] else ""))
def fitted(request, tables):
    """``(pipeline, schema columns, test frame)`` for one family, fitted on a small sample."""
    task, family, params, threshold, *rest = request.param
    codes, bagged = [*rest, *[(), 0][len(rest):]]  # (codes, bagged) where the case names them
    train, test = tables
    features = [f for f in FEATURES if not (task == "multiclass" and f == "cut")]
    kinds = {name: column_kind(train[name]) for name in features}
    columns = describe_columns(train, kinds)
    y = _target(train, task)
    kind = "regression" if task == "regression" else "classification"
    if family == "ensemble":
        pipeline = build_ensemble(kind, params, kinds, n_classes=y.nunique(), threshold=threshold, seed=0, codes=codes)
        members = [member for _, member in getattr(pipeline, "estimator", pipeline).estimators]
    else:
        pipeline = build_pipeline(kind, family, kinds, params=params, n_classes=y.nunique(), threshold=threshold, seed=0,
                                  codes=codes, bagged=bagged)
        members = [pipeline]
    for member in members:
        # few categories kept per column, so the encoders' shared "infrequent" slot is exercised too
        encoder = {name: step for name, step, _ in member.named_steps["prep"].transformers}["categorical"]
        encoder = encoder.steps[-1][1] if isinstance(encoder, Pipeline) else encoder
        if "max_categories" in encoder.get_params():  # target encoding keeps every category, smoothed
            encoder.set_params(max_categories=6)
    pipeline.fit(coerce_frame(train, kinds), y)
    return pipeline, columns, test[features]


def _assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=RTOL, atol=0)


def test_batch_equals_sklearn(fitted):
    pipeline, columns, test = fitted
    predictor = compile_pipeline(pipeline, columns)
    assert predictor.compiled, predictor.reason
    X = conform(test, columns)
    labels, proba = predictor.score(X)
    if proba is None:
        _assert_close(labels, pipeline.predict(X))
    else:
        assert (labels == pipeline.predict(X)).all()
        _assert_close(proba, pipeline.predict_proba(X))


def test_rows_equal_sklearn(fitted):
    pipeline, columns, test = fitted
    predictor = compile_pipeline(pipeline, columns)
    X = conform(test, columns)
    scored = [predictor.score_row(row) for row in X.to_dict("records")]
    expected = pipeline.predict(X)
    assert [type(label) for label, _ in scored[:1]] in ([float], [int], [str])
    if scored[0][1] is None:
        _assert_close([label for label, _ in scored], expected)
    else:
        assert [label for label, _ in scored] == expected.tolist()
        _assert_close([proba for _, proba in scored], pipeline.predict_proba(X))


def _records(columns):
    """Random valid records: values in and beyond the training range, missing values, unseen categories."""
    fields = {}
    for spec in columns:
        if spec.kind == "categorical":
            value = st.one_of(st.sampled_from(spec.categories), st.none(), st.text(max_size=5), st.integers(-3, 3))
        else:
            span = spec.max - spec.min
            value = st.one_of(
                st.floats(spec.min - span, spec.max + span, allow_nan=False), st.none(),
                st.integers(-10, 10), st.sampled_from(["n/a", "", "1,234.5", " 7 "]),
            )
        fields[spec.name] = value
    return st.fixed_dictionaries(fields)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_records_equal_sklearn(fitted, data):
    # each example is a batch of records: every one scored alone by the compiled predictor, all of them by one
    # call of scikit-learn's (one call per batch, not per record, is what keeps 17 families x ~110 records quick)
    pipeline, columns, _ = fitted
    predictor = _cached_predictor(pipeline, columns)
    records = data.draw(st.lists(_records(columns), min_size=1, max_size=10))
    scored = [predictor.score_row(conform_record(record, columns)) for record in records]
    X = conform(pd.DataFrame(records).astype(object), columns)
    if scored[0][1] is None:
        _assert_close([label for label, _ in scored], pipeline.predict(X))
    else:
        assert [label for label, _ in scored] == pipeline.predict(X).tolist()
        _assert_close([proba for _, proba in scored], pipeline.predict_proba(X))


_PREDICTORS = {}


def test_indicators_standardised_by_an_earlier_bundle_fold_too(tables):
    # bundles written before the missing-value indicators were a 0/1 block of their own standardised them with the
    # numbers, in the imputer (add_indicator): their predictions must still compile, to the same values
    train, test = tables
    kinds = {name: column_kind(train[name]) for name in FEATURES}
    columns = describe_columns(train, kinds)
    pipeline = build_pipeline("classification", "logistic_l2", kinds, n_classes=2)
    prep = pipeline.named_steps["prep"]
    (_, numeric, names), _, categorical = prep.transformers
    numeric.steps[0][1].set_params(add_indicator=True)
    prep.set_params(transformers=[("numeric", numeric, names), categorical])
    X_train = coerce_frame(train, kinds)
    pipeline.fit(X_train, _target(train, "binary"))
    assert prep.named_transformers_["numeric"][0].indicator_.features_.size  # the gaps are flagged, then scaled
    predictor = compile_pipeline(pipeline, columns)
    assert predictor.compiled, predictor.reason
    X = conform(test, columns)
    _assert_close(predictor.score(X)[1], pipeline.predict_proba(X))


def _cached_predictor(pipeline, columns):
    return _PREDICTORS.setdefault(id(pipeline), compile_pipeline(pipeline, columns))


def test_unknown_family_falls_back_and_says_so(tables, caplog):
    train, test = tables
    kinds = {name: column_kind(train[name]) for name in FEATURES}
    columns = describe_columns(train, kinds)
    pipeline = build_pipeline("regression", "linear", kinds)
    pipeline.steps[-1] = ("model", KNeighborsRegressor())
    pipeline.fit(coerce_frame(train, kinds), train["price"])
    with caplog.at_level(logging.INFO, logger="mlkiln"):
        predictor = compile_pipeline(pipeline, columns)
    assert not predictor.compiled and "KNeighborsRegressor" in predictor.reason
    assert "scikit-learn" in caplog.text
    X = conform(test[FEATURES], columns)
    _assert_close(predictor.score(X)[0], pipeline.predict(X))
    row = X.iloc[5].to_dict()
    _assert_close([predictor.score_row(row)[0]], pipeline.predict(X.iloc[5:6]))


def test_model_uses_compiled_path(diamonds_bundle, failure_bundle, ensemble_bundle, diamonds):
    for path in (diamonds_bundle, failure_bundle, ensemble_bundle):
        model = mlkiln.load(path)
        assert model.predictor.compiled
    model = mlkiln.load(diamonds_bundle)
    sample = diamonds.drop(columns="price").head(50)
    X = model.prepare(sample)
    _assert_close(model.predict(sample), model.pipeline.predict(X))
    _assert_close(model.predict_frame(sample)["prediction"], model.pipeline.predict(X))
    record = sample.iloc[0].to_dict()
    _assert_close([model.predict_record(record)["prediction"]], model.pipeline.predict(X.iloc[:1]))


def test_failure_records_carry_probabilities(failure_bundle):
    model = mlkiln.load(failure_bundle)
    frame = load_example("machine-failure").head(30)
    X = model.prepare(frame)
    used = [c.name for c in model.card.columns]
    for i, record in enumerate(frame[used].to_dict("records")):
        out = model.predict_record(record)
        assert out["prediction"] == model.pipeline.predict(X.iloc[i : i + 1]).tolist()[0]
        _assert_close(list(out["probabilities"].values()), model.pipeline.predict_proba(X.iloc[i : i + 1])[0])
        assert list(out["probabilities"]) == [str(c) for c in model.classes]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"carat": "heavy"}, "column 'carat' expects a number, got 'heavy'"),
        ({"cut": {"a": 1}}, "column 'cut' expects a text value"),
        ({"carat": [1.0]}, "column 'carat' expects a number"),
        ({"colour": "E"}, "unknown column(s) the model does not use: 'colour'"),
        ({"carat": float("inf")}, "column 'carat' expects a number"),
        (None, "missing column(s) the model needs: 'carat'"),
    ],
)
def test_record_errors_name_the_field(diamonds_bundle, change, message):
    model = mlkiln.load(diamonds_bundle)
    record = {c.name: (c.categories or [1.0])[0] for c in model.card.columns}
    if change is None:
        del record["carat"]
    else:
        record.update(change)
    with pytest.raises(mlkiln.MlkilnError, match=re.escape(message)):
        model.predict_record(record)


def test_record_rules_match_batch_rules(diamonds_bundle):
    """Text in number columns, placeholders and the target field read as in a batch."""
    model = mlkiln.load(diamonds_bundle)
    columns = model.card.columns
    record = {c.name: (c.categories or [2.0])[0] for c in columns}
    record.update({"carat": "1,234.5", "depth": "n/a", "x": None, "cut": 5, "price": 1})
    row = conform_record(record, columns, target="price")
    batch = conform(pd.DataFrame([record]).astype(object), columns, target="price").iloc[0].to_dict()
    assert row.keys() == batch.keys()
    for name in row:
        assert row[name] == batch[name] or (row[name] != row[name] and batch[name] != batch[name])


def test_card_records_one_row_latency(diamonds_run, diamonds_bundle):
    """The card's latency is the median time of scoring one row alone; inspect, the summary and the page show it."""
    latency = diamonds_run.card.latency_us
    model = mlkiln.load(diamonds_bundle)
    rows = model.prepare(load_example("diamonds").head(200)).to_dict("records")
    for row in rows:
        model.predictor.score_row(row)
    times = []
    for row in rows:
        start = time.perf_counter_ns()
        model.predictor.score_row(row)
        times.append(time.perf_counter_ns() - start)
    # timings vary with the machine's load: the same order of magnitude, measured independently here
    assert 0 < latency < 50_000 and 0.1 < latency / (np.median(times) / 1e3) < 10
    assert model.card.latency_us == latency
    page = (Path(diamonds_bundle) / "report.html").read_text(encoding="utf-8")
    assert f"{latency:,.1f} \u00b5s" in page
