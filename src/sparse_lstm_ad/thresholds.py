"""Thresholds on anomaly scores: a quantile or peaks over threshold of normal scores, and the
oracle bound.

`quantile_threshold` and `pot_threshold` see only normal scores: validation rows, or with
`scoring.calibrate_rows` a first stretch of the series being scored, which recentres the
validation threshold or refits it. `alarm_shift` says when a threshold flags far more (or
fewer) rows than it promises. `best_f1` sees the test labels: it is an upper bound on what any
threshold could reach, reported as `f1_best_oracle`, never a result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparse_lstm_ad.config import Calibration, ScoringConfig, Threshold

# Fewer excesses than this give a generalised Pareto fit that is mostly noise.
MIN_EXCESSES = 10


def quantile_threshold(normal_scores: np.ndarray, quantile: float) -> float:
    """Threshold at a quantile of scores on normal data (never on test labels)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    if np.isnan(normal_scores).all():
        raise ValueError("no non-NaN normal scores to take a quantile of")
    return float(np.nanquantile(normal_scores, quantile))


def pot_threshold(normal_scores: np.ndarray, level: float, risk: float) -> float:
    """Peaks over threshold (SPOT, Siffer et al., KDD 2017), fitted on normal scores.

    The excesses over the `level` quantile follow a generalised Pareto law (shape xi, scale
    sigma, fitted by maximum likelihood); the threshold is the score that law exceeds with
    probability `risk` overall: t + sigma / xi * ((risk * n / n_excesses) ** -xi - 1).
    """
    from scipy.stats import genpareto

    scores = np.asarray(normal_scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ValueError("no finite normal scores to fit a tail to")
    initial = float(np.quantile(scores, level))
    excesses = scores[scores > initial] - initial
    if excesses.size < MIN_EXCESSES or np.ptp(excesses) == 0:
        # Too thin a tail to fit: the empirical quantile at the same risk.
        return float(np.quantile(scores, 1 - risk))
    shape, _, scale = genpareto.fit(excesses, floc=0.0)
    ratio = risk * scores.size / excesses.size
    if abs(shape) < 1e-6:
        return initial - scale * math.log(ratio)
    return initial + scale / shape * (ratio**-shape - 1.0)


def best_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """The highest point-wise F1 over all thresholds (rows without a score are dropped)."""
    from sklearn.metrics import precision_recall_curve

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    scored = np.isfinite(scores)
    if not labels[scored].any():
        return float("nan")
    precision, recall, _ = precision_recall_curve(labels[scored], scores[scored])
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(f1.max())


@dataclass(frozen=True)
class ValidationFit:
    """What the normal validation scores tell a threshold: the rule's value on them, and their
    median (where a calibration recentres from)."""

    threshold: float
    median: float


def fit_on_validation(val_scores: np.ndarray, cfg: ScoringConfig) -> ValidationFit:
    scores = np.asarray(val_scores, dtype=np.float64)
    return ValidationFit(rule_threshold(scores, cfg), float(np.nanmedian(scores)))


@dataclass(frozen=True)
class Rule:
    """A `scoring.threshold`: its threshold on scores taken as normal, and the share of normal
    rows it flags by construction."""

    fit: Callable[[np.ndarray, ScoringConfig], float]
    promise: Callable[[ScoringConfig], float]


RULES = {
    Threshold.quantile: Rule(
        fit=lambda scores, cfg: quantile_threshold(scores, cfg.threshold_quantile),
        promise=lambda cfg: 1.0 - cfg.threshold_quantile,
    ),
    Threshold.pot: Rule(
        fit=lambda scores, cfg: pot_threshold(scores, cfg.pot_level, cfg.pot_risk),
        promise=lambda cfg: cfg.pot_risk,
    ),
}


def rule_threshold(normal_scores: np.ndarray, cfg: ScoringConfig) -> float:
    """The rule's threshold (a quantile, or peaks over threshold) of scores taken as normal."""
    return RULES[cfg.threshold].fit(normal_scores, cfg)


def calibrated_threshold(fit: ValidationFit, scored: np.ndarray, cfg: ScoringConfig) -> float:
    """The validation threshold, or with `calibrate_rows` one that follows the `scored` series
    from its first scored rows: recentred by their median, or the rule refitted on them."""
    if not cfg.calibrate_rows:
        return fit.threshold
    scored = np.asarray(scored, dtype=np.float64)
    head = scored[np.isfinite(scored)][: cfg.calibrate_rows]
    if head.size == 0:  # nothing scored yet (a frame shorter than a window): nothing to follow
        return fit.threshold
    if cfg.calibration == Calibration.refit:
        return rule_threshold(head, cfg)
    return fit.threshold + float(np.median(head)) - fit.median


def choose_threshold(val_scores: np.ndarray, scored: np.ndarray, cfg: ScoringConfig) -> float:
    """From normal scores only (no label is read): the validation scores, and with
    `calibrate_rows` the first rows of the `scored` series."""
    return calibrated_threshold(fit_on_validation(val_scores, cfg), scored, cfg)


def promised_share(cfg: ScoringConfig) -> float:
    """The share of normal rows the threshold rule flags by construction."""
    return RULES[cfg.threshold].promise(cfg)


def flagged_share(scores: np.ndarray, threshold: float) -> float:
    """Share of the scored rows (NaN rows, uncovered by windows, left out) over the threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    scored = scores[np.isfinite(scores)]
    return float(np.mean(scored > threshold)) if scored.size else float("nan")


# Fewer validation rows than this above the threshold, and its share is an estimate from a
# handful: with 200 rows a 0.99 quantile flagged 1.2-1.7 % of fresh normal rows and POT at
# 0.1 % risk 3.7-6.6 times its promise (simulated, 40 draws each).
MIN_ROWS_ABOVE = 5


def thin_promise(val_scores: np.ndarray, cfg: ScoringConfig) -> float | None:
    """The number of validation rows expected above the threshold, where it is too few
    (below MIN_ROWS_ABOVE) for the promised share to be more than a guess; else None. None
    with `calibrate_rows`: the threshold then follows the scored rows, not these alone."""
    if cfg.calibrate_rows:
        return None
    scored = int(np.isfinite(np.asarray(val_scores, dtype=np.float64)).sum())
    expected = scored * promised_share(cfg)
    return expected if expected < MIN_ROWS_ABOVE else None


def alarm_shift(share: float, cfg: ScoringConfig) -> str | None:
    """`too_many_flagged` above the promised share plus `max_anomaly_share` (more than the
    normal rows' false alarms and every anomaly together), `none_flagged` at 0: the scored
    series is not distributed as the rows the threshold was fitted on."""
    if share > promised_share(cfg) + cfg.max_anomaly_share:
        return "too_many_flagged"
    return "none_flagged" if share == 0 else None
