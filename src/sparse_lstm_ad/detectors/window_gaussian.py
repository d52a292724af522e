"""A Gaussian over windows flattened to window x channels values: the `mahalanobis` baseline's
model of the rows, and a reconstruction's error model at `scoring.scope=window`.

A window's score (its distance) and channel shares go to each row it covers; a row takes
their mean, so window scores compare row by row with step scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import CovarianceInverse
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.error_scores import (
    ErrorModel,
    RowScores,
    channel_contributions,
    fit_error_model,
    mahalanobis_scores,
    time_step_scores,
)

log = logging.getLogger(__name__)

WINDOW_BATCH = 2048  # windows scored at once


@dataclass(frozen=True)
class WindowMahalanobis:
    """N(mean, cov) of flattened windows (of rows, or of reconstruction errors)."""

    window: int
    model: ErrorModel  # over window x channels values, time step major

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, window, k) -> per-window distances (n,) and per-channel contributions (n, k)."""
        n, length, k = windows.shape
        flat = np.asarray(windows, dtype=np.float64).reshape(n, length * k)
        shares = channel_contributions(flat, self.model).reshape(n, length, k).sum(axis=1)
        return mahalanobis_scores(flat, self.model), shares

    def save(self, path: Path) -> Path:
        np.savez(path, window=self.window, mean=self.model.mean, inv_cov=self.model.inv_cov)
        return path

    @classmethod
    def load(cls, path: Path) -> WindowMahalanobis:
        with np.load(path, allow_pickle=False) as saved:
            return cls(int(saved["window"]), ErrorModel(saved["mean"], saved["inv_cov"]))


def fit_window_mahalanobis(
    flat: np.ndarray, window: int, inverse: CovarianceInverse, shrinkage: float
) -> WindowMahalanobis:
    """The Gaussian of `flat` (n, window x k): flattened windows of rows or of errors."""
    if len(flat) <= flat.shape[1]:
        _warn_of_too_few_windows(len(flat), flat.shape[1], flat.shape[1] // window)
    return WindowMahalanobis(window, fit_error_model(flat, inverse, shrinkage))


def _warn_of_too_few_windows(windows: int, values: int, channels: int) -> None:
    """No more windows than values leave the covariance singular by construction: the
    directions those windows miss are weighed by the inverse alone (pinv: not at all; oas and
    shrinkage: by the shrinkage's target). Warned of, not switched to fewer values: on
    experiments/fit_on's data (under pinv) a reconstruction's step scope won where the windows
    were 0.39 of the values (AUC-PR 0.85 against 0.35) and lost on two of three datasets where
    they were 0.65-0.98 (-0.08 to -0.34)."""
    log.warning(
        "a window Gaussian of %d values (data.window x %d channels) is fitted on %d windows: "
        "its covariance is singular, and directions those windows do not span are weighed by "
        "scoring.inverse alone; fewer values a window fit better (scoring.scope=step for a "
        "reconstruction's errors, model.mahalanobis_scope=row for the mahalanobis baseline, or "
        "a shorter data.window)",
        values,
        channels,
        windows,
    )


def flat_windows(windows: Windows) -> np.ndarray:
    """(n_windows, length x k): each window's rows in one vector, at the windows' stride."""
    return windows.view.reshape(len(windows), -1)


def score_by_window(
    scorer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], window: int, windows: Windows
) -> RowScores:
    """Each window's score and channel shares (from `scorer`), given to its rows."""
    if window != windows.length:
        raise ValueError(f"a detector of {window}-row windows got {windows.length}")
    view, starts, n_rows, length = windows.view, windows.starts, windows.n_rows, windows.length
    batches = [scorer(view[i : i + WINDOW_BATCH]) for i in range(0, len(view), WINDOW_BATCH)]
    scores = np.concatenate([b[0] for b in batches])
    shares = np.concatenate([b[1] for b in batches])
    return RowScores(
        scores=time_step_scores(np.repeat(scores[:, None], length, axis=1), starts, n_rows),
        contributions=time_step_scores(
            np.repeat(shares[:, None, :], length, axis=1), starts, n_rows
        ),
    )
