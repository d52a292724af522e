"""The LSTM autoencoders (models.py): `standard`, `sparse_gate` and `sparse_projection`, fitted
on windows, scored through their reconstruction errors' Gaussian (reconstruction.py).

A sparse layer that closes (every weight zero) selects nothing: its reconstruction is a
constant and the detector becomes the Mahalanobis baseline. A projection that collapses to
rank 1 passes a single direction of the channels: the network sees one mixed signal, and
which one varies from seed to seed. Both are defects of the L1, not results, seen without any
label, so the network is fitted again at a tenth of the L1, at most `CLOSED_LAYER_REFITS`
times; the L1 that was used is logged as `l1_effective`.

TensorFlow loads inside these functions only: the baselines never load it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sparse_lstm_ad.attribution import mass_attribution_metrics
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors.protocol import EpochHook, Family, Fitted
from sparse_lstm_ad.detectors.reconstruction import (
    RECONSTRUCTION_DISTANCE,
    ErrorGaussian,
    FittedErrors,
    ReconstructionScores,
    fit_errors,
    load_errors,
    scoring_scope,
)
from sparse_lstm_ad.error_scores import RowScores
from sparse_lstm_ad.fitting import FitResult, StoppedBy, TrainingDiverged, raise_if_diverged
from sparse_lstm_ad.sparse_fronts import FRONTS, sparse_front, sparse_weights, weight_sparsity

log = logging.getLogger(__name__)

CLOSED_LAYER_REFITS = 2
# A constant at the rows' mean reconstructs with MSE = their variance; an untrained network's
# near-zero output about as well. A hundred times worse is no fit at all.
UNLEARNED_FACTOR = 100.0
L1_BACKOFF = 0.1
_LSTM_KEYS = ("hidden", "layers")
_SPARSE_KEYS = (*_LSTM_KEYS, "l1", "l1_method", "sparsity_tolerance")


@dataclass(frozen=True)
class NetworkDetector:
    model: Any  # the Keras autoencoder
    kind: str
    scores: ReconstructionScores

    def score(self, windows: Windows) -> tuple[RowScores, float]:
        return self.scores.score(windows)

    def save(self, folder: Path) -> dict[str, Path]:
        network = folder / "autoencoder.keras"
        self.model.save(network)
        return {"network": network, **self.scores.save_errors(folder)}

    def figures(self, channel_labels: np.ndarray | None) -> dict[str, float]:
        """Whether the sparse layer closed (every weight zero: the reconstruction is a
        constant, the detector the Mahalanobis baseline's), and how well its channel mass
        names the labelled channels; {} for the standard model."""
        if (front := sparse_front(self.kind)) is None:
            return {}
        weights = front.weights(self.model)
        mass = front.channel_mass(weights)
        figures = {"sparse_layer_closed": float(not mass.any()), **front.figures(weights)}
        if not mass.any():
            log.warning("the sparse layer closed: every weight is 0; a smaller model.l1 keeps some")
        if channel_labels is not None:
            figures.update(mass_attribution_metrics(mass, channel_labels))
        return figures

    def plots(self, channels: list[str], folder: Path) -> list[Path]:
        """The sparse layer's weights, and which input channels it keeps."""
        if (front := sparse_front(self.kind)) is None:
            return []
        import pandas as pd

        from sparse_lstm_ad import plots  # matplotlib: only a run that plots loads it

        weights = front.weights(self.model)
        mass = front.channel_mass(weights)
        table = folder / "sparse_channel_mass.csv"  # the figures of the bar plot, for studies
        pd.DataFrame({"channel": channels, "mass": mass}).to_csv(table, index=False)
        return [
            table,
            plots.sparse_weights_heatmap(
                weights, *front.axes, channels, folder / "sparse_weights.png"
            ),
            plots.channel_mass_bars(mass, channels, folder / "sparse_channel_mass.png"),
        ]


def fit(cfg: Config, train: np.ndarray, windows: dict[str, Windows], on_epoch: EpochHook) -> Fitted:
    """The network of `model.kind` fitted on the windows, then its errors' Gaussian."""
    from sparse_lstm_ad.training import make_repeatable  # TensorFlow loads here

    fresh_tensorflow(cfg.threads)
    make_repeatable(cfg.seed, cfg.train.deterministic)
    model, fitted, cfg = _fit_with_an_open_layer(cfg, train.shape[1], windows, on_epoch)
    detector, errors = with_error_model(model, cfg, windows)
    raise_if_unlearned(errors.train_mse, train, cfg)
    figures = {"train_reconstruction_mse": errors.train_mse}
    if sparse_front(cfg.model.kind) is not None:
        figures["l1_effective"] = cfg.model.l1
    return Fitted(detector, fitted, figures, {"scoring_scope": errors.scope.value})


def _fit_with_an_open_layer(
    cfg: Config, channels: int, windows: dict[str, Windows], on_epoch: EpochHook
) -> tuple[Any, FitResult, Config]:
    """The network, fitted again at a smaller L1 while its sparse layer is closed or
    collapsed; the config with the L1 that was used."""
    steps = 0  # epochs logged by earlier fits: a refit's epochs follow them in MLflow
    for refit in range(CLOSED_LAYER_REFITS + 1):
        model, fitted = _fit_network(cfg, channels, windows, _steps_after(on_epoch, steps))
        steps += fitted.epochs_run
        # Before the layer is read: a diverged fit's NaN weights have no rank, and NaN errors
        # no covariance.
        raise_if_diverged(fitted)
        front = sparse_front(cfg.model.kind)
        defect = None if front is None else front.defect(front.weights(model))
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
    return model, fitted, cfg


def with_error_model(
    model: Any, cfg: Config, windows: dict[str, Windows]
) -> tuple[NetworkDetector, FittedErrors]:
    """A trained network as a detector: its errors' Gaussian fitted on the normal windows."""
    from sparse_lstm_ad.training import reconstructor

    reconstruct = reconstructor(model)  # traced once: every part is scored through it
    errors = fit_errors(reconstruct, cfg, windows, scoring_scope(cfg, windows["train"].channels))
    scores = ReconstructionScores(reconstruct, errors.errors)
    return NetworkDetector(model, cfg.model.kind, scores), errors


def raise_if_unlearned(train_mse: float, train: np.ndarray, cfg: Config) -> None:
    """TrainingDiverged for a network whose reconstruction of its training windows is far
    worse than a constant at the rows' mean: it learned nothing, its errors are the rows
    shifted, and its scores the Mahalanobis baseline's under another name. A finite loss
    hides it from the non-finite check (train.learning_rate=1e12: MSE 4e24, early stopping
    at epoch 2, a FINISHED run with the baseline's AUC-PR)."""
    variance = float(np.var(train, axis=0).mean())
    if not train_mse <= UNLEARNED_FACTOR * max(variance, np.finfo(np.float32).tiny):  # NaN too
        raise TrainingDiverged(
            f"the network reconstructs its training windows with MSE {train_mse:.3g}, over "
            f"{UNLEARNED_FACTOR:g} times their rows' variance ({variance:.3g}): it learned "
            f"nothing (train.learning_rate={cfg.train.learning_rate:g})"
        )


def _steps_after(on_epoch: EpochHook, steps: int) -> EpochHook:
    return lambda step, epoch, figures: on_epoch(steps + step, epoch, figures)


def _fit_network(
    cfg: Config, channels: int, windows: dict[str, Windows], on_epoch: EpochHook
) -> tuple[Any, FitResult]:
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.training import fit_autoencoder

    model = build_model(cfg.model, cfg.data.window, channels)
    hook = _with_sparsity(cfg, on_epoch)
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train, on_epoch=hook)
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


