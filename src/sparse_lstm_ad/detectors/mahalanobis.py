"""`mahalanobis`: no model at all, the baseline any detector has to beat.

By default (`model.mahalanobis_scope=window`) the distance of each window, flattened to
window x channels values, from the training windows; a row gets the mean over the windows
covering it. With `row`, the reconstruction is zero, so the error model is fitted on the
standardised rows themselves: each row's distance from the training rows. Measured on the seven
datasets of experiments/baselines (mahalanobis_scope.py): the window scope is the stronger
baseline everywhere (AUC-PR 0.36 vs 0.09 on ASD omi-3, 0.96 vs 0.87 on correlation breaks).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import Config, MahalanobisScope, ScoringScope
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors import pca
from sparse_lstm_ad.detectors.protocol import Detector, EpochHook, Family, Fitted, NothingToShow
from sparse_lstm_ad.detectors.window_gaussian import (
    WindowMahalanobis,
    fit_window_mahalanobis,
    flat_windows,
    score_by_window,
)
from sparse_lstm_ad.error_scores import RowScores
from sparse_lstm_ad.fitting import FitResult


@dataclass(frozen=True)
class WindowDetector(NothingToShow):
    """Scores windows of rows by their distance from the training windows."""

    gaussian: WindowMahalanobis

    def score(self, windows: Windows) -> tuple[RowScores, float]:
        return score_by_window(self.gaussian, self.gaussian.window, windows), float("nan")

    def save(self, folder: Path) -> dict[str, Path]:
        return {"window_mahalanobis": self.gaussian.save(folder / "window_mahalanobis.npz")}


def zero_reconstruction(n_channels: int) -> pca.LinearReconstruction:
    return pca.LinearReconstruction(np.zeros(n_channels), np.zeros((n_channels, 0)))


def fit(cfg: Config, train: np.ndarray, windows: dict[str, Windows], _: EpochHook) -> Fitted:
    started = time.perf_counter()
    if cfg.model.mahalanobis_scope == MahalanobisScope.window:
        flat = flat_windows(windows["train"])
        gaussian = fit_window_mahalanobis(
            flat, cfg.data.window, cfg.scoring.inverse, cfg.scoring.shrinkage
        )
        return Fitted(WindowDetector(gaussian), FitResult(seconds=time.perf_counter() - started))
    # The rows' own distance: a row's errors are the row, one vector per step.
    zero = zero_reconstruction(train.shape[1])
    detector, train_mse = pca.linear_detector(zero, cfg, windows, ScoringScope.step)
    figures = {"train_reconstruction_mse": train_mse}
    return Fitted(detector, FitResult(seconds=time.perf_counter() - started), figures)


def load(artifacts: Mapping[str, Path]) -> Detector:
    if "window_mahalanobis" in artifacts:
        return WindowDetector(WindowMahalanobis.load(Path(artifacts["window_mahalanobis"])))
    return pca.load(artifacts)  # the row scope: a zero linear reconstruction


FAMILY = Family(
    kinds={"mahalanobis": ("mahalanobis_scope",)},
    fit=fit,
    load=load,
    score_label="Mahalanobis distance of the windows (or rows)",
)
