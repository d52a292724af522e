"""Where a run's series come from: one registry of the sources (`SOURCES`: the seed notebook's
series, the correlated generator, CSV files), each saying how its train/test rows load, where
they come from, and what of its inputs a run's identity includes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import DataConfig, DataSource
from sparse_lstm_ad.data.correlated import correlated_series
from sparse_lstm_ad.data.csv_files import input_fingerprint
from sparse_lstm_ad.data.csv_source import CHANNEL_RULES, load_csv_split
from sparse_lstm_ad.data.seed import SEED_TRAIN_ROWS, seed_labels, seed_series
from sparse_lstm_ad.data.series_split import SeriesSplit

__all__ = [
    "SeriesSplit",
    "dataset_name",
    "dataset_source",
    "input_files",
    "load_series",
    "split_validation",
]


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


@dataclass(frozen=True)
class Source:
    """One `data.source`: its rows, where they come from, and what of its inputs a run's
    identity must include (the files' contents: a changed CSV is a new run)."""

    split: Callable[[DataConfig], SeriesSplit]  # train and test rows, every `cfg.every`-th
    origin: Callable[[DataConfig], str]
    inputs: Callable[[DataConfig], dict[str, str]] = lambda cfg: {}


def _csv_inputs(cfg: DataConfig) -> dict[str, str]:
    return {**input_fingerprint(cfg.csv), "channel_rules": str(CHANNEL_RULES)}


# Decimated after splitting, so the split point and the anomaly onsets stay where they were.
SOURCES = {
    DataSource.seed: Source(
        split=lambda cfg: _seed_split(cfg).every(cfg.every),
        origin=lambda cfg: "generated:seed_notebook",
    ),
    DataSource.correlated: Source(
        split=lambda cfg: _correlated_split(cfg).every(cfg.every),
        origin=lambda cfg: f"generated:correlated(seed={cfg.correlated.seed})",
    ),
    DataSource.csv: Source(
        split=lambda cfg: load_csv_split(cfg.csv, cfg.every),
        origin=lambda cfg: str((Path(cfg.csv.dir) / cfg.csv.train).resolve()),
        inputs=_csv_inputs,
    ),
}


def dataset_source(cfg: DataConfig) -> str:
    """Where the rows come from: the training file, or the generator and its seed."""
    return SOURCES[cfg.source].origin(cfg)


def load_series(cfg: DataConfig) -> SeriesSplit:
    """The train and test rows of `cfg.source`, then every `cfg.every`-th row of each."""
    return SOURCES[cfg.source].split(cfg)


def input_files(cfg: DataConfig) -> dict[str, str]:
    """What of the data's inputs a run's identity includes: {} for generated data."""
    return SOURCES[cfg.source].inputs(cfg)


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
