"""--max-latency-us: only a model that scores one row that fast is chosen (the card's latency itself: test_compiled)."""

import re

import pytest
from common import ENSEMBLE_ARGS, cli, one_line_error

import mlkiln
from mlkiln.errors import ArgumentError
from mlkiln.options import TrainOptions


@pytest.mark.parametrize("value", [0, -5, float("nan"), "fast", True])
def test_max_latency_must_be_a_positive_number(value):
    with pytest.raises(ArgumentError, match=re.escape(f"max_latency_us={value!r}: must be a positive number")):
        TrainOptions(max_latency_us=value)


def test_a_limit_below_the_best_model_chooses_the_next_best_that_is_fast_enough(ensemble_run, ensemble_csv):
    # the session's run chose an ensemble with a forest in it; ridge alone scores a row many times faster
    assert ensemble_run.card.model.family == "ensemble"
    ridge = mlkiln.train(ensemble_csv, target="price", models=["ridge"], trials=2)
    limit = 3 * ridge.card.latency_us
    assert limit < ensemble_run.card.latency_us
    run = mlkiln.train(ensemble_csv, target="price", models=["ridge", "hgb", "extra_trees"], trials=2,
                       max_latency_us=limit)
    card = run.card
    assert card.model.family != "ensemble" and card.latency_us <= limit and card.tuning.max_latency_us == limit
    # the chosen one is the best of what remained: no runner-up that was fast enough scores better on the folds
    board = run.leaderboard.set_index("family")
    chosen = board.loc[card.model.family, "cv_mean"]
    assert card.metrics["validation"]["mean"]["r2"] == pytest.approx(chosen)
    # train.py-ready: the bundle holds the chosen model, which predicts as the run does
    assert (run.predict(ensemble_csv) == run.model.predict(ensemble_csv)).all()


def test_an_impossible_limit_is_one_clear_error(ensemble_csv, tmp_path):
    result = cli("train", ensemble_csv, *ENSEMBLE_ARGS[:2], "--models", "ridge", "--max-latency-us", "0.001",
                 "-o", tmp_path / "m")
    one_line_error(result, "--max-latency-us 0.001: no model scores one row that fast: ridge (")
    assert not (tmp_path / "m").exists()
    # every model too slow: the best bagged, then alone; the next best not bagged again
    result = cli("train", ensemble_csv, *ENSEMBLE_ARGS[:2], "--models", "hgb", "hgb_target", "--trials", "1",
                 "--no-ensemble", "--max-latency-us", "0.001", "-o", tmp_path / "m")
    one_line_error(result, "no model scores one row that fast: ")
    named = result.stderr.split("that fast: ")[1].split("), ")
    assert len(named) == 3 and " bagged (" in named[0]  # the best bagged, then alone, then the next best alone
    assert not any("bagged" in model for model in named[1:]), named
    one_line_error(cli("train", ensemble_csv, *ENSEMBLE_ARGS[:2], "--max-latency-us", "-3"),
                   "--max-latency-us -3.0: must be a positive number of microseconds")
