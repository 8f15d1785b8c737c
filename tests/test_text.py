"""Free-text columns read as words (schema.text_columns, pipeline.words), on the real Titanic passenger list."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

import mlkiln
from mlkiln import pipeline, schema
from test_bundle import NO_MLKILN


def _pipelines(model):
    """Every preprocessing + estimator Pipeline inside a fitted model (an ensemble's members, or the model)."""
    if isinstance(model, Pipeline):
        return [model]
    children = getattr(model, "estimators_", None) or [getattr(model, "estimator_", None)]  # a vote, or a threshold
    return [pipe for child in children if child is not None for pipe in _pipelines(child)]


def test_text_columns_are_prose_whose_words_repeat(titanic_csv):
    titanic = pd.read_csv(titanic_csv)
    kinds = {"name": "categorical", "sex": "categorical", "age": "numeric", "passengerClass": "categorical"}
    assert schema.text_columns(titanic, kinds) == ("name",)
    # codes of one word, a distinct one per row, are no prose; a short list of labels is categories
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"code": [f"K{i:05d}" for i in range(500)],
                          "label": rng.choice(["very good fit", "a poor fit", "fits well enough"], 500)})
    assert schema.text_columns(frame, dict.fromkeys(frame, "categorical")) == ()


def test_prose_without_a_common_word_is_set_aside_with_its_reason():
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    note = [" ".join("".join(rng.choice(letters, 8)) for _ in range(4)) for _ in range(300)]  # no word repeats
    frame = pd.DataFrame({"note": note, "x": rng.normal(size=300)})
    frame["y"] = frame["x"] * 2 + rng.normal(size=300)
    run = mlkiln.train(frame, target="y", models=["ridge"], trials=1)
    assert run.card.excluded["note"].startswith("free text without common words")
    assert run.card.model.texts == ()


def test_names_are_read_as_words_and_help(text_run, titanic_csv):
    card = text_run.card
    assert card.model.texts == ("name",) and "name" not in card.excluded
    found = _pipelines(text_run.pipeline)
    vectorizers = [step for pipe in found for name, block, _ in pipe[0].transformers_ if name == "words0"
                   for step in [block[-1]]]
    assert vectorizers and all(isinstance(v, TfidfVectorizer) for v in vectorizers)
    for vectorizer in vectorizers:  # the titles are the most frequent words: Mr, Miss, Mrs, Master
        assert {"mr", "miss", "mrs", "master"} <= set(vectorizer.vocabulary_)
    without = mlkiln.train(titanic_csv, target="survived", models=["logistic_l2", "hgb"], trials=2, drop=["name"])
    assert card.metrics["test"]["log_loss"] < without.card.metrics["test"]["log_loss"]
    assert card.metrics["test"]["roc_auc"] > without.card.metrics["test"]["roc_auc"]


def test_linear_models_read_the_words_sparse_and_trees_dense_beside_native_categories(text_run, titanic_csv):
    X = text_run.model.prepare(pd.read_csv(titanic_csv))
    kinds = {c.name: c.kind for c in text_run.card.schema.columns}
    n_numeric = sum(kind != "categorical" for kind in kinds.values())
    seen = set()
    for pipe in _pipelines(text_run.pipeline):
        estimator = pipe[-1]
        matrix = pipe[0].transform(X)
        if isinstance(estimator, HistGradientBoostingClassifier):
            seen.add("trees")
            assert isinstance(matrix, np.ndarray) and matrix.shape[1] <= n_numeric + 2 + pipeline.TEXT_TERMS
            # sex and passengerClass follow the numbers; the words' columns after them are numbers
            assert np.flatnonzero(estimator.is_categorical_).tolist() == [n_numeric, n_numeric + 1]
        else:
            seen.add("linear")
            assert scipy.sparse.issparse(matrix) and matrix.shape[1] > pipeline.TEXT_TERMS
    assert seen == {"trees", "linear"}


