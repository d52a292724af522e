"""Fitting the detector a run asks for: its family (detectors.registry) fits it; the run logs
each epoch of a network as it ends."""

from __future__ import annotations

import logging

import numpy as np

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors import EpochHook, Fitted, family

log = logging.getLogger("sparse_lstm_ad.pipeline")  # the run's log: one stream of lines


def train_model(cfg: Config, rows: np.ndarray, windows: dict[str, Windows]) -> Fitted:
    """The detector of `model.kind`, fitted on the training rows and the parts' windows."""
    return family(cfg.model.kind).fit(cfg, rows, windows, _epoch_logger(cfg))


def _epoch_logger(cfg: Config) -> EpochHook:
    def on_epoch(step: int, epoch: int, figures: dict[str, float]) -> None:
        tracking.log_metrics(figures, step=step)
        log.info("epoch %d/%d %s", epoch, cfg.train.epochs, format_figures(figures))

    return on_epoch


def format_figures(figures: dict[str, float]) -> str:
    return " ".join(f"{key} {value:.4g}" for key, value in figures.items())
