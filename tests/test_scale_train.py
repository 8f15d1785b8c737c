"""Training at scale, on small real data: one-pass folds, metrics in row blocks, a partitioned dataset as one table."""

import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score

import mlkiln
from mlkiln import compiled, data, least_squares, metrics
from mlkiln.card import Card
from mlkiln.data import split_train_test
from mlkiln.examples import EXAMPLES, load_example
from mlkiln.options import TrainOptions
from mlkiln.pipeline import build_pipeline
from mlkiln.tuning import make_cv
from mlkiln.understand import understand

from common import awkward_diamonds, cli, one_line_error


@pytest.fixture(scope="module")
def gappy(diamonds):
    """The awkward diamonds table (common.awkward_diamonds) as understand hands it to the search."""
    return understand(awkward_diamonds(diamonds, 3), "price", TrainOptions(keep=("carat_twice", "constant")))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_pass_folds_equal_separate_fits(gappy, seed):
    X, y = gappy.X, gappy.y
    cv = make_cv("regression", 3, seed)
    folds = np.empty(len(y), dtype="int64")
    separate = np.empty(len(y))
    for k, (fit_rows, val_rows) in enumerate(cv.split(X, y)):
        folds[val_rows] = k
        pipe = build_pipeline("regression", "linear", gappy.kinds, max_categories=None)
        separate[val_rows] = pipe.fit(X.iloc[fit_rows], y.iloc[fit_rows]).predict(X.iloc[val_rows])
    one_pass = least_squares.out_of_fold(build_pipeline("regression", "linear", gappy.kinds, max_categories=None),
                                         X, y, folds)
    assert one_pass is not None
    np.testing.assert_allclose(one_pass, separate, rtol=0, atol=1e-9 * separate.std())


def test_one_pass_refuses_other_pipelines(gappy):
    ridge = build_pipeline("regression", "ridge", gappy.kinds, max_categories=None)
    folds = np.arange(len(gappy.y)) % 3
    assert least_squares.out_of_fold(ridge, gappy.X, gappy.y, folds) is None


def test_linear_cv_scores_equal_scikit_learns(diamonds):
    run = mlkiln.train(diamonds, target="price", models=["linear"], seed=4)
    table = understand(diamonds, "price", TrainOptions(models=("linear",), seed=4))
    X_train, _, y_train, _ = data.split_train_test(table.X, table.y, test_size=0.2, seed=4, stratify=False)
    plain = cross_val_score(build_pipeline("regression", "linear", table.kinds, max_categories=None),
                            X_train, y_train, cv=make_cv("regression", 3, 4), scoring="r2")
    np.testing.assert_allclose(run.card.cv_results["linear"][0]["folds"], plain, rtol=0, atol=1e-9)
    assert run.metrics["validation"]["mean"]["r2"] == pytest.approx(plain.mean(), abs=1e-9)


def _prepared(frame, target, family, **options):
    table = understand(frame, target, TrainOptions(**options))
    pipe = build_pipeline(table.task, family, table.kinds, max_categories=None,
                          n_classes=len(table.classes or ()) or 2).fit(table.X, table.y)
    return table, pipe


@pytest.mark.parametrize("example, family", [("diamonds", "linear"), ("machine-failure", "logistic_l2")])
def test_metrics_in_blocks_equal_all_rows(example, family, monkeypatch):
    frame = load_example(example).sample(3000, random_state=1).reset_index(drop=True)
    spec = EXAMPLES[example]
    table, pipe = _prepared(frame, spec.target, family, drop=tuple(spec.drop))
    task, classes = table.task, table.classes
    pred = pipe.predict(table.X)
    proba = pipe.predict_proba(table.X) if task == "classification" else None
    expected = (metrics.regression_metrics(table.y, pred) if task == "regression"
                else metrics.classification_metrics(table.y, pred, proba, classes))
    monkeypatch.setattr(metrics, "BLOCK_ROWS", 256)  # 12 blocks, the last one short
    predictor = compiled.compile_pipeline(pipe, table.columns)
    assert predictor.compiled
    for got in (metrics.evaluate(pipe, table.X, table.y, task, classes),
                metrics.evaluate(pipe, table.X, table.y, task, classes, predictor)):
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
            else:
                assert got[key] == value, key


def test_categorical_lookup_equals_value_lookup(diamonds):
    column = diamonds["color"].astype(object)
    column[::7] = np.nan
    column[::11] = "never seen"
    categories = compiled._Categories("color", sorted(diamonds["color"].unique()))
    np.testing.assert_array_equal(categories.ids(column.astype("category")), categories.ids(column))


def test_card_and_report_say_which_rows(linear_bundle):
    card = mlkiln.load(linear_bundle).card
    assert card.evaluation.rows == {"train": card.split.n_train, "test": card.split.n_test,
                                    "importance": min(card.split.n_test, 2000), "scatter": min(card.split.n_test, 2000)}
    assert f"blocks of {metrics.BLOCK_ROWS:,} rows" in card.evaluation.metrics
    page = (Path(linear_bundle) / "report.html").read_text(encoding="utf-8")
    assert f"test: every row; train: every row; predicted in blocks of {metrics.BLOCK_ROWS:,} rows" in page
    assert "Permutation importance on a seeded sample of" in page
    older = card.to_dict()
    del older["evaluation"]
    assert Card.from_dict(older).evaluation is None


