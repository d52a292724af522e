"""A reconstruction (a network's, or a linear map's) and the Gaussian of its errors on normal
windows: what the LSTM forms and `pca` share (EncDec-AD's scoring).

`scoring.scope` says what one error vector is: `step`, the k errors of one (window, time step),
or `window`, a window's errors flattened to window x k values (time structure too).
Per step the errors are never held whole, batch by batch (error_scores.ErrorMoments); by
window, the normal windows' flattened errors are held once (`auto` picks this scope only for
windows of at most config.WINDOW_SCOPE_MAX_VALUES values; `window` set by hand, for any).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import WINDOW_SCOPE_MAX_VALUES, Config, FitOn, ScoringScope
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors.window_gaussian import (
    WindowMahalanobis,
    fit_window_mahalanobis,
    score_by_window,
)
from sparse_lstm_ad.error_scores import (
    ErrorModel,
    Reconstruct,
    RowScores,
    batch_errors,
    error_moments,
    reconstruction_errors,
    score_windows,
)

ErrorGaussian = ErrorModel | WindowMahalanobis  # by step | by window
# What a reconstruction's scores are (the network's, pca's), as the run's plots label them.
RECONSTRUCTION_DISTANCE = "Mahalanobis distance of the reconstruction errors"


def scoring_scope(cfg: Config, n_channels: int) -> ScoringScope:
    """`scoring.scope`, with `auto` resolved by the size of a flattened window."""
    if cfg.scoring.scope != ScoringScope.auto:
        return cfg.scoring.scope
    small = cfg.data.window * n_channels <= WINDOW_SCOPE_MAX_VALUES
    return ScoringScope.window if small else ScoringScope.step


@dataclass(frozen=True)
class FittedErrors:
    errors: ErrorGaussian
    train_mse: float
    scope: ScoringScope


def fit_errors(
    reconstruct: Reconstruct, cfg: Config, windows: dict[str, Windows], scope: ScoringScope
) -> FittedErrors:
    """The Gaussian of the errors of `scoring.fit_on`'s windows, and the training MSE."""
    normal = "train" if cfg.scoring.fit_on == FitOn.train else "val"
    inverse, shrinkage = cfg.scoring.inverse, cfg.scoring.shrinkage
    if scope == ScoringScope.window:
        flat = _window_errors(windows[normal].view, reconstruct)
        # fit_error_model refuses non-finite errors, as the step scope's ErrorMoments does.
        errors = fit_window_mahalanobis(flat, cfg.data.window, inverse, shrinkage)
        if normal == "train":  # the training errors are at hand: no second pass of the network
            return FittedErrors(errors, float(np.mean(flat**2)), scope)
        return FittedErrors(errors, error_moments(windows["train"].view, reconstruct).mse, scope)
    moments = {part: error_moments(windows[part].view, reconstruct) for part in {"train", normal}}
    errors = moments[normal].error_model(inverse, shrinkage)
    return FittedErrors(errors, moments["train"].mse, scope)


def _window_errors(windows: np.ndarray, reconstruct: Reconstruct) -> np.ndarray:
    """(n, window x k) reconstruction errors of every window, flattened."""
    parts = [errors.reshape(len(errors), -1) for _, errors in batch_errors(windows, reconstruct)]
    return np.concatenate(parts)


@dataclass(frozen=True)
class ReconstructionScores:
    """Windows -> per-row scores through a reconstruction and its error Gaussian."""

    reconstruct: Reconstruct
    errors: ErrorGaussian

    def score(self, windows: Windows) -> tuple[RowScores, float]:
        if isinstance(self.errors, ErrorModel):
            return score_windows(windows, self.reconstruct, self.errors)
        squares: list[tuple[float, int]] = []  # per batch: sum of squared errors, values

        def window_scores(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            errors = reconstruction_errors(batch, self.reconstruct(batch))
            squares.append((float(np.sum(errors**2)), errors.size))
            if not np.isfinite(squares[-1][0]):  # as the step scope's ErrorMoments.add
                raise ValueError("errors contain NaN or inf")
            return self.errors(errors)

        rows = score_by_window(window_scores, self.errors.window, windows)
        total, values = np.sum(squares, axis=0)
        return rows, float(total / values)  # the MSE from the same pass of the network

    def save_errors(self, folder: Path) -> dict[str, Path]:
        if isinstance(self.errors, ErrorModel):
            return {"error_model": self.errors.save(folder / "error_model.npz")}
        return {"window_errors": self.errors.save(folder / "window_errors.npz")}


def load_errors(artifacts: Mapping[str, Path]) -> ErrorGaussian:
    """The error Gaussian `ReconstructionScores.save_errors` wrote."""
    if "window_errors" in artifacts:
        return WindowMahalanobis.load(Path(artifacts["window_errors"]))
    return ErrorModel.load(Path(artifacts["error_model"]))
