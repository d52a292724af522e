"""Per-channel standardisation fitted on the training rows only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A std this small relative to the channel's level is rounding noise of a constant column.
_CONSTANT_RTOL = 1e-12


@dataclass(frozen=True)
class Standardizer:
    """Mean and (population) std per channel, like sklearn's StandardScaler."""

    mean: np.ndarray  # (k,)
    std: np.ndarray  # (k,)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., k) -> (..., k) standardised, float32 (the models' dtype)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} channels, got {x.shape[-1]}")
        return ((x - self.mean) / self.std).astype(np.float32)


def _check_finite(train: np.ndarray, channels: Sequence[str]) -> None:
    bad = ~np.isfinite(train).all(axis=0)
    if bad.any():
        names = [channels[c] for c in np.flatnonzero(bad)]
        raise ValueError(f"training data has NaN or inf in channel(s) {names}")


def constant_channels(train: np.ndarray) -> np.ndarray:
    """(n_rows, k) -> (k,) True where a channel is constant on ``train`` (rounding aside)."""
    train = np.asarray(train, dtype=np.float64)
    return _is_constant(train.mean(axis=0), train.std(axis=0))


def _is_constant(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return std <= _CONSTANT_RTOL * np.maximum(np.abs(mean), 1.0)


def _check_not_constant(mean: np.ndarray, std: np.ndarray, channels: Sequence[str]) -> None:
    constant = _is_constant(mean, std)
    if constant.any():
        names = [channels[c] for c in np.flatnonzero(constant)]
        raise ValueError(f"channel(s) {names} are constant on the training rows (std 0)")


def fit_standardizer(train: np.ndarray, channels: Sequence[str]) -> Standardizer:
    """Fit on ``train`` (n_rows, k); errors name the offending channel."""
    train = np.asarray(train, dtype=np.float64)
    if train.ndim != 2 or train.shape[0] < 1:
        raise ValueError(f"expected a non-empty (n_rows, k) array, got shape {train.shape}")
    if len(channels) != train.shape[1]:
        raise ValueError(f"{len(channels)} channel names for {train.shape[1]} channels")
    _check_finite(train, channels)
    mean = train.mean(axis=0)
    std = train.std(axis=0)  # ddof=0, as StandardScaler and the seed notebook
    _check_not_constant(mean, std, channels)
    return Standardizer(mean=mean, std=std)
