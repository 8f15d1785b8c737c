"""A date's parts (hour, weekday, day of the year) read by trees besides its seconds since 1970: which parts a
column gets (``pipeline.date_parts``), their values (``pipeline.date_part``), and a model that needs them."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score

import mlkiln
from mlkiln.pipeline import DATE_PARTS, _varying_parts, build_pipeline, date_part, date_parts
from mlkiln.schema import to_seconds


def _parts(values) -> list:
    seconds = to_seconds(pd.Series(values)).to_numpy()
    return _varying_parts(seconds[np.isfinite(seconds)])


def test_a_column_gets_the_parts_that_vary_in_it():
    hourly = pd.date_range("2020-01-01", periods=20_000, freq="h").astype(str)
    assert _parts(hourly) == ["hour", "weekday", "yearday"]
    daily = pd.date_range("2020-01-01", periods=300, freq="D").astype(str)  # within a year: its day is its time
    assert _parts(daily) == ["weekday"]
    assert _parts(pd.date_range("2015-01-01", periods=900, freq="D").astype(str)) == ["weekday", "yearday"]
    # a month's first day, or a year's: the weekday is noise, a year's day of the year constant
    assert _parts([f"{y}-{m:02d}-01" for y in range(1990, 2010) for m in range(1, 13)]) == ["yearday"]
    assert _parts([f"{y}-01-01" for y in range(1950, 2010)]) == []
    assert _parts(["08:30", "09:15", "23:59"] * 20) == []  # times of day alone: the seconds are the hour
    assert _parts([None] * 50) == []


def test_a_part_is_read_where_it_explains_the_target():
    rng = np.random.default_rng(1)
    stamps = pd.Series(pd.to_datetime(rng.integers(1_500_000_000, 1_600_000_000, 6000), unit="s"))
    frame = pd.DataFrame({"d": to_seconds(stamps.astype(str)), "n": rng.normal(size=6000)})
    kinds = {"d": "datetime", "n": "numeric"}
    assert date_parts(frame, rng.normal(size=6000), kinds) == {}  # noise: no part
    evening = (stamps.dt.hour >= 18).to_numpy()
    assert date_parts(frame, np.where(evening, "evening", "day"), kinds) == {"d": ("hour",)}
    summer, sunday = stamps.dt.month.isin([6, 7, 8]).to_numpy(), (stamps.dt.day_of_week == 6).to_numpy()
    y = 2.0 * summer + 2.0 * sunday + rng.normal(size=6000)
    assert date_parts(frame, y, kinds) == {"d": ("weekday", "yearday")}
    # missing dates are a bin of their own; numbers are never dates
    assert date_parts(frame.assign(d=frame["d"].where(rng.random(6000) < 0.7)), y, kinds) == {"d": ("weekday", "yearday")}


def test_the_parts_are_those_pandas_reads():
    rng = np.random.default_rng(0)
    stamps = pd.Series(pd.to_datetime(rng.integers(-2_000_000_000, 4_000_000_000, 5000), unit="s"))
    seconds = to_seconds(stamps.dt.strftime("%Y-%m-%d %H:%M:%S")).to_numpy()[:, None]
    hours = stamps.dt.hour + stamps.dt.minute / 60 + stamps.dt.second / 3600
    np.testing.assert_allclose(date_part("hour").fit_transform(seconds).ravel(), hours, atol=1e-6)
    np.testing.assert_allclose(date_part("weekday").fit_transform(seconds).ravel(), stamps.dt.day_of_week + hours / 24,
                               atol=1e-6)
    # the mean Gregorian year from 1970: within a day and a half of the calendar's day of the year, but at its turn
    yearday = date_part("yearday").fit_transform(seconds).ravel()
    calendar = stamps.dt.day_of_year - 1 + hours / 24
    off = np.abs(yearday - calendar)
    assert np.all((off < 1.5) | (off > 363.5))
    # midnight is 0, not the saw's middle; a missing date stays missing
    midnight = to_seconds(pd.Series(["2019-05-05 00:00", None])).to_numpy()[:, None]
    np.testing.assert_array_equal(date_part("hour").fit_transform(midnight).ravel(), [0.0, np.nan])
    assert date_part("weekday").fit_transform(midnight)[0, 0] == 6.0  # a Sunday


def test_trees_read_the_parts_linear_models_do_not():
    kinds = {"when": "datetime", "x": "numeric", "c": "categorical"}
    dates = {"when": ("hour", "weekday")}
    for family, expected in (("hgb", ["hour", "weekday"]), ("rf", ["hour", "weekday"]), ("logistic_l2", [])):
        blocks = [name for name, *_ in build_pipeline("classification", family, kinds, dates=dates)[0].transformers]
        assert [b for b in blocks if b in DATE_PARTS] == expected
    hgb = build_pipeline("classification", "hgb", kinds, dates=dates)[-1]
    assert hgb.categorical_features == [False, False, False, False, True]  # seconds, x, hour, weekday; then c


def test_the_weekday_is_learnt_and_the_bundle_keeps_it(league_run, league_bundle, league_csv):
    data = pd.read_csv(league_csv)
    X, y = data.drop(columns="result"), data["result"]
    kinds = league_run.card.schema.kinds
    # the Sundays: the weekday explains the results, the hour and the day of the year do not
    assert kinds["kickoff"] == "datetime" and league_run.card.model.dates == {"kickoff": ["weekday"]}
    X = X.assign(kickoff=to_seconds(X["kickoff"]))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    params = {"max_iter": 60, "early_stopping": False, "learning_rate": 0.05}
    scores = [cross_val_score(build_pipeline("classification", "hgb", kinds, n_classes=3, params=params, dates=dates),
                              X, y, cv=cv, scoring="neg_log_loss").mean()
              for dates in (None, {"kickoff": ("hour", "weekday", "yearday")})]
    assert scores[1] > scores[0] + 0.01  # the Sundays, which the seconds since 1970 hide
    report = json.loads((Path(league_bundle) / "report.json").read_text())
    assert report["summary"]["dates"] == {"kickoff": ["weekday"]}
    assert "day of the week" in (Path(league_bundle) / "report.html").read_text()
    model = mlkiln.load(league_bundle)
    assert model.predictor.compiled
    rows = data.drop(columns="result").head(40)
    expected = model.pipeline.predict_proba(model.prepare(rows))
    got = np.array([list(model.predict_record(r)["probabilities"].values()) for r in rows.to_dict("records")])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_a_few_words_in_a_date_column_are_missing_dates_not_text():
    from mlkiln.schema import column_kind

    stamps = pd.date_range("2021-01-01", periods=2000, freq="37min").strftime("%Y-%m-%d %H:%M:%S").to_series()
    stamps.iloc[[5, 900]] = ["unknown", "not recorded"]
    assert column_kind(stamps.reset_index(drop=True)) == "datetime"
    assert column_kind(pd.Series(["red", "green", "blue", "2020-01-01"] * 50)) == "categorical"


def test_new_rows_read_an_ambiguous_date_one_way(league_bundle, league_csv):
    # ISO at training: 01/02/2023 is read month first alone, beside 13/02/2023 in a batch, and as one record
    model = mlkiln.load(league_bundle)
    row = pd.read_csv(league_csv).drop(columns="result").head(1)
    alone = model.prepare(row.assign(kickoff="01/02/2023 20:45"))
    batch = model.prepare(pd.concat([row.assign(kickoff="13/02/2023 20:45"), row.assign(kickoff="01/02/2023 20:45")]))
    assert alone["kickoff"].iloc[0] == batch["kickoff"].iloc[1] == to_seconds(pd.Series(["2023-01-02 20:45"]))[0]
    record = model.predict_record({**row.iloc[0].to_dict(), "kickoff": "01/02/2023 20:45"})
    np.testing.assert_allclose(list(record["probabilities"].values()), model.pipeline.predict_proba(alone)[0],
                               rtol=1e-9)


def test_one_record_reads_a_time_with_its_offset_as_a_batch_does(league_bundle, league_csv):
    model = mlkiln.load(league_bundle)
    row = pd.read_csv(league_csv).drop(columns="result").head(1).iloc[0].to_dict()
    for written in ("2023-03-05T20:45:00Z", "2023-03-05T20:45:00.125Z", "2023-03-05 21:45:00+01:00",
                    "2023-03-05T15:45-05:00", "2023-03-05T20:45:00"):
        batch = model.prepare(pd.DataFrame([{**row, "kickoff": written}]))
        record = model.predict_record({**row, "kickoff": written})
        np.testing.assert_allclose(list(record["probabilities"].values()), model.pipeline.predict_proba(batch)[0],
                                   rtol=1e-9)
        assert abs(batch["kickoff"].iloc[0] - to_seconds(pd.Series(["2023-03-05 20:45"]))[0]) < 0.2
