"""Where a run's series come from: one function turns the data config into train/test arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparse_lstm_ad.config import DataConfig, DataSource
from sparse_lstm_ad.data.seed import SEED_TRAIN_ROWS, seed_labels, seed_series


@dataclass(frozen=True)
class SeriesSplit:
    train: np.ndarray  # (n_train, k) normal rows only
    test: np.ndarray  # (n_test, k)
    test_labels: np.ndarray | None  # (n_test,) 1 = anomalous row; None when unlabelled
    channels: list[str]


def load_series(cfg: DataConfig) -> SeriesSplit:
    if cfg.source == DataSource.seed:
        return _seed_split(cfg)
    raise ValueError(f"data.source={cfg.source}: no loader for it")


def _seed_split(cfg: DataConfig) -> SeriesSplit:
    values, channels = seed_series(cfg.n_f2)
    labels = seed_labels()
    # Decimate after splitting so the split point and the anomaly onset stay where they were.
    return SeriesSplit(
        train=values[:SEED_TRAIN_ROWS][:: cfg.every],
        test=values[SEED_TRAIN_ROWS:][:: cfg.every],
        test_labels=labels[:: cfg.every],
        channels=channels,
    )


def split_validation(train: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The last `share` of the normal rows is held out, as the seed's Keras split did."""
    cut = len(train) - max(1, round(len(train) * share))
    return train[:cut], train[cut:]
