"""Tests of the detection metrics, by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_lstm_ad.metrics import (
    DetectionMetrics,
    auc_pr,
    auc_roc,
    evaluate,
    precision_recall_f1,
    quantile_threshold,
)


def test_auc_roc_by_hand() -> None:
    # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 0.35 beats 0.1 only, 0.8 beats both: 3/4.
    assert auc_roc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # Positives 2, 3 vs negatives 1, 2: 2>1 (1), 2=2 (1/2), 3>1 (1), 3>2 (1): 3.5/4.
    assert auc_roc(np.array([1.0, 2.0, 2.0, 3.0]), np.array([0, 1, 0, 1])) == 0.875
    # Positives 2, 1 vs negatives 3, 2: only the tie 2=2 counts (1/2): 0.5/4.
    assert auc_roc(np.array([3.0, 2.0, 2.0, 1.0]), np.array([0, 1, 0, 1])) == 0.125


def test_auc_pr_by_hand() -> None:
    # Descending 0.8(+) 0.4(-) 0.35(+) 0.1(-): steps at 0.8 (P=1, R=1/2) and 0.35 (P=2/3,
    # R=1): AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    assert auc_pr(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(5 / 6)
    # Descending 3(-), then the tie 2(+) 2(-) as one threshold (P=1/3, R=1/2), then 1(+)
    # (P=2/4, R=1): AP = 0 + 1/2 * 1/3 + 1/2 * 1/2 = 5/12.
    assert auc_pr(np.array([3.0, 2.0, 2.0, 1.0]), np.array([0, 1, 0, 1])) == pytest.approx(5 / 12)


def test_aucs_undefined_with_one_class() -> None:
    assert np.isnan(auc_roc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert np.isnan(auc_roc(np.array([0.1, 0.2]), np.array([0, 0])))
    assert np.isnan(auc_pr(np.array([0.1, 0.2]), np.array([0, 0])))


def test_aucs_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        auc_roc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="0 or 1"):
        auc_pr(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="labels"):
        auc_pr(np.array([0.1, 0.2]), np.array([0, 1, 1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aucs_match_sklearn_with_ties(seed: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = (rng.random(600) < 0.2).astype(int)
    scores = rng.integers(0, 12, size=600) + 3.0 * labels  # many ties, some signal
    assert auc_roc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert auc_pr(scores, labels) == pytest.approx(metrics.average_precision_score(labels, scores))


def test_precision_recall_f1_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.1])
    labels = np.array([1, 0, 1, 1, 0])
    # > 0.7 flags 0.9(+) and 0.8(-): P = 1/2, R = 1/3, F1 = 2 * (1/6) / (5/6) = 0.4.
    assert precision_recall_f1(scores, labels, 0.7) == pytest.approx((0.5, 1 / 3, 0.4))
    # A score equal to the threshold is not flagged: > 0.8 flags 0.9 only: 1, 1/3, 1/2.
    assert precision_recall_f1(scores, labels, 0.8) == pytest.approx((1.0, 1 / 3, 0.5))
    # Nothing flagged, or no positives: all 0.0.
    assert precision_recall_f1(scores, labels, 1.0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(scores, np.zeros(5, dtype=int), 0.5) == (0.0, 0.0, 0.0)


def test_quantile_threshold() -> None:
    normal = np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0])
    assert quantile_threshold(normal, 0.5) == 3.0
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="quantile"):
            quantile_threshold(normal, bad)


def test_evaluate_ignores_nan_rows() -> None:
    scores = np.array([np.nan, 0.1, 0.4, 0.35, 0.8, np.nan])
    labels = np.array([1, 0, 0, 1, 1, 0])
    result = evaluate(scores, labels, threshold=0.5)
    assert isinstance(result, DetectionMetrics)
    expected = evaluate(scores[1:5], labels[1:5], threshold=0.5)
    assert result == expected
    assert result.auc_roc == 0.75
    assert result.auc_pr == pytest.approx(5 / 6)
    assert (result.precision, result.recall) == (1.0, 0.5)
    as_dict = result.as_dict()
    assert set(as_dict) == {"auc_roc", "auc_pr", "precision", "recall", "f1", "threshold"}
    assert all(isinstance(v, float) for v in as_dict.values())
