"""The score plot of a long series: drawn from its envelope, its spikes and gaps kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparse_lstm_ad.plots import LINE_BINS, envelope, score_series


def test_a_long_series_is_drawn_from_its_envelope() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(1_000_000)
    y[123_457] = 50.0  # a one-row spike
    y[500_000:500_010] = np.nan  # rows without a score
    x = np.arange(len(y))

    xs, ys = envelope(x, y, LINE_BINS)

    assert len(ys) <= 3 * LINE_BINS
    assert np.all(np.diff(xs) > 0)  # in order, no point twice
    assert np.nanmax(ys) == 50.0 and np.nanmin(ys) == np.nanmin(y)
    assert np.isnan(ys).any()  # the gap is still drawn as one
    np.testing.assert_array_equal(ys, y[xs])  # points of the series, not averages


def test_a_short_series_is_drawn_whole() -> None:
    y = np.arange(3 * LINE_BINS, dtype=float)
    _, ys = envelope(np.arange(len(y)), y, LINE_BINS)
    assert len(ys) == len(y)


def test_the_score_plot_of_a_million_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(1_000_000)
    labels = np.zeros(len(scores), dtype=bool)
    labels[10_000:10_500] = True
    path = score_series(scores, labels, 0.9, tmp_path / "test_scores.png", "anomaly score")
    assert path.stat().st_size > 10_000  # a whole PNG, written
