"""Fitting the detector a run asks for: a baseline on the rows, or a network on the windows.

A sparse layer that closes (every weight zero) selects nothing: its reconstruction is a
constant and the detector becomes the Mahalanobis baseline. A projection that collapses to
rank 1 passes a single direction of the channels: the network sees one mixed signal, and
which one varies from seed to seed. Both are defects of the L1, not results, seen without any
label, so the network is fitted again at a tenth of the L1, at most `CLOSED_LAYER_REFITS`
times; the L1 that was used is logged as `l1_effective`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from sparse_lstm_ad import tracking
from sparse_lstm_ad.baselines import fit_baseline
from sparse_lstm_ad.config import NETWORK_KINDS, SPARSE_KINDS, Config, ModelKind
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.fitting import FitResult, StoppedBy

log = logging.getLogger("sparse_lstm_ad.pipeline")  # the run's log: one stream of lines

CLOSED_LAYER_REFITS = 2
L1_BACKOFF = 0.1


def train_model(
    cfg: Config, rows: np.ndarray, windows: dict[str, Windows]
) -> tuple[Any, FitResult]:
    """The detector of `model.kind`, fitted on the training rows (a baseline) or windows."""
    if cfg.model.kind not in NETWORK_KINDS:
        started = time.perf_counter()
        baseline = fit_baseline(
            cfg.model, rows, cfg.seed, cfg.data.window, cfg.scoring.inverse, cfg.scoring.shrinkage
        )
        return baseline, FitResult(seconds=time.perf_counter() - started)
    steps = 0  # epochs logged by earlier fits: a refit's epochs follow them in MLflow
    for refit in range(CLOSED_LAYER_REFITS + 1):
        model, fit = _fit_network(cfg, rows.shape[1], windows, steps)
        steps += fit.epochs_run
        if cfg.model.kind not in SPARSE_KINDS:
            return model, fit
        defect = _collapse(model, cfg)
        if defect is None or refit == CLOSED_LAYER_REFITS:
            break
        smaller = cfg.model.l1 * L1_BACKOFF
        log.warning(
            "the sparse layer %s at model.l1=%g: fitting again at model.l1=%g",
            defect,
            cfg.model.l1,
            smaller,
        )
        cfg = replace(cfg, model=replace(cfg.model, l1=smaller))
    tracking.log_metrics({"l1_effective": cfg.model.l1})
    return model, fit


def _collapse(model: Any, cfg: Config) -> str | None:
    """What is wrong with the sparse layer, seen without labels; None when nothing is."""
    from sparse_lstm_ad.models import channel_mass, layer_rank, sparse_weights

    weights = sparse_weights(model)
    if not channel_mass(weights, cfg.model.kind).any():
        return "closed (every weight 0, no channel selected)"
    projects = cfg.model.kind == ModelKind.sparse_projection and min(weights.shape) >= 2
    if projects and (rank := layer_rank(weights)) < 2:
        return f"collapsed to rank {rank} (one direction of the channels passes)"
    return None


def _fit_network(
    cfg: Config, channels: int, windows: dict[str, Windows], steps: int
) -> tuple[Any, FitResult]:
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.training import fit_autoencoder

    model = build_model(cfg.model, cfg.data.window, channels)
    on_epoch = _epoch_logger(cfg, steps)
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train, on_epoch=on_epoch)
    log.info(
        "fit: %d epochs (best %d) in %.1f s, stopped by %s",
        fit.epochs_run,
        fit.best_epoch,
        fit.seconds,
        fit.stopped_by,
    )
    if fit.stopped_by == StoppedBy.max_epochs and fit.still_improving:
        log.warning(
            "training hit train.epochs=%d with the validation loss still improving: "
            "the model is undertrained, raise train.epochs",
            cfg.train.epochs,
        )
    return model, fit


def _epoch_logger(cfg: Config, steps: int):
    from sparse_lstm_ad.models import sparse_weights, weight_sparsity

    def on_epoch(epoch: int, figures: dict[str, float], model: Any) -> None:
        weights = sparse_weights(model)
        if weights is not None:
            sparsity = weight_sparsity(weights, cfg.model.sparsity_tolerance)
            figures = {
                **figures,
                "sparsity": sparsity.zero_share,
                "sparsity_exact": sparsity.exact_zero_share,
                "sparse_l1": sparsity.l1_norm,
            }
        tracking.log_metrics(figures, step=steps + epoch)
        log.info("epoch %d/%d %s", epoch, cfg.train.epochs, format_figures(figures))

    return on_epoch


def format_figures(figures: dict[str, float]) -> str:
    return " ".join(f"{key} {value:.4g}" for key, value in figures.items())
