"""A run's rows: the series loaded, standardised on its training part and split into the
three parts a run uses; and, for a selection, the validation rows with anomalies injected."""

from __future__ import annotations

from sparse_lstm_ad.config import Config
from sparse_lstm_ad.config_checks import ConfigError
from sparse_lstm_ad.data import fit_standardizer
from sparse_lstm_ad.data.sources import load_series, split_validation
from sparse_lstm_ad.injection import Injected, inject_anomalies
from sparse_lstm_ad.pipeline.values import Rows


def prepare_rows(cfg: Config) -> Rows:
    series = load_series(cfg.data)
    standardizer = fit_standardizer(series.train, series.channels)
    train, val = split_validation(standardizer.transform(series.train), cfg.train.validation_split)
    test = standardizer.transform(series.test)
    shortest = min(len(train), len(val), len(test))
    if cfg.data.window > shortest:
        raise ConfigError(
            f"data.window={cfg.data.window} is longer than the shortest part of the series "
            f"({shortest} rows; train {len(train)}, validation {len(val)}, test {len(test)})"
        )
    return Rows(
        train,
        val,
        test,
        series.test_labels,
        series.channels,
        standardizer,
        series.test_channel_labels,
        series.test_times,
    )


def injected_validation(cfg: Config, rows: Rows) -> Injected | None:
    """With `selection.enabled`: the validation rows with anomalies injected, the same for
    every candidate of a data set and seed; never the training rows, never a test label."""
    if not cfg.selection.enabled:
        return None
    return inject_anomalies(rows.val, cfg.selection, gap=cfg.data.window, seed=cfg.seed)