def _with_sparsity(cfg: Config, on_epoch: EpochHook):
    """The epoch's figures, with the sparse layer's sparsity for a sparse form."""

    def hook(epoch: int, figures: dict[str, float], model: Any) -> None:
        weights = sparse_weights(model)
        if weights is not None:
            sparsity = weight_sparsity(weights, cfg.model.sparsity_tolerance)
            figures = {
                **figures,
                "sparsity": sparsity.zero_share,
                "sparsity_exact": sparsity.exact_zero_share,
                "sparse_l1": sparsity.l1_norm,
            }
        on_epoch(epoch, epoch, figures)

    return hook


def fresh_tensorflow(threads: int) -> None:
    """A thread budget for TensorFlow: worker processes are reused between jobs.

    No `keras.backend.clear_session()`: in Keras 3 it holds no graph to clear, only name
    counters (our layers are named), and it clears TF's kernel caches, which re-instantiates
    the graphs a worker keeps for its next fit (graph_cache) at ~1 s a job.
    """
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TF already started in this process: the first job's limit holds
            log.debug("TensorFlow threads already fixed in this process")


def load(artifacts: Mapping[str, Path]) -> NetworkDetector:
    return network_detector(load_network(Path(artifacts["network"])), load_errors(artifacts))


def load_network(path: Path) -> Any:
    """The network in Keras safe mode, without its optimizer (scoring needs none)."""
    import keras

    import sparse_lstm_ad.sparse_layers  # noqa: F401 - registers FeatureGate and SparseL1

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def network_detector(model: Any, errors: ErrorGaussian) -> NetworkDetector:
    from sparse_lstm_ad.models import network_kind
    from sparse_lstm_ad.training import reconstructor

    scores = ReconstructionScores(reconstructor(model), errors)
    return NetworkDetector(model, network_kind(model), scores)


FAMILY = Family(
    kinds={
        "standard": _LSTM_KEYS,
        **{kind: (*_SPARSE_KEYS, *front.keys) for kind, front in FRONTS.items()},
    },
    fit=fit,
    load=load,
    fit_imports=("sparse_lstm_ad.training",),  # TensorFlow and Keras
    score_label=RECONSTRUCTION_DISTANCE,
)
