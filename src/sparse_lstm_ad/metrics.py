"""Detection metrics.

Point-wise: AUC-ROC, AUC-PR, precision, recall, F1 (`evaluate`), scikit-learn's, so numbers
compare with the literature. Range-aware, which scikit-learn lacks: VUS-ROC and VUS-PR,
point-adjusted F1 (`evaluate_ranges`). Attribution is in `attribution.py`.

scikit-learn is imported where a metric is computed, not with the module: a sweep's parent
process imports the pipeline to check its inputs but computes no metric, and its 0.6 s of
imports would share the cores with the workers starting beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np


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
    """scikit-learn's ROC AUC (ties count one half); NaN unless both classes are present."""
    scores, positive = _scores_and_labels(scores, labels)
    _require_finite(scores)
    if positive.all() or not positive.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # late: see the module's note

    return float(roc_auc_score(positive, scores))


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's average precision (tied scores one step); NaN without positives."""
    scores, positive = _scores_and_labels(scores, labels)
    _require_finite(scores)
    if not positive.any():
        return float("nan")
    from sklearn.metrics import average_precision_score  # late: see the module's note

    return float(average_precision_score(positive, scores))


def precision_recall_f1(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    """Point-wise precision, recall and F1 of ``score > threshold``. Nothing flagged: all 0.0.
    No positive label: recall and F1 NaN, as the AUCs (nothing was there to find: a 0.0 would
    pull a mean over seeds or data sets down), precision 0.0 if anything is flagged, else NaN."""
    from sklearn.metrics import precision_recall_fscore_support  # late: see the module's note

    scores, positive = _scores_and_labels(scores, labels)
    flagged = scores > threshold
    if not positive.any():
        return (0.0 if flagged.any() else float("nan")), float("nan"), float("nan")
    precision, recall, f1, _ = precision_recall_fscore_support(
        positive, flagged, average="binary", zero_division=0.0
    )
    return float(precision), float(recall), float(f1)


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


# --- Range-aware metrics: VUS (Paparrizos et al., VLDB 2022) and point-adjusted F1 ----------
# VUS is the field's quantity only as its authors compute it now: TSB-AD's (Liu & Paparrizos,
# NeurIPS 2024) `basic_metricor().RangeAUC_volume_opt(labels, score, windowSize, thre)`. This
# is that computation vectorised over rows and thresholds; tests/test_vus_reference.py runs
# the reference itself and holds the two equal within 1e-6. It is not the 2022 paper's own
# package (TheDatumOrg/VUS), which credits a buffer's whole weight, counts a range found only
# through a labelled row and takes PR by trapezoids: numbers differ between the two. Either
# way a buffer as long as the gaps between short anomalies credits almost any score (random
# scores, 3-row anomalies ~250 rows apart, buffer 100: VUS-ROC ~0.92); TSB-AD's get_metrics
# defaults to 100, its benchmark sets it from each series' period.

# The reference's number of thresholds (`thre`): scores at evenly spaced ranks.
VUS_THRESHOLDS = 250


class Vus(NamedTuple):
    """Range-based areas: under the ROC curve and the precision-recall curve."""

    roc: float
    pr: float


@dataclass(frozen=True)
class RangeMetrics:
    """Range-aware metrics; point-adjusted F1 inflates results: log it only beside `f1`."""

    vus_roc: float
    vus_pr: float
    point_adjusted_f1: float

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


def _label_ranges(positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) rows of each run of True."""
    edges = np.diff(np.concatenate([[0], positive.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _gaps_to_labels(positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows since the last labelled row at or before each row, and until the next one at or
    after it (inf where there is none)."""
    rows = np.arange(positive.size, dtype=np.float64)
    last = np.maximum.accumulate(np.where(positive, rows, -np.inf))
    following = np.minimum.accumulate(np.where(positive, rows, np.inf)[::-1])[::-1]
    return rows - last, following - rows


class _RangeCurves:
    """Everything the range curves of one (scores, labels) share across buffer lengths.

    Thresholds are the scores at ranks `linspace(0, n - 1, n_thresholds)` of the descending
    scores, as the reference's; a row is flagged when its score >= the threshold.
    """

    def __init__(self, scores: np.ndarray, positive: np.ndarray, n_thresholds: int):
        self.scores, self.positive = scores, positive
        self.n_pos = float(positive.sum())
        self.descending = np.argsort(-scores, kind="mergesort")
        ranks = np.linspace(0, scores.size - 1, n_thresholds).astype(np.int64)
        self.thresholds = scores[self.descending][ranks]
        # Flagged rows at each threshold: every score >= it, ties included.
        self.n_flagged = scores.size - np.searchsorted(np.sort(scores), self.thresholds, "left")
        self.flagged_labelled = np.cumsum(positive[self.descending])[self.n_flagged - 1]
        self.after_end, self.before_start = _gaps_to_labels(positive)
        self.starts, self.ends = _label_ranges(positive)
        # Counts of range starts and (inclusive) ends at rows < i, for i in 0..n.
        n = scores.size
        self.range_starts = np.r_[0, np.cumsum(np.bincount(self.starts, minlength=n))]
        self.range_ends = np.r_[0, np.cumsum(np.bincount(self.ends - 1, minlength=n))]

    def buffer_weights(self, buffer: int) -> np.ndarray:
        """The continuous label off the labelled rows: sqrt(1 - d / buffer) on the buffer // 2
        rows at distance d on each side of a range, summed where buffers meet, at most 1."""
        reach = buffer // 2
        ramp = np.zeros(self.scores.size)
        if reach == 0:
            return ramp
        for gap in (self.after_end, self.before_start):
            near = (gap >= 1) & (gap <= reach)
            ramp[near] += np.sqrt(1.0 - gap[near] / buffer)
        # Each term is >= sqrt(1/2): two ranges reaching a row from one side (only the nearest
        # is in `ramp`) already make it 1.
        ramp[self._reached_twice(reach)] = 1.0
        return np.where(self.positive, 0.0, np.minimum(ramp, 1.0))

    def _reached_twice(self, reach: int) -> np.ndarray:
        n = self.scores.size
        rows = np.arange(n)
        ends_before = self.range_ends[rows] - self.range_ends[np.maximum(rows - reach, 0)]
        starts_after = (
            self.range_starts[np.minimum(rows + reach + 1, n)] - self.range_starts[rows + 1]
        )
        return (ends_before >= 2) | (starts_after >= 2)

    def existence(self, reach: int) -> np.ndarray:
        """Share of buffered ranges holding a flagged row, per threshold. Ranges are widened by
        `reach` rows each side and merged only where they overlap (the reference's
        `new_sequence`: ranges whose widened ends merely touch stay apart)."""
        n = self.scores.size
        apart = (self.ends[:-1] - 1 + reach) < (self.starts[1:] - reach)
        first = np.r_[0, np.flatnonzero(apart) + 1]
        last = np.r_[np.flatnonzero(apart), self.starts.size - 1]
        low = np.maximum(self.starts[first] - reach, 0)
        high = np.minimum(self.ends[last] - 1 + reach, n - 1) + 1
        padded = np.append(self.scores, -np.inf)
        # reduceat over [low, high) pairs: every other result is a segment's top score.
        tops = np.maximum.reduceat(padded, np.ravel(np.column_stack([low, high])))[::2]
        hit = tops.size - np.searchsorted(np.sort(tops), self.thresholds, "left")
        return hit / tops.size

    def areas(self, buffer: int) -> Vus:
        """One slice of the surface: the reference's per-window Range-AUC-ROC and -PR."""
        weights = self.buffer_weights(buffer)
        flagged_buffer = np.cumsum(weights[self.descending])[self.n_flagged - 1]
        true_pos = self.flagged_labelled + flagged_buffer
        # The reference counts a buffer row among the positives only where it is flagged:
        # P' = (P + P + flagged buffer weight) / 2. So a wider buffer only ever adds credit.
        positives = self.n_pos + flagged_buffer / 2
        tpr = np.minimum(true_pos / positives, 1.0) * self.existence(buffer // 2)
        fpr = (self.n_flagged - true_pos) / (self.scores.size - positives)
        precision = true_pos / self.n_flagged
        roc_x, roc_y = np.r_[0.0, fpr, 1.0], np.r_[0.0, tpr, 1.0]
        roc = float(np.sum(np.diff(roc_x) * (roc_y[1:] + roc_y[:-1]) / 2))
        # PR: rectangles, recall steps times the precision reached at each threshold.
        pr = float(np.sum(np.diff(np.r_[0.0, tpr]) * precision))
        return Vus(roc=roc, pr=pr)


def _range_curves(scores: np.ndarray, labels: np.ndarray, n_thresholds: int) -> _RangeCurves | None:
    scores, positive = _scores_and_labels(scores, labels)
    _require_finite(scores)
    if n_thresholds < 1:
        raise ValueError(f"n_thresholds must be >= 1, got {n_thresholds}")
    if not positive.any() or positive.all():
        return None  # undefined without both classes, as the AUCs
    return _RangeCurves(scores, positive, n_thresholds)


def range_auc(
    scores: np.ndarray, labels: np.ndarray, buffer: int, n_thresholds: int = VUS_THRESHOLDS
) -> Vus:
    """Range-AUC-ROC and Range-AUC-PR with one buffer length (one slice of the VUS surface).

    Per threshold: TP = labelled flagged rows + the buffer weight of flagged buffer rows,
    P' = labelled rows + half that buffer weight, TPR = min(TP / P', 1) * existence,
    FPR = (flagged - TP) / (n - P'), precision = TP / flagged; ROC by trapezoids from (0, 0)
    to (1, 1), PR as the sum of recall steps times precision. NaN without both classes.
    """
    if buffer < 0:
        raise ValueError(f"buffer must be >= 0, got {buffer}")
    curves = _range_curves(scores, labels, n_thresholds)
    return Vus(float("nan"), float("nan")) if curves is None else curves.areas(buffer)


def vus(
    scores: np.ndarray,
    labels: np.ndarray,
    max_buffer: int,
    n_thresholds: int = VUS_THRESHOLDS,
) -> Vus:
    """VUS-ROC and VUS-PR: the range AUCs averaged over buffer lengths 0, 1, ..., max_buffer.

    `max_buffer` is the reference's `windowSize` (TSB-AD sets it from the series' period; a
    run, from ScoringConfig.vus_max_buffer). Buffer rows are credited when flagged and never
    counted as missed, so a wider buffer raises the areas of a detector that flags near its
    anomalies.
    """
    if max_buffer < 0:
        raise ValueError(f"max_buffer must be >= 0, got {max_buffer}")
    curves = _range_curves(scores, labels, n_thresholds)
    if curves is None:
        return Vus(float("nan"), float("nan"))
    # One pass per buffer length, each vectorised over rows and thresholds: memory O(n).
    areas = np.array([curves.areas(buffer) for buffer in range(max_buffer + 1)])
    return Vus(roc=float(areas[:, 0].mean()), pr=float(areas[:, 1].mean()))


def point_adjusted_f1(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """F1 after point adjustment: a labelled range with one flagged row counts as all flagged.

    It inflates results (Kim et al., AAAI 2022): report it only beside the point-wise F1.
    """
    scores, positive = _scores_and_labels(scores, labels)
    flagged = scores > threshold
    range_of = np.cumsum(np.diff(np.concatenate([[0], positive.astype(np.int8)])) == 1) - 1
    hits = np.bincount(range_of[positive], weights=flagged[positive]) > 0
    adjusted = flagged.copy()
    adjusted[positive] = hits[range_of[positive]]
    return precision_recall_f1(adjusted.astype(np.float64), positive, 0.5)[2]


def evaluate_ranges(
    scores: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    max_buffer: int,
    n_thresholds: int = VUS_THRESHOLDS,
) -> RangeMetrics:
    """VUS-ROC, VUS-PR and point-adjusted F1 on the rows that have a score (as `evaluate`)."""
    scores, positive = _scores_and_labels(scores, labels)
    scored = ~np.isnan(scores)
    scores, positive = scores[scored], positive[scored]
    surface = vus(scores, positive, max_buffer, n_thresholds)
    return RangeMetrics(
        vus_roc=surface.roc,
        vus_pr=surface.pr,
        point_adjusted_f1=point_adjusted_f1(scores, positive, threshold),
    )