@pytest.fixture
def parts(diamonds, tmp_path):
    """The diamonds sample as three CSV files, and the same rows as one file."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(diamonds), 1000)):
        diamonds.iloc[start:start + 1000].to_csv(folder / f"part-{i}.csv", index=False)
    diamonds.to_csv(tmp_path / "whole.csv", index=False)
    return folder


def test_training_on_a_glob_equals_training_on_the_concatenated_file(parts, tmp_path):
    for source in (str(parts / "part-*.csv"), parts):
        from_parts = mlkiln.train(source, target="price", models=["linear"])
        whole = mlkiln.train(tmp_path / "whole.csv", target="price", models=["linear"])
        assert from_parts.card.data.rows == whole.card.data.rows == 3000
        assert from_parts.metrics["test"] == whole.metrics["test"]
        np.testing.assert_array_equal(from_parts.pipeline[-1].coef_, whole.pipeline[-1].coef_)


def test_glob_errors_are_one_line_exit_2(parts, diamonds, tmp_path):
    one_line_error(cli("train", str(tmp_path / "none" / "*.csv"), "--target", "price", "-o", tmp_path / "m"),
                   "no CSV or Parquet files match")
    diamonds.drop(columns="depth").head(20).to_csv(parts / "part-9.csv", index=False)
    result = cli("train", str(parts / "*.csv"), "--target", "price", "-o", tmp_path / "m")
    one_line_error(result, "part-9.csv does not have the columns of")
    assert "part-0.csv" in result.stderr and "lacks ['depth']" in result.stderr
    assert not (tmp_path / "m").exists()
    pd.testing.assert_frame_equal(data.read_table(parts / "part-[0-2].csv"), diamonds, check_dtype=False)


def test_a_dataset_partitioned_by_folder_names_is_refused_not_read_without_that_column(diamonds, tmp_path):
    root = tmp_path / "run=3" / "sales"  # a folder named so above the dataset is not a partition
    for cut, part in diamonds.head(300).groupby("cut"):
        (root / f"cut={cut}").mkdir(parents=True)
        part.drop(columns="cut").to_parquet(root / f"cut={cut}" / "part-0.parquet")
    for source in (root, str(root / "*" / "*.parquet")):
        result = cli("train", source, "--target", "price", "-o", tmp_path / "m")
        one_line_error(result, "is in a folder named 'cut=Fair': the dataset is partitioned by 'cut'")
        assert not (tmp_path / "m").exists()
    # one partition's folder is a dataset of its own (its column would be constant)
    assert [f.name for f in data.dataset_files(root / "cut=Ideal")] == ["part-0.parquet"]


def test_train_script_reads_the_same_glob(parts, tmp_path):
    """The bundle's train.py, in a process where mlkiln cannot be imported, rebuilds a model trained on a glob."""
    source = str(parts / "part-*.csv")
    bundle = mlkiln.train(source, target="price", models=["linear"]).save(tmp_path / "m")
    out = tmp_path / "repro.joblib"
    subprocess.run([sys.executable, "-c", "import runpy, sys; sys.modules['mlkiln'] = None; "
                    f"sys.argv = ['train.py', {source!r}, '-o', {str(out)!r}]; "
                    f"runpy.run_path({str(bundle / 'train.py')!r}, run_name='__main__')"],
                   check=True, timeout=120, capture_output=True)
    model = mlkiln.load(bundle)
    X = model.prepare(data.read_table(tmp_path / "whole.csv"))
    np.testing.assert_array_equal(joblib.load(out).predict(X), model.pipeline.predict(X))


def test_training_metrics_above_the_limit_use_a_seeded_sample_and_say_so(diamonds, monkeypatch):
    monkeypatch.setattr(metrics, "TRAIN_METRIC_ROWS", 1000)
    run = mlkiln.train(diamonds, target="price", models=["linear"], seed=3)
    card = run.card
    assert card.evaluation.rows["train"] == 1000 and card.evaluation.rows["test"] == card.split.n_test == 600
    assert f"train: a seeded sample of 1,000 of the {card.split.n_train:,} rows" in card.evaluation.metrics
    # recomputed here: the same split, the seeded sample of its training rows, scikit-learn's R2 on them
    y = diamonds["price"].astype("float64")
    X_train, X_test, y_train, y_test = split_train_test(diamonds.drop(columns="price"), y, test_size=0.2, seed=3,
                                                        stratify=False)
    take = np.sort(np.random.default_rng(3).choice(len(y_train), 1000, replace=False))
    pipe = run.model.pipeline
    sample = run.model.prepare(X_train.iloc[take])
    assert card.metrics["train"]["r2"] == pytest.approx(r2_score(y_train.iloc[take], pipe.predict(sample)), abs=1e-9)
    assert card.metrics["train"]["n"] == 1000
    assert card.metrics["test"]["r2"] == pytest.approx(r2_score(y_test, pipe.predict(run.model.prepare(X_test))),
                                                       abs=1e-9)


def test_a_dataset_whose_csv_files_are_written_differently_is_refused_for_training(tmp_path):
    """train.py reads a dataset's files with one set of options: it crashed on a second file in ';' and ','."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)}).assign(y=lambda f: 3 * f["x"])
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.head(100).to_csv(folder / "a.csv", index=False)
    frame.tail(100).to_csv(folder / "b.csv", index=False, sep=";", decimal=",")
    one_line_error(cli("train", folder, "--target", "y", "--models", "ridge", "-o", tmp_path / "m"),
                   "b.csv is written differently from")
    assert not (tmp_path / "m").exists()
    assert len(data.read_table(folder)) == 200  # scoring and drift still read each file its own way
