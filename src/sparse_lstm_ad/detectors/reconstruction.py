"""A reconstruction (a network's, or a linear map's) and the Gaussian of its errors on normal
windows: what the LSTM forms and `pca` share (EncDec-AD's scoring).

`scoring.scope` says what one error vector is: `step`, the k errors of one (window, time step),
or `window`, a window's errors flattened to window x k values (time structure too).
Per step the errors are never held whole, batch by batch (error_scores.ErrorMoments); by
window, the normal windows' flattened errors are held once (`auto` picks this scope only for
windows of at most config.WINDOW_SCOPE_MAX_VALUES values; `window` set by hand, for any).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

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

# What a reconstruction's scores are (the network's, pca's), as the run's plots label them.
RECONSTRUCTION_DISTANCE = "Mahalanobis distance of the reconstruction errors"


def scoring_scope(cfg: Config, n_channels: int) -> ScoringScope:
    """`scoring.scope`, with `auto` resolved by the size of a flattened window."""
    if cfg.scoring.scope != ScoringScope.auto:
        return cfg.scoring.scope
    small = cfg.data.window * n_channels <= WINDOW_SCOPE_MAX_VALUES
    return ScoringScope.window if small else ScoringScope.step


class ErrorGaussian(Protocol):
    """The Gaussian of a reconstruction's errors at one `scoring.scope`."""

    def score(self, windows: Windows, reconstruct: Reconstruct) -> tuple[RowScores, float]:
        """Per-row scores of the windows, and their reconstruction MSE, in one network pass."""
        ...

    def save(self, folder: Path) -> dict[str, Path]:
        """Its file, keyed as the logged model's artifacts name it (`ERROR_FILES`)."""
        ...


@dataclass(frozen=True)
class StepGaussian:
    """EncDec-AD's: one Gaussian over the k errors of a (window, time step)."""

    model: ErrorModel
    artifact: ClassVar[str] = "error_model"

    def score(self, windows: Windows, reconstruct: Reconstruct) -> tuple[RowScores, float]:
        return score_windows(windows, reconstruct, self.model)

    def save(self, folder: Path) -> dict[str, Path]:
        return {self.artifact: self.model.save(folder / f"{self.artifact}.npz")}


@dataclass(frozen=True)
class WindowGaussian:
    """One Gaussian over a window's errors flattened (window x k values)."""

    gaussian: WindowMahalanobis
    artifact: ClassVar[str] = "window_errors"

    def score(self, windows: Windows, reconstruct: Reconstruct) -> tuple[RowScores, float]:
        squares: list[tuple[float, int]] = []  # per batch: sum of squared errors, values

        def window_scores(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            errors = reconstruction_errors(batch, reconstruct(batch))
            squares.append((float(np.sum(errors**2)), errors.size))
            if not np.isfinite(squares[-1][0]):  # as the step scope's ErrorMoments.add
                raise ValueError("errors contain NaN or inf")
            return self.gaussian(errors)

        rows = score_by_window(window_scores, self.gaussian.window, windows)
        total, values = np.sum(squares, axis=0)
        return rows, float(total / values)  # the MSE from the same pass of the network

    def save(self, folder: Path) -> dict[str, Path]:
        return {self.artifact: self.gaussian.save(folder / f"{self.artifact}.npz")}


# The logged model's artifact -> the Gaussian it holds (the window scope's first: a model
# logged before the window scope holds only the step's).
ERROR_FILES: dict[str, Callable[[Path], ErrorGaussian]] = {
    WindowGaussian.artifact: lambda path: WindowGaussian(WindowMahalanobis.load(path)),
    StepGaussian.artifact: lambda path: StepGaussian(ErrorModel.load(path)),
}


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
    errors, train_mse = _FITS[scope](reconstruct, cfg, windows, normal)
    return FittedErrors(errors, train_mse, scope)


def _fit_step(
    reconstruct: Reconstruct, cfg: Config, windows: dict[str, Windows], normal: str
) -> tuple[ErrorGaussian, float]:
    moments = {part: error_moments(windows[part].view, reconstruct) for part in {"train", normal}}
    model = moments[normal].error_model(cfg.scoring.inverse, cfg.scoring.shrinkage)
    return StepGaussian(model), moments["train"].mse


def _fit_window(
    reconstruct: Reconstruct, cfg: Config, windows: dict[str, Windows], normal: str
) -> tuple[ErrorGaussian, float]:
    flat = _window_errors(windows[normal].view, reconstruct)
    # fit_error_model refuses non-finite errors, as the step scope's ErrorMoments does.
    inverse, shrinkage = cfg.scoring.inverse, cfg.scoring.shrinkage
    gaussian = WindowGaussian(fit_window_mahalanobis(flat, cfg.data.window, inverse, shrinkage))
    if normal == "train":  # the training errors are at hand: no second pass of the network
        return gaussian, float(np.mean(flat**2))
    return gaussian, error_moments(windows["train"].view, reconstruct).mse


_FITS = {ScoringScope.step: _fit_step, ScoringScope.window: _fit_window}


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
        return self.errors.score(windows, self.reconstruct)

    def save_errors(self, folder: Path) -> dict[str, Path]:
        return self.errors.save(folder)


def load_errors(artifacts: Mapping[str, Path]) -> ErrorGaussian:
    """The error Gaussian `ReconstructionScores.save_errors` wrote."""
    name = next((name for name in ERROR_FILES if name in artifacts), StepGaussian.artifact)
    return ERROR_FILES[name](Path(artifacts[name]))
