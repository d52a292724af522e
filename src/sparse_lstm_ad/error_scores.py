"""EncDec-AD scoring: a Gaussian on reconstruction errors and Mahalanobis distances to it.

The seed notebook passed the covariance where the inverse covariance belongs; here the
inverse is explicit, and robust to the singular covariance that exact duplicate channels give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import CovarianceInverse
from sparse_lstm_ad.data import Windows, make_windows
from sparse_lstm_ad.files import load_fields, save_fields


@dataclass(frozen=True)
class ErrorModel:
    """N(mean, cov) fitted on normal reconstruction errors, stored with the inverse of cov."""

    mean: np.ndarray  # (k,)
    inv_cov: np.ndarray  # (k, k)

    def save(self, path: Path) -> Path:
        return save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> ErrorModel:
        return cls(**load_fields(path))


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


def _shrunk_inverse(cov: np.ndarray, shrinkage: float, inverse: str = "shrinkage") -> np.ndarray:
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must lie in [0, 1], got {shrinkage}")
    k = cov.shape[0]
    # Pulling towards a scaled identity keeps the eigenvalues away from 0 while
    # preserving the overall error scale (trace).
    target = (np.trace(cov) / k) * np.eye(k)
    # np.linalg.inv says "Singular matrix" at best; near-singular, it returns rounding noise.
    if not np.trace(cov) > 0:
        raise ValueError(
            f"scoring.inverse={inverse}: the errors do not vary at all (covariance 0), nothing "
            "to shrink towards; scoring.inverse=pinv scores them"
        )
    if shrinkage == 0 and (rank := np.linalg.matrix_rank(cov, hermitian=True)) < k:
        raise ValueError(
            f"scoring.shrinkage=0: the errors' covariance has rank {rank} of {k} (channels that "
            "copy others, or are constant) and cannot be inverted; set scoring.shrinkage > 0, "
            "or scoring.inverse=pinv"
        )
    return np.linalg.inv((1.0 - shrinkage) * cov + shrinkage * target)


def oas_shrinkage(cov: np.ndarray, count: int) -> float:
    """The Oracle Approximating Shrinkage amount (Chen et al. 2010) of `count` vectors with
    sample covariance `cov` (ddof 1), as sklearn.covariance.oas computes it from the vectors
    themselves: the step scope keeps only their moments (ErrorMoments), so it is computed here
    from those; tests check it against sklearn's."""
    k = cov.shape[0]
    biased = cov * (count - 1) / count  # sklearn's empirical_covariance divides by n
    alpha, mu = np.mean(biased**2), np.trace(biased) / k
    den = (count + 1) * (alpha - mu**2 / k)
    return 1.0 if den == 0 else float(min((alpha + mu**2) / den, 1.0))


# How each scoring.inverse inverts a covariance of `count` vectors, given scoring.shrinkage.
Inverse = Callable[[np.ndarray, int, float], np.ndarray]
INVERSES: dict[CovarianceInverse, Inverse] = {
    CovarianceInverse.pinv: lambda cov, count, shrinkage: np.linalg.pinv(cov, hermitian=True),
    CovarianceInverse.shrinkage: lambda cov, count, shrinkage: _shrunk_inverse(cov, shrinkage),
    CovarianceInverse.oas: lambda cov, count, shrinkage: _shrunk_inverse(
        cov, oas_shrinkage(cov, count), "oas"
    ),
}


def fit_error_model(
    errors: np.ndarray,
    inverse: CovarianceInverse | str,
    shrinkage: float,
) -> ErrorModel:
    """Fit mean and inverse covariance of errors (..., k), all leading axes pooled; `inverse`
    and `shrinkage` as in ScoringConfig."""
    flat = _flatten_errors(errors)
    cov = np.atleast_2d(np.cov(flat, rowvar=False))
    return error_model_of(flat.mean(axis=0), cov, len(flat), inverse, shrinkage)


def error_model_of(
    mean: np.ndarray,
    cov: np.ndarray,
    count: int,
    inverse: CovarianceInverse | str,
    shrinkage: float,
) -> ErrorModel:
    """The error model from the mean and covariance of `count` vectors, inverted as
    configured."""
    inv_cov = INVERSES[CovarianceInverse(inverse)](cov, count, shrinkage)
    # Symmetrise away rounding asymmetry so the quadratic form is well defined.
    return ErrorModel(mean=mean, inv_cov=0.5 * (inv_cov + inv_cov.T))


def channel_contributions(errors: np.ndarray, model: ErrorModel) -> np.ndarray:
    """(..., k) per-channel terms (e-mu)_c * (S^-1 (e-mu))_c; they sum to the squared distance."""
    diff = np.asarray(errors, dtype=np.float64) - model.mean
    return diff * (diff @ model.inv_cov.T)


def mahalanobis_scores(errors: np.ndarray, model: ErrorModel) -> np.ndarray:
    """(..., k) -> (...) Mahalanobis distance of each error vector to the fitted Gaussian."""
    diff = np.asarray(errors, dtype=np.float64) - model.mean
    # A matmul then a row-wise dot: einsum's planning of the 3-operand form cost 5x more.
    squared = np.einsum("...i,...i->...", diff @ model.inv_cov, diff)
    # A PSD inverse gives q >= 0; rounding can leave -1e-17 where q is 0.
    return np.sqrt(np.clip(squared, 0.0, None))


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


