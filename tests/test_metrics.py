"""Tests of the detection metrics, by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics  # a dependency (the iforest baseline): its absence fails, not skips

from sparse_lstm_ad.attribution import attribution_metrics, hit_rate, mass_attribution_metrics
from sparse_lstm_ad.metrics import (
    DetectionMetrics,
    RangeMetrics,
    auc_pr,
    auc_roc,
    evaluate,
    evaluate_ranges,
    point_adjusted_f1,
    precision_recall_f1,
    range_auc,
    vus,
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
    # Nothing flagged: all 0.0. No positives: recall and F1 undefined, NaN.
    assert precision_recall_f1(scores, labels, 1.0) == (0.0, 0.0, 0.0)
    no_positive = precision_recall_f1(scores, np.zeros(5, dtype=int), 0.5)
    assert no_positive[0] == 0.0 and np.isnan(no_positive[1]) and np.isnan(no_positive[2])


def test_quantile_threshold() -> None:
    from sparse_lstm_ad.thresholds import quantile_threshold

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


# --- VUS ----------------------------------------------------------------------------------


def test_vus_of_a_perfect_score_is_one_at_any_buffer() -> None:
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    assert vus(labels * 1.0, labels, max_buffer=0) == (1.0, 1.0)
    # Buffer rows are credit when flagged and never counted as missed.
    assert vus(labels + 0.1, labels, max_buffer=4) == (1.0, 1.0)


def test_range_auc_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    scores = np.array([0, 0, 1, 1, 0, 0, 0, 0], dtype=float)  # one row early, half the range
    # Every row a threshold (8 thresholds over 8 rows): the scores 1, 1, 0, ... 0.
    # Buffer 0: at >= 1 rows 2, 3 flagged: TP 1 of P' = 2, the range hit: TPR 1/2, FPR 1/6,
    # precision 1/2; at >= 0 all: TPR 1, FPR 1, precision 2/8.
    roc, pr = range_auc(scores, labels, buffer=0, n_thresholds=8)
    assert roc == pytest.approx(1 / 6 * (1 / 2) / 2 + 5 / 6 * (1 / 2 + 1) / 2)
    assert pr == pytest.approx(1 / 2 * 1 / 2 + 1 / 2 * 2 / 8)
    # Buffer 4: rows at distance 1 and 2 weigh sqrt(3/4) and sqrt(1/2); a buffer row counts
    # among the positives only where flagged: P' = 2 + (flagged buffer weight) / 2.
    w1, w2 = np.sqrt(3 / 4), np.sqrt(1 / 2)
    tp = 1 + w1  # rows 3 and 2 (d = 1 before the range)
    positives = 2 + w1 / 2
    tpr, fpr, prec = tp / positives, (2 - tp) / (8 - positives), tp / 2
    buffered = 2 * (w1 + w2)
    tp_all, positives_all = 2 + buffered, 2 + buffered / 2
    tpr_all = min(tp_all / positives_all, 1.0)
    fpr_all, prec_all = (8 - tp_all) / (8 - positives_all), tp_all / 8
    roc, pr = range_auc(scores, labels, buffer=4, n_thresholds=8)
    assert roc == pytest.approx(
        fpr * tpr / 2 + (fpr_all - fpr) * (tpr + tpr_all) / 2 + (1 - fpr_all) * (tpr_all + 1) / 2
    )
    assert pr == pytest.approx(tpr * prec + (tpr_all - tpr) * prec_all)
    # VUS is the mean of these slices over buffers 0..L.
    slices = [range_auc(scores, labels, b, n_thresholds=8) for b in range(5)]
    assert vus(scores, labels, 4, n_thresholds=8) == pytest.approx(np.mean(slices, axis=0))


def test_vus_is_undefined_with_one_class_and_refuses_nan() -> None:
    rng = np.random.default_rng(0)
    labels = (np.arange(2000) % 400 > 370).astype(int)
    scores = rng.random(2000) + labels
    assert all(np.isnan(vus(scores, np.zeros(2000, dtype=int), max_buffer=100)))
    assert all(np.isnan(vus(scores, np.ones(2000, dtype=int), max_buffer=100)))
    with pytest.raises(ValueError, match="NaN"):
        vus(np.r_[scores[:-1], np.nan], labels, max_buffer=100)


# --- Point-adjusted F1, hit rate ------------------------------------------------------------


def test_point_adjusted_f1_by_hand() -> None:
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0])
    scores = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    # Point-wise at > 0.5: flags rows 2 (+) and 5 (-): P 1/2, R 1/5, F1 2/7.
    assert precision_recall_f1(scores, labels, 0.5)[2] == pytest.approx(2 / 7)
    # Row 2 hits the first range: all 3 of its rows count; the second range stays missed:
    # TP 3, flagged 4, P 3/4, R 3/5, F1 2/3.
    assert point_adjusted_f1(scores, labels, 0.5) == pytest.approx(2 / 3)


def test_evaluate_ranges_drops_nan_rows_and_keeps_evaluate() -> None:
    labels = np.array([0, 1, 1, 0, 0, 0])
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.0, np.nan])
    result = evaluate_ranges(scores, labels, threshold=0.5, max_buffer=0, n_thresholds=5)
    assert isinstance(result, RangeMetrics)
    assert result.point_adjusted_f1 == 1.0
    assert set(result.as_dict()) == {"vus_roc", "vus_pr", "point_adjusted_f1"}
    assert result.vus_roc == pytest.approx(range_auc(scores[:5], labels[:5], 0, 5).roc)
    assert set(evaluate(scores, labels, 0.5).as_dict()) == {
        "auc_roc",
        "auc_pr",
        "precision",
        "recall",
        "f1",
        "threshold",
    }


def test_hit_rate_by_hand() -> None:
    contributions = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # truth {0, 2}: top 2 = {0, 2}: 2/2; top 3 = {0, 2, 3}: 2/2
            [0.1, 0.2, 0.3, 0.4],  # truth {0, 1}: top 2 = {3, 2}: 0/2; top 3 adds 1: 1/2
            [0.5, 0.5, 0.0, 0.0],  # no truth: not counted
            [0.2, 0.1, 0.7, 0.0],  # truth {1}: top 1 = {2}: 0/1; floor(1.5) = 1: 0/1
            [np.nan, 1.0, 1.0, 1.0],  # no window covered it: not counted
        ]
    )
    truth = np.array(
        [[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=np.int8
    )
    assert hit_rate(contributions, truth, 1.0) == pytest.approx((1 + 0 + 0) / 3)
    assert hit_rate(contributions, truth, 1.5) == pytest.approx((1 + 0.5 + 0) / 3)
    assert attribution_metrics(contributions, truth) == pytest.approx(
        {"hit_rate_100": 1 / 3, "hit_rate_150": 1.5 / 3}
    )
    # Ties go to the lower channel index: channel 0 before channel 1.
    assert hit_rate(np.array([[1.0, 1.0, 0.0]]), np.array([[1, 0, 0]]), 1.0) == 1.0
    assert np.isnan(hit_rate(contributions, np.zeros_like(truth), 1.0))
    with pytest.raises(ValueError, match="n_rows, k"):
        hit_rate(contributions, truth[:, :3], 1.0)


def test_mass_hit_rate_ranks_the_kept_channels_at_every_row() -> None:
    # Channels 0 and 2 break; the layer keeps most of channel 2, then 1, then 0.
    truth = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [1, 0, 1]])
    mass = np.array([0.1, 0.5, 2.0])
    # Rows: {0} top-1 is 2: miss; {2} top-1 is 2: hit; {0, 2} top-2 is {2, 1}: one of two.
    assert mass_attribution_metrics(mass, truth)["mass_hit_rate_100"] == pytest.approx(1.5 / 3)
    # @150%: row 1 looks at top-1 (floor 1.5), row 4 at top-3: both found.
    assert mass_attribution_metrics(mass, truth)["mass_hit_rate_150"] == pytest.approx(2 / 3)


def test_a_test_part_without_anomalies_has_no_recall_or_f1() -> None:
    """Its AUCs were NaN and its recall and F1 0.0: averaged over seeds, zeros pulled a
    detector's F1 down for anomalies that were not there to find."""
    scores, labels = np.arange(10.0), np.zeros(10, dtype=int)
    flagged = evaluate(scores, labels, threshold=5.0)
    assert flagged.precision == 0.0  # every flag a false alarm: defined
    assert np.isnan(flagged.recall) and np.isnan(flagged.f1) and np.isnan(flagged.auc_pr)
    assert np.isnan(evaluate(scores, labels, threshold=50.0).precision)  # nothing flagged
