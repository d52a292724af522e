"""Peaks over threshold on a known tail, the oracle F1 bound, and alarms under a shift."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from sparse_lstm_ad.config import Calibration, ScoringConfig, Threshold, TrackingConfig
from sparse_lstm_ad.score import score_csv
from sparse_lstm_ad.thresholds import (
    alarm_shift,
    best_f1,
    choose_threshold,
    flagged_share,
    pot_threshold,
    promised_share,
)
from tests.conftest import store_runs


def test_pot_finds_the_exponential_quantile() -> None:
    # Exp(1): excesses over any level are Exp(1) again (GPD shape 0); the 1 - 1e-4 quantile
    # is ln(1e4), beyond most of the sample's own order statistics.
    scores = np.random.default_rng(0).exponential(size=200_000)
    assert pot_threshold(scores, level=0.98, risk=1e-4) == pytest.approx(math.log(1e4), rel=0.03)


def test_pot_finds_a_pareto_quantile() -> None:
    # Pareto with tail index 3: P(X > x) = x^-3, so the 1e-3 risk quantile is 10.
    scores = np.random.default_rng(1).pareto(3.0, size=200_000) + 1.0
    assert pot_threshold(scores, level=0.98, risk=1e-3) == pytest.approx(10.0, rel=0.08)


def test_pot_with_too_thin_a_tail_falls_back_to_the_quantile() -> None:
    scores = np.arange(100.0)
    assert pot_threshold(scores, level=0.98, risk=1e-2) == pytest.approx(np.quantile(scores, 0.99))


def test_best_f1_is_the_highest_over_every_threshold() -> None:
    rng = np.random.default_rng(2)
    labels = rng.random(500) < 0.1
    scores = rng.normal(size=500) + labels
    by_hand = max(f1_score(labels, scores >= t) for t in np.unique(scores))
    assert best_f1(scores, labels) == pytest.approx(by_hand)
    assert np.isnan(best_f1(scores, np.zeros(500, dtype=bool)))


# --- Alarms under a shift, and the threshold that adapts to the scored series --------------


def test_calibrated_threshold_follows_a_shifted_series() -> None:
    """Validation scores Exp(1); the scored series is the same law moved up by 10 (a shift of
    the whole test data). Fitted on validation rows the threshold flags nearly every row;
    calibrated on the series' first 1,000 rows, recentred or refitted, it flags the share it
    promises."""
    rng = np.random.default_rng(3)
    val, shifted = rng.exponential(size=5000), rng.exponential(size=20_000) + 10.0
    for rule, calibration in itertools.product(Threshold, Calibration):
        on_val = ScoringConfig(threshold=rule)
        calibrated = ScoringConfig(threshold=rule, calibrate_rows=1000, calibration=calibration)
        share = flagged_share(shifted, choose_threshold(val, shifted, on_val))
        assert share > 0.99 and alarm_shift(share, on_val) == "too_many_flagged"
        share = flagged_share(shifted, choose_threshold(val, shifted, calibrated))
        assert share == pytest.approx(promised_share(calibrated), abs=0.006), calibration
        assert alarm_shift(share, calibrated) is None
    # Refitted, the quantile is the tail's own: 10 + ln(100) for Exp(1) at 0.99; recentred,
    # the validation quantile (ln 100) moved by the shift of the medians (10).
    for calibration in Calibration:
        cfg = ScoringConfig(calibrate_rows=20_000, calibration=calibration)
        assert choose_threshold(val, shifted, cfg) == pytest.approx(10 + math.log(100), rel=0.02)


def test_recentring_is_robust_to_anomalies_in_the_calibration_rows() -> None:
    """A fifth of the first 1,000 rows are anomalies far out: refitted on them the 0.99
    quantile lands among the anomalies and later anomalies of that size go unflagged;
    recentred by the median it barely moves from the validation threshold."""
    rng = np.random.default_rng(4)
    val, series = rng.exponential(size=5000), rng.exponential(size=20_000)
    series[:1000:5] += 50.0
    base = choose_threshold(val, series, ScoringConfig())
    refit = ScoringConfig(calibrate_rows=1000, calibration=Calibration.refit)
    recentred = ScoringConfig(calibrate_rows=1000)
    assert choose_threshold(val, series, refit) > 50
    assert choose_threshold(val, series, recentred) == pytest.approx(base, abs=0.3)
    # A series with no scored row yet (shorter than a window) keeps the validation threshold.
    unscored = np.full(10, np.nan)
    assert choose_threshold(val, unscored, recentred) == choose_threshold(val, unscored, refit)
    assert choose_threshold(val, unscored, refit) == base


def test_flagged_share_leaves_unscored_rows_out_and_names_both_shifts() -> None:
    scores = np.array([np.nan, np.nan, 0.0, 1.0, 2.0, 3.0])
    assert flagged_share(scores, 1.5) == 0.5
    assert np.isnan(flagged_share(np.full(3, np.nan), 1.0))
    cfg = ScoringConfig()  # 0.99 quantile: promises 1 %, warns above 20 %
    assert promised_share(cfg) == pytest.approx(0.01)
    assert promised_share(ScoringConfig(threshold=Threshold.pot, pot_risk=1e-3)) == 1e-3
    assert alarm_shift(0.15, cfg) is None
    assert alarm_shift(0.25, cfg) == "too_many_flagged"
    assert alarm_shift(0.0, cfg) == "none_flagged"
    # POT keeps its 0.1 % promise on normal rows and finds every anomaly of a series 5 % of
    # whose rows are anomalous: no shift (a factor of the promise called it one at 2 %).
    pot = ScoringConfig(threshold=Threshold.pot, pot_risk=1e-3)
    assert alarm_shift(0.95 * 1e-3 + 0.05, pot) is None
    assert alarm_shift(0.30, pot) == "too_many_flagged"


def _shifted_csv(folder: Path) -> list[str]:
    """Three correlated channels; the test file sits 4 training stds above the training rows."""
    rng = np.random.default_rng(0)
    latent = np.sin(np.arange(900) / 8.0)
    values = latent[:, None] * [1.0, 0.8, -0.5] + 0.1 * rng.normal(size=(900, 3))
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    train, test = frame[:600], frame[600:] + 4 * frame[:600].std()
    test = test.assign(label=0)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return [
        "data=csv",
        f"data.csv.dir={folder}",
        "data.csv.train=train.csv",
        "data.csv.test=test.csv",
        "data.csv.label_column=label",
        "model=mahalanobis",
        "tracking.log_model=false",
    ]


def test_a_run_on_a_shifted_series_warns_and_is_tagged(tmp_path: Path, run_cli: Any) -> None:
    data = _shifted_csv(tmp_path)
    shifted = run_cli(*data)
    assert shifted.returncode == 0, shifted.stderr[-2000:]
    output = shifted.stdout + shifted.stderr
    assert "the threshold flags 100.0 % of the test rows where it promises 1 %" in output
    assert "(too_many_flagged): a shift of the test data from the training data" in output
    calibrated = run_cli(*data, "scoring.calibrate_rows=100", "tracking.log_model=true")
    assert calibrated.returncode == 0, calibrated.stderr[-2000:]
    first, second = store_runs(tmp_path / "mlruns")
    assert first.data.tags["alarm_shift"] == "too_many_flagged"
    assert first.data.metrics["flagged_share"] == 1.0
    assert "alarm_shift" not in second.data.tags
    assert second.data.metrics["flagged_share"] < 0.1  # 100 % without the calibration
    # The logged model calibrates on the start of each frame it scores, as the run did.
    store = TrackingConfig(dir=str(tmp_path / "mlruns"))
    uri = f"runs:/{second.info.run_id}/model"
    table, threshold, _ = score_csv(store, uri, tmp_path / "test.csv", None, 1)
    assert threshold == pytest.approx(second.data.metrics["threshold"])
    assert table["flag"].mean() == pytest.approx(second.data.metrics["flagged_share"])


def test_a_threshold_resting_on_a_handful_of_validation_rows_says_so() -> None:
    """150 validation rows hold 1.5 rows above a 0.99 quantile and 0.15 above POT at 0.1 %:
    their promises are guesses. 900 rows, 9 above the quantile, are enough; POT is not."""
    from sparse_lstm_ad.thresholds import thin_promise

    quantile, pot = ScoringConfig(), ScoringConfig(threshold=Threshold.pot, pot_risk=1e-3)
    short = np.r_[np.random.default_rng(0).normal(size=150), np.nan]  # a NaN row is unscored
    assert thin_promise(short, quantile) == pytest.approx(1.5)
    assert thin_promise(short, pot) == pytest.approx(0.15)
    longer = np.random.default_rng(0).normal(size=900)
    assert thin_promise(longer, quantile) is None
    assert thin_promise(longer, pot) == pytest.approx(0.9)
    following = ScoringConfig(threshold=Threshold.pot, pot_risk=1e-3, calibrate_rows=1000)
    assert thin_promise(longer, following) is None  # it rests on the scored rows then
