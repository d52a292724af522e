"""EncDec-AD scoring: a Gaussian on reconstruction errors and Mahalanobis distances to it.

The seed notebook passed the covariance where the inverse covariance belongs; here the
inverse is explicit, and robust to the singular covariance that exact duplicate channels give.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class CovarianceInverse(StrEnum):
    """How to invert the error covariance (a str Enum, so config strings compare equal)."""

    pinv = "pinv"
    shrinkage = "shrinkage"


@dataclass(frozen=True)
class ErrorModel:
    """N(mean, cov) fitted on normal reconstruction errors, stored with the inverse of cov."""

    mean: np.ndarray  # (k,)
    inv_cov: np.ndarray  # (k, k)


def reconstruction_errors(windows: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """e = x_hat - x, float64, shape (n_windows, length, k)."""
    if np.shape(windows) != np.shape(reconstructions):
        raise ValueError(
            f"windows {np.shape(windows)} and reconstructions {np.shape(reconstructions)} "
            "differ in shape"
        )
    return np.asarray(reconstructions, dtype=np.float64) - np.asarray(windows, dtype=np.float64)


def _flatten_errors(errors: np.ndarray) -> np.ndarray:
    flat = np.asarray(errors, dtype=np.float64)
    flat = flat.reshape(-1, flat.shape[-1])
    if flat.shape[0] < 2:
        raise ValueError(f"need at least 2 error vectors to fit a covariance, got {flat.shape[0]}")
    if not np.isfinite(flat).all():
        raise ValueError("errors contain NaN or inf")
    return flat


def _shrunk_inverse(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    k = cov.shape[0]
    # Pulling towards a scaled identity keeps the eigenvalues away from 0 while
    # preserving the overall error scale (trace).
    target = (np.trace(cov) / k) * np.eye(k)
    return np.linalg.inv((1.0 - shrinkage) * cov + shrinkage * target)


def fit_error_model(
    errors: np.ndarray,
    inverse: CovarianceInverse | str = "pinv",
    shrinkage: float = 0.1,
) -> ErrorModel:
    """Fit mean and inverse covariance of errors (..., k), all leading axes pooled."""
    method = CovarianceInverse(inverse)
    flat = _flatten_errors(errors)
    mean = flat.mean(axis=0)
    cov = np.atleast_2d(np.cov(flat, rowvar=False))
    if method is CovarianceInverse.pinv:
        inv_cov = np.linalg.pinv(cov, hermitian=True)
    else:
        inv_cov = _shrunk_inverse(cov, shrinkage)
    # Symmetrise away rounding asymmetry so the quadratic form is well defined.
    return ErrorModel(mean=mean, inv_cov=0.5 * (inv_cov + inv_cov.T))


def channel_contributions(errors: np.ndarray, model: ErrorModel) -> np.ndarray:
    """(..., k) per-channel terms (e-mu)_c * (S^-1 (e-mu))_c; they sum to the squared distance."""
    diff = np.asarray(errors, dtype=np.float64) - model.mean
    return diff * (diff @ model.inv_cov.T)


def mahalanobis_scores(errors: np.ndarray, model: ErrorModel) -> np.ndarray:
    """(..., k) -> (...) Mahalanobis distance of each error vector to the fitted Gaussian."""
    diff = np.asarray(errors, dtype=np.float64) - model.mean
    squared = np.einsum("...i,ij,...j->...", diff, model.inv_cov, diff, optimize=True)
    # A PSD inverse gives q >= 0; rounding can leave -1e-17 where q is 0.
    return np.sqrt(np.clip(squared, 0.0, None))


def window_scores(step_scores: np.ndarray) -> np.ndarray:
    """(n_windows, length) -> (n_windows,), the mean over steps as the seed notebook did."""
    step_scores = np.asarray(step_scores, dtype=np.float64)
    if step_scores.ndim != 2:
        raise ValueError(f"expected (n_windows, length) scores, got shape {step_scores.shape}")
    return step_scores.mean(axis=1)


def _covered_rows(starts: np.ndarray, length: int, n_rows: int) -> np.ndarray:
    starts = np.asarray(starts, dtype=np.int64)
    rows = starts[:, None] + np.arange(length, dtype=np.int64)[None, :]
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"windows reach outside the series of {n_rows} rows")
    return rows


def time_step_scores(step_scores: np.ndarray, starts: np.ndarray, n_rows: int) -> np.ndarray:
    """Per-(window, step) values -> per-row means over all windows covering the row.

    (n_windows, length) -> (n_rows,), or (n_windows, length, k) -> (n_rows, k). Rows that no
    window covers (the tail when stride > 1) get NaN, so they are never mistaken for normal.
    """
    values = np.asarray(step_scores, dtype=np.float64)
    if values.ndim not in (2, 3) or values.shape[0] != len(starts):
        raise ValueError(f"expected ({len(starts)}, length[, k]) scores, got shape {values.shape}")
    per_channel = values.reshape(values.shape[0], values.shape[1], -1)
    k = per_channel.shape[2]
    rows = _covered_rows(starts, values.shape[1], n_rows)
    # One bincount over (row, channel) pairs aligns every channel at once.
    bins = (rows[:, :, None] * k + np.arange(k)[None, None, :]).ravel()
    sums = np.bincount(bins, weights=per_channel.ravel(), minlength=n_rows * k)
    counts = np.bincount(bins, minlength=n_rows * k)
    means = np.full(n_rows * k, np.nan)
    np.divide(sums, counts, out=means, where=counts > 0)
    return means.reshape(n_rows, k) if values.ndim == 3 else means


@dataclass(frozen=True)
class RowScores:
    scores: np.ndarray  # (n_rows,) Mahalanobis distance per row, NaN where no window covers it
    contributions: np.ndarray  # (n_rows, k) each channel's share of the squared distance


def score_rows(errors: np.ndarray, starts: np.ndarray, n_rows: int, model: ErrorModel) -> RowScores:
    """Window errors (n_windows, length, k) -> scores and contributions aligned to the rows."""
    return RowScores(
        scores=time_step_scores(mahalanobis_scores(errors, model), starts, n_rows),
        contributions=time_step_scores(channel_contributions(errors, model), starts, n_rows),
    )
