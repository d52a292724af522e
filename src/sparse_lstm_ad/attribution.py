"""Which channels a detector blames, scored against the channels labelled responsible.

Two kinds of blame: the per-row contributions of each channel to a row's score (every
detector with an error model), and the sparse layer's channel mass (which input channels the
sparse forms let through at all: one ranking for every row).
"""

from __future__ import annotations

import numpy as np


def hit_rate(contributions: np.ndarray, channel_labels: np.ndarray, p: float = 1.0) -> float:
    """HitRate@P% (OmniAnomaly, InterFusion): at each row with g > 0 channels labelled, the share
    of them among the floor(p * g) channels with the largest contributions; the mean over rows.

    Rows whose contributions hold NaN (no window covers them) are left out; ties go to the
    lower channel index. NaN when no row is left.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    truth = np.asarray(channel_labels) == 1
    if contributions.ndim != 2 or contributions.shape != truth.shape:
        raise ValueError(
            f"contributions {contributions.shape} and channel labels {truth.shape} "
            "must both be (n_rows, k)"
        )
    if p <= 0:
        raise ValueError(f"p must be > 0, got {p}")
    counted = truth.any(axis=1) & np.isfinite(contributions).all(axis=1)
    if not counted.any():
        return float("nan")
    values, truth = contributions[counted], truth[counted]
    order = np.argsort(-values, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(values.shape[1]), order.shape), 1)
    n_true = truth.sum(axis=1)
    top = rank < np.floor(p * n_true)[:, None]
    return float(np.mean((top & truth).sum(axis=1) / n_true))


def attribution_metrics(contributions: np.ndarray, channel_labels: np.ndarray) -> dict[str, float]:
    """HitRate@100% and @150%, as InterFusion reports them."""
    return {
        "hit_rate_100": hit_rate(contributions, channel_labels, 1.0),
        "hit_rate_150": hit_rate(contributions, channel_labels, 1.5),
    }


def mass_attribution_metrics(mass: np.ndarray, channel_labels: np.ndarray) -> dict[str, float]:
    """HitRate@100% and @150% of the sparse layer's channel mass, the same ranking at each row:
    does the layer keep the channels that later break?"""
    rows = np.broadcast_to(np.asarray(mass, dtype=np.float64), np.shape(channel_labels))
    return {
        "mass_hit_rate_100": hit_rate(rows, channel_labels, 1.0),
        "mass_hit_rate_150": hit_rate(rows, channel_labels, 1.5),
    }
