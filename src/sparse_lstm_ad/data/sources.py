"""Where a run's series come from: one function turns the data config into train/test arrays."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import DataConfig, DataSource
from sparse_lstm_ad.data.correlated import correlated_series
from sparse_lstm_ad.data.csv_source import load_csv_split
from sparse_lstm_ad.data.seed import SEED_TRAIN_ROWS, seed_labels, seed_series
from sparse_lstm_ad.data.series_split import SeriesSplit

__all__ = ["SeriesSplit", "dataset_name", "dataset_source", "load_series", "split_validation"]


def dataset_name(cfg: DataConfig, choice: str | None = None) -> str:
    """What runs, tables and logged models call the data: the preset (`case2`, `asd_omi1`)
    with the entity a key chose (`data=asd data.entity=omi-2`: `asd_omi2`), or for a CSV
    given on the command line its training file's stem (`plant_train`)."""
    if cfg.source == DataSource.csv and (choice or cfg.name) == "csv" and cfg.csv.train:
        return Path(cfg.csv.train).name.split(".")[0]
    name = choice or cfg.name
    # One part of a data set chosen by key (data=asd data.entity=omi-2): named as its preset
    # (asd_omi2), so that two entities of one sweep are two datasets in its tables.
    entity = _slug(cfg.entity)
    return f"{name}_{entity}" if entity and not _slug(name).endswith(entity) else name


def _slug(text: str) -> str:
    return re.sub(r"\W|_", "", text)


def dataset_source(cfg: DataConfig) -> str:
    """Where the rows come from: the training file, or the generator and its seed."""
    if cfg.source == DataSource.csv:
        return str((Path(cfg.csv.dir) / cfg.csv.train).resolve())
    if cfg.source == DataSource.correlated:
        return f"generated:correlated(seed={cfg.correlated.seed})"
    return "generated:seed_notebook"


def load_series(cfg: DataConfig) -> SeriesSplit:
    """The train and test rows of `cfg.source`, then every `cfg.every`-th row of each."""
    # Decimate after splitting so the split point and the anomaly onsets stay where they were.
    if cfg.source == DataSource.seed:
        return _seed_split(cfg).every(cfg.every)
    if cfg.source == DataSource.correlated:
        return _correlated_split(cfg).every(cfg.every)
    if cfg.source == DataSource.csv:
        return load_csv_split(cfg.csv, cfg.every)
    raise ValueError(f"data.source={cfg.source}: no loader for it")


def _seed_split(cfg: DataConfig) -> SeriesSplit:
    values, channels = seed_series(cfg.seed.n_f2)
    return SeriesSplit(
        train=values[:SEED_TRAIN_ROWS],
        test=values[SEED_TRAIN_ROWS:],
        test_labels=seed_labels(),
        channels=channels,
    )


def _correlated_split(cfg: DataConfig) -> SeriesSplit:
    series = correlated_series(cfg.correlated)
    return SeriesSplit(
        train=series.train,
        test=series.test,
        test_labels=series.test_labels,
        channels=series.channels,
        test_channel_labels=series.test_channel_labels,
    )


def split_validation(train: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The last `share` of the normal rows is held out, as the seed's Keras split did."""
    cut = len(train) - max(1, round(len(train) * share))
    return train[:cut], train[cut:]