class ErrorMoments:
    """Running sums of error vectors: the Gaussian is fitted without holding every error.

    The per-batch path keeps memory flat in the number of windows (k = 200 channels and
    100,000 rows give 2.4 GB of float64 training errors if held at once).
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None
        self.squares = 0.0

    def add(self, errors: np.ndarray) -> None:
        flat = np.asarray(errors, dtype=np.float64).reshape(-1, np.shape(errors)[-1])
        if not np.isfinite(flat).all():
            raise ValueError("errors contain NaN or inf")
        if self.total is None:
            self.total, self.outer = np.zeros(flat.shape[1]), np.zeros((flat.shape[1],) * 2)
        self.count += len(flat)
        self.total += flat.sum(axis=0)
        self.outer += flat.T @ flat
        self.squares += float(np.sum(flat**2))

    @property
    def mse(self) -> float:
        return self.squares / (self.count * len(self.total)) if self.count else float("nan")

    def error_model(self, inverse: CovarianceInverse | str, shrinkage: float) -> ErrorModel:
        if self.count < 2:
            raise ValueError(f"need at least 2 error vectors to fit a covariance, got {self.count}")
        mean = self.total / self.count
        cov = (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)
        return error_model_of(mean, cov, self.count, inverse, shrinkage)


class RowAccumulator:
    """Per-row sums of scores and contributions, fed batch by batch of windows."""

    def __init__(self, n_rows: int, k: int, model: ErrorModel) -> None:
        self.n_rows, self.k, self.model = n_rows, k, model
        self.sums = np.zeros(n_rows * (k + 1))  # per row: the score, then k contributions
        self.counts = np.zeros(n_rows * (k + 1))

    def add(self, errors: np.ndarray, starts: np.ndarray) -> None:
        values = np.concatenate(
            [
                mahalanobis_scores(errors, self.model)[..., None],
                channel_contributions(errors, self.model),
            ],
            axis=-1,
        )
        rows = _covered_rows(starts, values.shape[1], self.n_rows)
        width = self.k + 1
        bins = (rows[:, :, None] * width + np.arange(width)[None, None, :]).ravel()
        self.sums += np.bincount(bins, weights=values.ravel(), minlength=self.sums.size)
        self.counts += np.bincount(bins, minlength=self.counts.size)

    def result(self) -> RowScores:
        means = np.full(self.sums.size, np.nan)
        np.divide(self.sums, self.counts, out=means, where=self.counts > 0)
        means = means.reshape(self.n_rows, self.k + 1)
        return RowScores(scores=means[:, 0], contributions=means[:, 1:])


# Values (windows x steps x channels) per batch when scoring: bounds what one batch holds.
# Scoring makes several float64 arrays of the batch's size (errors, centred errors, products,
# bin indices), 49 MB each at this size. Batches of 8192 windows of 15 steps and 200 channels
# (4x this) took the k = 200, 100,000-row benchmark case to 2.4 GB peak RSS; this size to
# 1.5 GB at the same speed. Counting values, not windows, lets a narrow series go in one batch:
# every batch is a call into the network, with its own set-up.
SCORING_BATCH_VALUES = 2048 * 15 * 200
Reconstruct = Callable[[np.ndarray], np.ndarray]


def batch_errors(
    windows: np.ndarray, reconstruct: Reconstruct, values: int = SCORING_BATCH_VALUES
) -> Iterator[tuple[slice, np.ndarray]]:
    """(which windows, their reconstruction errors), one batch at a time."""
    batch = max(1, values // max(1, int(np.prod(windows.shape[1:]))))
    for start in range(0, len(windows), batch):
        chunk = slice(start, start + batch)
        yield chunk, reconstruction_errors(windows[chunk], reconstruct(windows[chunk]))


def error_moments(windows: np.ndarray, reconstruct: Reconstruct) -> ErrorMoments:
    moments = ErrorMoments()
    for _, errors in batch_errors(windows, reconstruct):
        moments.add(errors)
    return moments


def score_windows(
    windows: Windows, reconstruct: Reconstruct, model: ErrorModel
) -> tuple[RowScores, float]:
    """Per-row scores and contributions of a series' windows, and their reconstruction MSE."""
    rows = RowAccumulator(windows.n_rows, windows.channels, model)
    moments, starts = ErrorMoments(), windows.starts
    for chunk, errors in batch_errors(windows.view, reconstruct):
        rows.add(errors, starts[chunk])
        moments.add(errors)
    return rows.result(), moments.mse


def score_row_detector(row_scores: np.ndarray, windows: Windows) -> RowScores:
    """A detector's own per-row scores, through the same alignment as reconstruction scores
    (which hands each row its own score back; rows no window covers, with a stride, get NaN).

    It decomposes no score by channel: the contributions are NaN.
    """
    row_scores = np.asarray(row_scores, dtype=np.float64)
    n_rows = len(row_scores)
    steps = make_windows(row_scores[:, None], windows.length, windows.stride)[..., 0]
    scores = time_step_scores(steps, windows.starts, n_rows)
    return RowScores(scores=scores, contributions=np.full((n_rows, windows.channels), np.nan))