def test_missing_empty_and_unseen_text_are_scored(text_run, titanic_csv):
    model = text_run.model
    assert "free-text" in (model.predictor.reason or "")
    rows = pd.read_csv(titanic_csv).drop(columns="survived").head(4)
    rows["name"] = [None, "", "Zzyzx, Qwerty Plugh", rows["name"].iloc[3]]
    proba = model.predict_proba(rows)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1.0)
    record = model.predict_record({"name": None, "sex": "male", "age": 30.0, "passengerClass": "3rd"})
    assert record["prediction"] in ("no", "yes")
    # a title the model learnt moves the probability: a boy ("Master") against a man ("Mr") alike otherwise
    boy, man = (model.predict_record({"name": f"Smith, {title}. John", "sex": "male", "age": 10.0,
                                      "passengerClass": "2nd"})["probabilities"]["yes"] for title in ("Master", "Mr"))
    assert boy != man


def test_text_bundle_loads_audited_and_plain_without_mlkiln(text_bundle, text_run, titanic_csv):
    loaded = mlkiln.load(text_bundle)  # model.skops through the allow-list (numpy.ravel joins it)
    X = text_run.model.prepare(pd.read_csv(titanic_csv))
    expected = text_run.pipeline.predict_proba(X)
    np.testing.assert_array_equal(loaded.pipeline.predict_proba(X), expected)
    out = f"{text_bundle}/plain.npy"
    code = NO_MLKILN + f"""
import joblib, numpy as np, pandas as pd
frame = pd.read_pickle({text_bundle + '/X.pkl'!r})
np.save({out!r}, joblib.load({text_bundle + '/model.joblib'!r}).predict_proba(frame))
"""
    X.to_pickle(f"{text_bundle}/X.pkl")
    result = subprocess.run([sys.executable, "-c", code], timeout=120, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out), expected)


@pytest.mark.parametrize("family", ["linear", "ridge", "lasso", "hgb", "rf", "extra_trees"])
def test_every_regression_family_fits_words(family, titanic_csv):
    frame = pd.read_csv(titanic_csv).dropna(subset=["age"])
    kinds = {"name": "categorical", "sex": "categorical", "passengerClass": "categorical"}
    X, y = frame[list(kinds)], frame["age"]
    pipe = pipeline.build_pipeline("regression", family, kinds, texts=("name",)).fit(X, y)
    assert np.isfinite(pipe.predict(X.head(50))).all()


def test_liblinear_fits_words_in_workers_that_memory_map_them(titanic_csv):
    # the folds' sparse words are shared with the CV workers; past 1 MB joblib maps them read-only, and liblinear
    # sorts a matrix's indices in place: they are sorted before ("WRITEBACKIFCOPY base is read-only" otherwise)
    from mlkiln import tuning

    # the names alone (the vectorizer's own matrix, not sorted), about 2 MB of words per fold
    frame = pd.concat([pd.read_csv(titanic_csv)[["name", "survived"]]] * 20, ignore_index=True)
    kinds = {"name": "categorical"}
    pipe = pipeline.build_pipeline("classification", "logistic_l1", kinds, texts=("name",))
    fold = tuning._prepare_fold(pipe[0], frame[list(kinds)], frame["survived"], np.arange(0, 20000),
                                np.arange(20000, len(frame)))
    assert scipy.sparse.issparse(fold.X_fit) and fold.X_fit.has_canonical_format and fold.X_val.has_canonical_format
    run = mlkiln.train(frame, target="survived", models=["logistic_l1"], trials=2)
    assert run.card.model.family == "logistic_l1" and run.card.model.texts == ("name",)


@pytest.mark.parametrize("task, target, family", [("classification", "survived", "logistic_l1"),
                                                  ("regression", "age", "ridge")])
def test_a_linear_model_reading_words_is_compiled_and_equals_scikit_learn(task, target, family, titanic_csv):
    from threadpoolctl import threadpool_limits

    frame = pd.read_csv(titanic_csv).dropna(subset=[target])
    run = mlkiln.train(frame, target=target, models=[family], trials=2)
    model = run.model
    assert run.card.model.texts == ("name",) and model.predictor.compiled, model.predictor.reason
    X = model.prepare(frame)
    method = run.pipeline.predict_proba if task == "classification" else run.pipeline.predict
    expected = method(X)
    compiled = model.predictor.score(X)[1 if task == "classification" else 0]
    np.testing.assert_allclose(compiled, expected, rtol=0, atol=1e-9)
    raw, parts = model.predictor.terms(X)  # the report's additive parts: the words' too, summing to the outputs
    assert "name" in parts
    np.testing.assert_array_equal(model.predictor.finish(raw)[1 if task == "classification" else 0], compiled)
    with threadpool_limits(1):  # one row at a time, each as the service scores it: a text of unseen words too
        for i, record in enumerate(X.head(200).to_dict("records")):
            label, proba = model.predictor.score_row(record)
            got = proba if task == "classification" else label
            np.testing.assert_allclose(got, expected[i], rtol=0, atol=1e-9)
    record = {**X.iloc[0].to_dict(), "name": "Qwxz, Zzyzx Plugh"}
    alone = model.predictor.score_row(record)
    frame_one = pd.DataFrame([record])
    np.testing.assert_allclose(alone[1] if task == "classification" else alone[0],
                               method(frame_one)[0], rtol=0, atol=1e-9)


