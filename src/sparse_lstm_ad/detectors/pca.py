"""`pca`: the reconstruction from the fewest principal components of the training rows that
explain `model.pca_variance` of their variance; its errors go to the same error model as a
network's. No TensorFlow."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import Config, ScoringScope
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors.protocol import EpochHook, Family, Fitted, NothingToShow
from sparse_lstm_ad.detectors.reconstruction import (
    RECONSTRUCTION_DISTANCE,
    ReconstructionScores,
    fit_errors,
    load_errors,
    scoring_scope,
)
from sparse_lstm_ad.error_scores import RowScores
from sparse_lstm_ad.files import load_fields, save_fields
from sparse_lstm_ad.fitting import FitResult

log = logging.getLogger(__name__)

# A direction whose variance is below this share of the largest one's is float32 rounding
# (amplitude ~1e-7, variance ~1e-14 of the rows'): no direction the rows vary in.
RANK_FLOOR = 1e-10


@dataclass(frozen=True)
class LinearReconstruction:
    """x -> mean + (x - mean) B B^T, B orthonormal (k, c): PCA; with c = 0 and mean 0, zero."""

    mean: np.ndarray  # (k,)
    basis: np.ndarray  # (k, c)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        centred = np.asarray(windows, dtype=np.float64) - self.mean
        return self.mean + (centred @ self.basis) @ self.basis.T

    def save(self, path: Path) -> Path:
        return save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> LinearReconstruction:
        return cls(**load_fields(path))


def fit_pca(train: np.ndarray, variance_share: float) -> LinearReconstruction:
    """The leading components of the training rows that explain `variance_share` of them,
    one fewer than the rows' rank at most: the errors of a reconstruction that keeps every
    direction the rows vary in are rounding noise, whose Gaussian scores the rows themselves
    (the Mahalanobis baseline's scores, under another name)."""
    from sklearn.decomposition import PCA

    # In float64: a float32 basis leaves rounding errors of ~1e-7 along the kept components,
    # which the error model's inverse weighs as directions of tiny variance, and they swamp
    # the residual the detector is meant to score.
    full = PCA(svd_solver="full").fit(np.asarray(train, dtype=np.float64))
    # Directions of float32 rounding alone (a copied channel, a total of others) are no rank.
    rank = int((full.explained_variance_ > RANK_FLOOR * full.explained_variance_[0]).sum())
    wanted = len(full.explained_variance_ratio_)
    if variance_share < 1:  # the fewest components reaching the share, by PCA's own rule
        reached = np.cumsum(full.explained_variance_ratio_)
        wanted = int(np.searchsorted(reached, variance_share, side="right") + 1)
    kept = max(0, min(wanted, rank - 1))  # constant rows (rank 0): no component
    if kept < wanted:
        log.info(
            "pca: %d components explain model.pca_variance=%g of rows of rank %d; keeping %d, "
            "so that a residual is left to score%s",
            wanted,
            variance_share,
            rank,
            kept,
            " (none: the residual is the rows, scored as the mahalanobis baseline)" * (kept == 0),
        )
    return LinearReconstruction(full.mean_, full.components_[:kept].T)


@dataclass(frozen=True)
class LinearDetector(NothingToShow):
    """A linear reconstruction and the error Gaussian of its errors."""

    linear: LinearReconstruction
    scores: ReconstructionScores

    def score(self, windows: Windows) -> tuple[RowScores, float]:
        return self.scores.score(windows)

    def save(self, folder: Path) -> dict[str, Path]:
        linear = self.linear.save(folder / "linear.npz")
        return {"linear": linear, **self.scores.save_errors(folder)}


def linear_detector(
    linear: LinearReconstruction, cfg: Config, windows: dict[str, Windows], scope: ScoringScope
) -> tuple[LinearDetector, float]:
    """The detector of `linear` with its errors' Gaussian, and the training MSE."""
    fitted = fit_errors(linear, cfg, windows, scope)
    return LinearDetector(linear, ReconstructionScores(linear, fitted.errors)), fitted.train_mse


def fit(cfg: Config, train: np.ndarray, windows: dict[str, Windows], _: EpochHook) -> Fitted:
    started = time.perf_counter()
    linear = fit_pca(train, cfg.model.pca_variance)
    seconds = time.perf_counter() - started
    scope = scoring_scope(cfg, train.shape[1])
    detector, train_mse = linear_detector(linear, cfg, windows, scope)
    figures = {"train_reconstruction_mse": train_mse}
    return Fitted(detector, FitResult(seconds=seconds), figures, {"scoring_scope": scope.value})


def load(artifacts: Mapping[str, Path]) -> LinearDetector:
    linear = LinearReconstruction.load(Path(artifacts["linear"]))
    return LinearDetector(linear, ReconstructionScores(linear, load_errors(artifacts)))


FAMILY = Family(
    kinds={"pca": ("pca_variance",)}, fit=fit, load=load, score_label=RECONSTRUCTION_DISTANCE
)
