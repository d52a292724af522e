"""Peaks over threshold on a known tail, and the oracle F1 bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from sparse_lstm_ad.thresholds import best_f1, pot_threshold


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