def test_above_the_rows_trees_read_no_words_only_linear_models_do(monkeypatch, titanic_csv):
    from mlkiln import selection

    monkeypatch.setattr(selection, "TEXT_TREE_ROWS", 500)  # the Titanic's 1,047 training rows are above it
    run = mlkiln.train(titanic_csv, target="survived", models=["logistic_l2", "hgb"], trials=2)
    assert run.card.model.texts == ("name",) and run.card.model.tree_words is False
    for pipe in _pipelines(run.pipeline):
        blocks = {name for name, _, _ in pipe[0].transformers_}
        reads = "words0" in blocks
        assert reads == (not isinstance(pipe[-1], HistGradientBoostingClassifier))
    from mlkiln import train_script

    assert "TREE_WORDS = False" in train_script.render(run.card)  # the rebuild reads as the run did
    # the trees leave the names out, the linear model reads them: the vote is compiled, and equals scikit-learn
    assert run.model.predictor.compiled, run.model.predictor.reason
    X = run.model.prepare(pd.read_csv(titanic_csv))
    np.testing.assert_allclose(run.model.predictor.score(X)[1], run.pipeline.predict_proba(X), rtol=0, atol=1e-9)


def test_a_linear_model_opens_a_budget_search_where_trees_read_no_words(titanic_csv):
    # above pipeline.TEXT_TREE_ROWS gradient boosting would open on the other columns only, and under a budget the
    # time after it kept the words from every model (300,000 reviews: ROC AUC 0.49); a linear model opens instead
    from mlkiln import metrics, tuning

    frame = pd.read_csv(titanic_csv)
    kinds = {"name": "categorical", "sex": "categorical", "age": "numeric", "passengerClass": "categorical"}
    X, y = frame[list(kinds)], frame["survived"]
    args = (X, y, "classification", ["hgb", "logistic_l2"], kinds, metrics.Scorer("classification", "log_loss",
                                                                                    ["no", "yes"]),
            tuning.make_cv("classification", 3, 0), 0, 2, tuning.Compute(1), "auto", None, None, None, None)
    assert tuning._Rungs(*args, texts=("name",), tree_words=False).opener == "logistic_l2"
    assert tuning._Rungs(*args, texts=("name",), tree_words=True).opener == "hgb"
    assert tuning._Rungs(*args).opener == "hgb"


def test_a_word_named_as_a_column_or_shared_by_two_text_columns_is_named_by_its_column():
    """scikit-learn refuses feature names that are not unique, and the report's coefficient table failed the run
    after its search (sweep 11: movielens' titles hold the word "year", also a column)."""
    rng = np.random.default_rng(0)
    n = 400
    words = ["good", "bad", "year", "film", "story", "great", "long", "short", "music", "actor"]

    def prose():
        return [" ".join(rng.choice(words, size=rng.integers(3, 7))) + f" {i}" for i in range(n)]

    note, title, year = prose(), prose(), rng.integers(1990, 2020, size=n)
    score = (year - 2000) * 0.1 + np.array([s.count("good") - s.count("bad") for s in note]) + rng.normal(size=n) * 0.3
    frame = pd.DataFrame({"year": year, "note": note, "title": title, "score": score})
    run = mlkiln.train(frame, target="score", models=["ridge"], trials=1)
    assert set(run.card.model.texts) == {"note", "title"}
    names = [f["feature"] for f in run.diagnostics["coefficients"]["features"]]
    assert {"note: year", "title: year", "year", "note: good"} <= set(names) and len(set(names)) == len(names)
