"""The CSV loader: what it reads, and every bad input named by file and column."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparse_lstm_ad.config import ConstantPolicy, CsvDataConfig, NanPolicy
from sparse_lstm_ad.data.csv_source import load_csv_split
from sparse_lstm_ad.data.sources import load_series
from tests.conftest import ROOT, compose_config

ASD = ROOT.parent / "shared" / "data" / "asd"


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"t": np.arange(40), "a": rng.normal(size=40), "b": rng.normal(size=40), "host": "x"}
    )
    test = pd.DataFrame(
        {"t": np.arange(40, 60), "a": rng.normal(size=20), "b": rng.normal(size=20), "host": "x"}
    )
    test["label"] = (np.arange(20) >= 15).astype(int)
    return train, test


def _write(tmp_path: Path, train: pd.DataFrame, test: pd.DataFrame) -> CsvDataConfig:
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    return CsvDataConfig(
        dir=str(tmp_path),
        train="train.csv",
        test="test.csv",
        time_column="t",
        label_column="label",
    )


def test_two_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train, test = _frames()
    with caplog.at_level(logging.WARNING):
        split = load_csv_split(_write(tmp_path, train, test))
    assert split.channels == ["a", "b"]  # not the time, the label or the text column
    assert "host" in caplog.text
    np.testing.assert_array_equal(split.train, train[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(split.test_labels, test["label"].to_numpy())
    assert split.test_channel_labels is None
    # The time column is not a feature, but the run's score plot is drawn against it.
    np.testing.assert_array_equal(split.test_times, test["t"].to_numpy())
    assert split.every(2).test_times.tolist() == test["t"].iloc[::2].tolist()


@pytest.mark.parametrize("clock", ["numbers", "dates"])
@pytest.mark.parametrize("name", ["t", "time", "timestamp"])  # the three the name promises
def test_a_t_time_or_timestamp_column_is_the_time_unless_the_channels_are_named(
    name: str, clock: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, test = (frame.rename(columns={"t": name}) for frame in _frames())
    if clock == "dates":  # a clock written as date strings, one row a minute
        minutes = pd.date_range("2024-01-01", periods=60, freq="min").astype(str)
        train[name], test[name] = minutes[:40], minutes[40:]
    cfg = dataclasses.replace(_write(tmp_path, train, test), time_column=None)
    with caplog.at_level(logging.INFO):
        split = load_csv_split(cfg)
    # A counter that runs on into the test rows is no channel: it would flag every test row.
    assert split.channels == ["a", "b"]
    np.testing.assert_array_equal(split.test_times, test[name].to_numpy())
    assert f"column {name!r} taken as the time" in caplog.text
    if clock == "numbers":  # dates cannot be a channel: named, they are refused as text
        named = load_csv_split(dataclasses.replace(cfg, features=[name, "a"]))
        assert named.channels == [name, "a"] and named.test_times is None


def test_a_counter_that_runs_on_into_the_test_rows_is_not_a_channel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train, test = _frames()
    # A meter's running total between a and b, in both files; a count that starts again.
    train.insert(2, "kwh", np.arange(0, 80, 2) // 4)
    test.insert(2, "kwh", 20 + np.arange(0, 40, 2) // 4)
    train["batch"], test["batch"] = np.arange(40), np.arange(20)
    cfg = _write(tmp_path, train, test)
    # Channel 3 is b, counted with kwh as the file has it: it stays on b once kwh is out.
    (tmp_path / "interpretation.txt").write_text("15-19:3")
    with caplog.at_level(logging.WARNING):
        split = load_csv_split(dataclasses.replace(cfg, channel_labels="interpretation.txt"))
    assert split.channels == ["a", "b", "batch"]
    assert "['kwh'] count up" in caplog.text
    assert split.test_channel_labels[15:, 1].all() and split.test_channel_labels.sum() == 5
    kept = load_csv_split(dataclasses.replace(cfg, features=["a", "kwh"]))
    assert kept.channels == ["a", "kwh"]
    only_counters = _write(tmp_path, train[["t", "kwh"]], test[["t", "kwh", "label"]])
    with pytest.raises(ValueError, match=r"train\.csv: every channel counts up.*\['kwh'\]"):
        load_csv_split(only_counters)


def test_a_t_that_is_no_clock_stays_a_channel(tmp_path: Path) -> None:
    train, test = _frames()
    rng = np.random.default_rng(1)
    train["t"], test["t"] = 20 + rng.normal(size=40), 20 + rng.normal(size=20)  # a temperature
    split = load_csv_split(dataclasses.replace(_write(tmp_path, train, test), time_column=None))
    assert split.channels == ["t", "a", "b"] and split.test_times is None


def test_score_plot_axis_is_the_time_column_when_there_is_one() -> None:
    from sparse_lstm_ad.plots import _time_axis

    assert _time_axis(None, 3)[1] == "test row"
    values, label = _time_axis(pd.Series([10, 20, 30], name="t"), 3)
    assert label == "t" and values.tolist() == [10, 20, 30]
    dates = pd.Series(["2026-01-01 00:00", "2026-01-01 00:01"], name="timestamp")
    values, label = _time_axis(dates, 2)
    assert label == "timestamp" and np.issubdtype(values.dtype, np.datetime64)
    assert _time_axis(pd.Series(["a", "b"], name="id"), 2)[1] == "row (id)"


def test_one_file_split_and_no_labels(tmp_path: Path) -> None:
    train, _ = _frames()
    train.drop(columns="host").to_csv(tmp_path / "all.csv", index=False)
    cfg = CsvDataConfig(dir=str(tmp_path), train="all.csv", test_from=30, features=["b"])
    split = load_csv_split(cfg)
    assert split.train.shape == (30, 1) and split.test.shape == (10, 1)
    assert split.channels == ["b"] and split.test_labels is None


def test_channel_labels_file(tmp_path: Path) -> None:
    train, test = _frames()
    cfg = _write(tmp_path, train, test)
    (tmp_path / "interpretation.txt").write_text("15-17:2\n18-19:1,2")
    split = load_csv_split(dataclasses.replace(cfg, channel_labels="interpretation.txt"))
    expected = np.zeros((20, 2), dtype=np.int8)
    expected[15:18, 1] = 1
    expected[18:20, :] = 1
    np.testing.assert_array_equal(split.test_channel_labels, expected)
    (tmp_path / "interpretation.txt").write_text("3-4:1")  # a row the label column calls normal
    with pytest.raises(ValueError, match=r"interpretation\.txt.*row 3.*'label'"):
        load_csv_split(dataclasses.replace(cfg, channel_labels="interpretation.txt"))
    (tmp_path / "interpretation.txt").write_text("15-17:3")  # there is no third channel
    with pytest.raises(ValueError, match=r"interpretation\.txt: line 1"):
        load_csv_split(dataclasses.replace(cfg, channel_labels="interpretation.txt"))


def test_missing_file(tmp_path: Path) -> None:
    cfg = _write(tmp_path, *_frames())
    with pytest.raises(ValueError, match=r"nope\.csv: no such file \(data\.csv\.test"):
        load_csv_split(dataclasses.replace(cfg, test="nope.csv"))
    with pytest.raises(ValueError, match=r"data\.csv\.train is not set"):
        load_csv_split(dataclasses.replace(cfg, train=""))


def test_missing_column(tmp_path: Path) -> None:
    train, test = _frames()
    cfg = _write(tmp_path, train, test.drop(columns="b"))
    with pytest.raises(
        ValueError, match=r"test\.csv: column 'b' \(a feature or time column\) is missing"
    ):
        load_csv_split(cfg)
    cfg = _write(tmp_path, train, test)
    with pytest.raises(
        ValueError, match=r"train\.csv: column 'zz' \(a feature or time column\) is missing"
    ):
        load_csv_split(dataclasses.replace(cfg, features=["a", "zz"]))
    with pytest.raises(
        ValueError, match=r"test\.csv: column 'lbl' \(data\.csv\.label_column\) is missing"
    ):
        load_csv_split(dataclasses.replace(cfg, label_column="lbl"))


def test_non_numeric_column(tmp_path: Path) -> None:
    train, test = _frames()
    train["b"] = train["b"].astype(object)
    train.loc[7, "b"] = "12,5"
    cfg = _write(tmp_path, train, test)
    with pytest.raises(
        ValueError, match=r"train\.csv: column 'b' is not numeric: '12,5' at line 9"
    ):
        load_csv_split(cfg)
    with pytest.raises(ValueError, match=r"train\.csv: column 'host' is not numeric"):
        load_csv_split(dataclasses.replace(cfg, features=["a", "host"]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_by_policy(tmp_path: Path, bad: float) -> None:
    train, test = _frames()
    test.loc[[0, 5], "a"] = bad  # a leading gap and one inside
    cfg = _write(tmp_path, train, test)
    with pytest.raises(ValueError, match=r"test\.csv: column 'a' has NaN or inf at line 2 \(2 "):
        load_csv_split(cfg)
    filled = load_csv_split(dataclasses.replace(cfg, nan_policy=NanPolicy.ffill)).test[:, 0]
    assert filled[0] == test["a"][1] and filled[5] == test["a"][4]
    zeroed = load_csv_split(dataclasses.replace(cfg, nan_policy=NanPolicy.zero)).test[:, 0]
    assert zeroed[0] == 0.0 and zeroed[5] == 0.0 and zeroed[6] == test["a"][6]


def test_constant_column(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train, test = _frames()
    train["b"] = 3.0
    cfg = _write(tmp_path, train, test)
    with pytest.raises(ValueError, match=r"train\.csv: column 'b' is constant"):
        load_csv_split(cfg)
    with caplog.at_level(logging.WARNING):
        split = load_csv_split(dataclasses.replace(cfg, constant=ConstantPolicy.drop))
    assert split.channels == ["a"] and split.test.shape == (20, 1)
    assert "'b'" in caplog.text and "train.csv" in caplog.text


def test_a_run_warns_of_a_dropped_column_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from tests.conftest import TRAIN, train_in_process

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 2)), columns=["a", "b"]).assign(c=1.0)
    frame.to_csv(tmp_path / "plant.csv", index=False)
    command = [sys.executable, str(TRAIN), "model=pca", "data=csv", f"data.csv.dir={tmp_path}"]
    command += ["data.csv.train=plant.csv", "data.csv.test_from=400", "data.csv.constant=drop"]
    command += [f"tracking.dir={tmp_path / 'mlruns'}", f"hydra.run.dir={tmp_path / 'out'}"]
    result = train_in_process(command)
    assert result.returncode == 0, result.stderr[-3000:]
    # The checks load the data before the run does: only the run says it. (In this process
    # the checks' lines reach caplog; the run's, under Hydra's logging, its output.)
    by_checks = [r for r in caplog.records if "dropped columns constant" in r.getMessage()]
    by_run = (result.stdout + result.stderr).count("dropped columns constant")
    assert (len(by_checks), by_run) == (0, 1)


def test_bad_labels(tmp_path: Path) -> None:
    train, test = _frames()
    test.loc[3, "label"] = 2
    with pytest.raises(ValueError, match=r"test\.csv: column 'label' .*0 or 1: 2 at line 5"):
        load_csv_split(_write(tmp_path, train, test))


def test_csv_group_composes(tmp_path: Path) -> None:
    train, test = _frames()
    _write(tmp_path, train, test)
    cfg = compose_config(
        "data=csv",
        f"data.csv.dir={tmp_path}",
        "data.csv.train=train.csv",
        "data.csv.test=test.csv",
        "data.csv.features=[a]",
        "data.csv.label_column=label",
        "data.every=2",
    )
    split = load_series(cfg.data)
    assert split.channels == ["a"] and split.test.shape == (10, 1)


def _interpretation(entity: str, n_test: int, k: int) -> np.ndarray:
    labels = np.zeros((n_test, k), dtype=np.int8)
    for line in (ASD / entity / "interpretation.txt").read_text().split():
        rows, channels = line.split(":")
        start, end = (int(x) for x in rows.split("-"))
        labels[start : end + 1, [int(c) - 1 for c in channels.split(",")]] = 1
    return labels


@pytest.mark.skipif(not ASD.is_dir(), reason=f"ASD is not at {ASD}")
def test_asd_omi_1() -> None:
    cfg = compose_config("data=asd", "data.entity=omi-1", f"data.csv.dir={ASD}")
    assert cfg.data.name == "asd-omi-1"
    split = load_series(cfg.data)
    assert split.train.shape == (8640, 19) and split.test.shape == (4320, 19)
    assert split.channels == [f"m{i:02d}" for i in range(1, 20)]
    assert split.test_labels is not None and split.test_labels.sum() == 441
    np.testing.assert_array_equal(split.test_channel_labels, _interpretation("omi-1", 4320, 19))
    np.testing.assert_array_equal(split.test_labels, split.test_channel_labels.any(axis=1))


@pytest.mark.skipif(not ASD.is_dir(), reason=f"ASD is not at {ASD}")
def test_asd_entity_override_and_constant_drop() -> None:
    cfg = compose_config("data=asd", "data.entity=omi-2", f"data.csv.dir={ASD}")
    assert cfg.data.csv.test == "omi-2/test.csv.gz"
    split = load_series(cfg.data)
    assert "m03" not in split.channels and len(split.channels) == 18  # constant in train


@pytest.mark.skipif(not ASD.is_dir(), reason=f"ASD is not at {ASD}")
def test_asd_decimated_drops_what_decimation_makes_constant() -> None:
    # m02 of omi-1 varies on the full training rows, not on every 20th.
    cfg = compose_config("data=asd", f"data.csv.dir={ASD}", "+experiment=fast")
    split = load_series(cfg.data)
    assert split.train.shape == (432, 18) and "m02" not in split.channels
    assert split.test_channel_labels is not None and split.test_channel_labels.shape == (216, 18)


def test_an_entity_chosen_by_key_names_the_dataset_as_its_preset_does() -> None:
    from sparse_lstm_ad.data.sources import dataset_name

    def named(*overrides: str) -> str:
        return dataset_name(compose_config(*overrides).data, overrides[0].split("=")[1])

    # Two entities of one sweep are two datasets in its tables and selection groups.
    assert named("data=asd", "data.entity=omi-2") == named("data=asd_omi2") == "asd_omi2"
    assert named("data=asd") == "asd_omi1" and named("data=case1") == "case1"
