"""Shared fixtures: real example tables written to real files, and bundles trained once per session."""

import pandas as pd
import pytest

import mlkiln
from mlkiln.examples import EXAMPLES, load_example


@pytest.fixture(scope="session")
def diamonds() -> pd.DataFrame:
    """A 3,000-row sample of diamonds: large enough to learn, small enough to be quick."""
    return load_example("diamonds").sample(3000, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def diamonds_csv(tmp_path_factory, diamonds) -> str:
    path = tmp_path_factory.mktemp("data") / "diamonds.csv"
    diamonds.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def failure_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "machine.csv"
    load_example("machine-failure").to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def diamonds_run(diamonds_csv):
    return mlkiln.train(diamonds_csv, target="price", models=["linear", "hgb"])


@pytest.fixture(scope="session")
def diamonds_bundle(tmp_path_factory, diamonds_run) -> str:
    return str(diamonds_run.save(tmp_path_factory.mktemp("bundles") / "diamonds"))


@pytest.fixture(scope="session")
def linear_bundle(tmp_path_factory, diamonds_csv) -> str:
    """The course's least-squares model alone: fitted by mlkiln.least_squares' streaming fit."""
    run = mlkiln.train(diamonds_csv, target="price", models=["linear"])
    return str(run.save(tmp_path_factory.mktemp("bundles") / "linear"))


@pytest.fixture(scope="session")
def failure_run(failure_csv):
    """The real AI4I table as its example defines it: RNF dropped (a failure-mode label)."""
    example = EXAMPLES["machine-failure"]
    return mlkiln.train(failure_csv, target=example.target, drop=list(example.drop), models=["logistic_l1", "hgb"])


@pytest.fixture(scope="session")
def failure_bundle(tmp_path_factory, failure_run) -> str:
    return str(failure_run.save(tmp_path_factory.mktemp("bundles") / "failure"))


@pytest.fixture(scope="session")
def ensemble_run(diamonds):
    """Three families, two candidates each: ensemble selection weighs them, and the ensemble wins."""
    return mlkiln.train(diamonds.head(1500), target="price", models=["ridge", "hgb", "extra_trees"], trials=2)


@pytest.fixture(scope="session")
def ensemble_csv(tmp_path_factory, diamonds) -> str:
    path = tmp_path_factory.mktemp("data") / "ensemble.csv"
    diamonds.head(1500).to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def ensemble_bundle(tmp_path_factory, ensemble_run) -> str:
    return str(ensemble_run.save(tmp_path_factory.mktemp("bundles") / "ensemble"))
