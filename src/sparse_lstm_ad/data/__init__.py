"""Data: where a run's series come from (sources.py: the seed notebook's series, the correlated
generator, CSV files), standardisation and sliding windows."""

from sparse_lstm_ad.data.scaling import Standardizer, fit_standardizer
from sparse_lstm_ad.data.seed import (
    SEED_ANOMALY_FROM,
    SEED_ROWS,
    SEED_TRAIN_ROWS,
    seed_f1,
    seed_f2,
    seed_labels,
    seed_series,
)
from sparse_lstm_ad.data.windows import Windows, make_windows, window_starts

__all__ = [
    "SEED_ANOMALY_FROM",
    "SEED_ROWS",
    "SEED_TRAIN_ROWS",
    "Standardizer",
    "Windows",
    "fit_standardizer",
    "make_windows",
    "seed_f1",
    "seed_f2",
    "seed_labels",
    "seed_series",
    "window_starts",
]
