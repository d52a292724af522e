"""Point-wise detection metrics, without scikit-learn (it is not a dependency).

``auc_pr`` follows sklearn's ``average_precision_score`` exactly, so numbers compare with
the literature; the tests check both AUCs against sklearn where it is installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class DetectionMetrics:
    """Threshold-free AUCs and the thresholded point-wise precision, recall and F1."""

    auc_roc: float
    auc_pr: float
    precision: float
    recall: float
    f1: float
    threshold: float

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


def _scores_and_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores for {labels.size} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return scores, labels.astype(bool)


def _require_finite(scores: np.ndarray) -> None:
    # NaN marks rows no window covered; ranking them would be arbitrary.
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or inf; drop uncovered rows first (see evaluate)")


def auc_roc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney U statistic; ties count one half."""
    scores, positive = _scores_and_labels(scores, labels)
    _require_finite(scores)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = rankdata(scores)[positive].sum()
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2
    return float(u_statistic / (n_pos * n_neg))


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of (R_n - R_{n-1}) * P_n.

    Tied scores form one threshold (one step), as in sklearn. NaN without positives.
    """
    scores, positive = _scores_and_labels(scores, labels)
    _require_finite(scores)
    if not positive.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_pos = scores[order], positive[order]
    # Last index of each run of equal scores: the operating points of the curve.
    ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_pos = np.cumsum(sorted_pos)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def quantile_threshold(normal_scores: np.ndarray, quantile: float) -> float:
    """Threshold at a quantile of scores on normal data (never on test labels)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    if np.isnan(normal_scores).all():
        raise ValueError("no non-NaN normal scores to take a quantile of")
    return float(np.nanquantile(normal_scores, quantile))


def precision_recall_f1(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    """Point-wise precision, recall and F1 of ``score > threshold``; 0.0 where undefined."""
    scores, positive = _scores_and_labels(scores, labels)
    flagged = scores > threshold
    true_pos = int(np.sum(flagged & positive))
    n_flagged, n_pos = int(flagged.sum()), int(positive.sum())
    precision = true_pos / n_flagged if n_flagged else 0.0
    recall = true_pos / n_pos if n_pos else 0.0
    total = precision + recall
    f1 = 2 * precision * recall / total if total > 0 else 0.0
    return precision, recall, f1


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float) -> DetectionMetrics:
    """All metrics on the rows that have a score (NaN rows, uncovered by windows, are dropped)."""
    scores, positive = _scores_and_labels(scores, labels)
    scored = ~np.isnan(scores)
    scores, positive = scores[scored], positive[scored]
    precision, recall, f1 = precision_recall_f1(scores, positive, threshold)
    return DetectionMetrics(
        auc_roc=auc_roc(scores, positive),
        auc_pr=auc_pr(scores, positive),
        precision=precision,
        recall=recall,
        f1=f1,
        threshold=float(threshold),
    )
