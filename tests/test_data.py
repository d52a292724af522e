"""Tests of the seed data generators, windowing and standardisation."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_lstm_ad.data import (
    SEED_ANOMALY_FROM,
    SEED_ROWS,
    SEED_TRAIN_ROWS,
    Windows,
    fit_standardizer,
    make_windows,
    seed_f1,
    seed_f2,
    seed_labels,
    seed_series,
    window_starts,
)

NORMAL, RAMP, SHIFTED = slice(0, 13_000), slice(13_000, 13_500), slice(13_500, 15_000)


# --- windows -------------------------------------------------------------------------------


def _naive_windows(x: np.ndarray, length: int, stride: int) -> np.ndarray:
    return np.array([x[s : s + length] for s in range(0, len(x) - length + 1, stride)])


@pytest.mark.parametrize(("length", "stride"), [(1, 1), (3, 1), (3, 2), (5, 3), (10, 1), (23, 1)])
def test_make_windows_matches_naive_loop(length: int, stride: int) -> None:
    x = np.arange(23 * 3, dtype=np.float64).reshape(23, 3)
    windows = make_windows(x, length, stride)
    np.testing.assert_array_equal(windows, _naive_windows(x, length, stride))
    np.testing.assert_array_equal(windows[:, 0, :], x[window_starts(23, length, stride)])


def test_make_windows_is_a_read_only_view() -> None:
    x = np.random.default_rng(0).normal(size=(50, 4))
    windows = make_windows(x, 15, 2)
    assert np.shares_memory(windows, x)
    assert not windows.flags.writeable
    assert windows.shape == (18, 15, 4)


def test_window_starts() -> None:
    np.testing.assert_array_equal(window_starts(10, 3, 3), [0, 3, 6])
    assert window_starts(10, 3, 3).dtype == np.int64
    assert len(window_starts(15_000, 15, 1)) == 14_986


@pytest.mark.parametrize(
    ("length", "stride", "message"),
    [
        (15, 1, r"window length 15 is longer than the series \(10 rows\)"),
        (0, 1, "window length must be >= 1"),
        (3, 0, "window stride must be >= 1"),
    ],
)
def test_make_windows_rejects_bad_arguments(length: int, stride: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_windows(np.zeros((10, 2)), length, stride)
    with pytest.raises(ValueError, match=message):
        window_starts(10, length, stride)


def test_make_windows_rejects_1d_input() -> None:
    with pytest.raises(ValueError, match=r"\(n_rows, k\)"):
        make_windows(np.zeros(10), 3)


@pytest.mark.parametrize(("length", "stride"), [(1, 1), (4, 1), (4, 3), (23, 5)])
def test_windows_value_holds_rows_starts_and_view_that_agree(length: int, stride: int) -> None:
    x = np.arange(23 * 3, dtype=np.float64).reshape(23, 3)
    windows = Windows(x, length, stride)
    assert len(windows) == len(windows.starts) == len(windows.view)
    assert (windows.n_rows, windows.channels) == (23, 3) and windows.rows is x
    gathered = windows.rows[windows.starts[:, None] + np.arange(length)]
    np.testing.assert_array_equal(gathered, windows.view)
    np.testing.assert_array_equal(windows.view, _naive_windows(x, length, stride))
    assert np.shares_memory(windows.view, x) and not windows.view.flags.writeable


def test_windows_value_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match=r"window length 15 is longer than the series"):
        Windows(np.zeros((10, 2)), 15)
    with pytest.raises(ValueError, match=r"\(n_rows, k\)"):
        Windows(np.zeros(10), 3)


# --- seed data -----------------------------------------------------------------------------


def test_seed_shapes_and_names() -> None:
    values, names = seed_series(4)
    assert values.shape == (SEED_ROWS, 5)
    assert values.dtype == np.float64
    assert names == ["F1", "F2", "F2_2", "F2_3", "F2_4"]
    assert seed_series(1)[1] == ["F1", "F2"]


def test_seed_copies_are_exact() -> None:
    values, _ = seed_series(4)
    f2 = seed_f2()
    np.testing.assert_array_equal(values[:, 0], seed_f1())
    for column in range(1, 5):
        np.testing.assert_array_equal(values[:, column], f2)


def test_seed_is_deterministic_and_leaves_global_state_alone() -> None:
    # Drawn under two different global states: a series that used the global stream would
    # differ between them (and from the pinned first values).
    np.random.seed(0)
    f1, f2 = seed_f1(), seed_f2()
    np.random.seed(123)
    expected_next = np.random.RandomState(123).random_sample()
    np.testing.assert_array_equal(seed_f1(), f1)
    np.testing.assert_array_equal(seed_f2(), f2)
    assert np.random.random_sample() == expected_next
    assert (f1[0], f2[0]) == pytest.approx((48.250234526945306, 53.24869072732648), abs=1e-12)


def test_seed_draw_order() -> None:
    # Each piece draws its noise in turn from one stream seeded once (legacy seed 1 / 100).
    rng = np.random.RandomState(1)
    first = rng.normal(50, 2, 13_000)
    ramp_noise = rng.normal(0, 2, 500)
    last = rng.normal(60, 2, 1_500)
    f2 = seed_f2()
    np.testing.assert_array_equal(f2[NORMAL], first)
    np.testing.assert_allclose(f2[RAMP] - ramp_noise, 50 + 0.02 * np.arange(500), atol=1e-9)
    np.testing.assert_array_equal(f2[SHIFTED], last)
    noise = np.random.RandomState(100).normal(0, 1, 13_000)
    np.testing.assert_allclose(seed_f1()[NORMAL] - noise - 50, np.sin(np.arange(13_000) / 1000))


def test_seed_regression_values() -> None:
    # Pinned from this implementation (notebook arithmetic order), to catch silent changes.
    f1, f2 = seed_f1(), seed_f2()
    assert f1[0] == pytest.approx(48.250234526945306, abs=1e-12)
    assert f1[13_000] == pytest.approx(49.51099982293055, abs=1e-12)
    assert f1[-1] == pytest.approx(57.101974816859006, abs=1e-12)
    assert f2[0] == pytest.approx(53.24869072732648, abs=1e-12)
    assert f2[13_250] == pytest.approx(55.05200291573402, abs=1e-12)


def test_seed_levels_per_piece() -> None:
    f1, f2 = seed_f1(), seed_f2()
    # F1: level 50 (+ mean of sin over [0, 13) ~ 0.007), ramp 50 -> 55, then level 55 plus
    # 1.5 * mean of sin over [0, 1) = 1.5 * (1 - cos 1) ~ 0.69.
    assert f1[NORMAL].mean() == pytest.approx(50.0, abs=0.05)
    assert f1[RAMP].mean() == pytest.approx(52.5 + 0.12, abs=0.3)
    assert f1[SHIFTED].mean() == pytest.approx(55 + 1.5 * (1 - np.cos(1)), abs=0.1)
    assert f1[NORMAL].std() == pytest.approx(np.sqrt(1 + 0.5), abs=0.1)
    # F2: N(50, 2), ramp 50 -> 60 (mean ~ 55), N(60, 2).
    assert f2[NORMAL].mean() == pytest.approx(50.0, abs=0.06)
    assert f2[RAMP].mean() == pytest.approx(55.0, abs=0.3)
    assert f2[SHIFTED].mean() == pytest.approx(60.0, abs=0.16)
    assert f2[NORMAL].std() == pytest.approx(2.0, abs=0.05)


def test_seed_labels() -> None:
    labels = seed_labels()
    assert labels.shape == (SEED_ROWS - SEED_TRAIN_ROWS,)
    assert labels.dtype == np.int8
    assert labels.sum() == 2_000
    assert labels[SEED_ANOMALY_FROM - 1] == 0
    assert labels[SEED_ANOMALY_FROM] == 1
    np.testing.assert_array_equal(seed_labels(6, 2, 10), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="anomaly_from"):
        seed_labels(6, 5, 10)


# --- scaling -------------------------------------------------------------------------------


def test_standardizer_train_is_standard() -> None:
    values, names = seed_series(2)
    train = values[:SEED_TRAIN_ROWS]
    scaler = fit_standardizer(train, names)
    scaled = scaler.transform(train)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-5)
    # Works on windows too: the last axis is the channel axis.
    assert scaler.transform(make_windows(values, 15)).shape == (14_986, 15, 3)


def test_standardizer_rejects_constant_channel() -> None:
    train = np.column_stack([np.arange(10.0), np.full(10, 0.1)])
    with pytest.raises(ValueError, match="flat"):
        fit_standardizer(train, ["ramp", "flat"])


def test_standardizer_rejects_non_finite() -> None:
    train = np.column_stack([np.arange(10.0), np.arange(10.0)])
    train[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf.*bad"):
        fit_standardizer(train, ["good", "bad"])


def test_standardizer_rejects_wrong_names_or_channels() -> None:
    scaler = fit_standardizer(np.arange(20.0).reshape(10, 2), ["a", "b"])
    with pytest.raises(ValueError, match="channel names"):
        fit_standardizer(np.zeros((10, 2)), ["a"])
    with pytest.raises(ValueError, match="expected 2 channels"):
        scaler.transform(np.zeros((5, 3)))
