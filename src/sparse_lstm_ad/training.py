"""Fitting an autoencoder on normal windows: MSE + the sparse layer's L1, Adam, early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from sparse_lstm_ad.config import TrainConfig

# Called after every epoch with the epoch number (1-based) and that epoch's figures.
EpochHook = Callable[[int, dict[str, float]], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class FitResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's figures and wall time to the hook; stops on a non-finite loss."""

    def __init__(self, hook: EpochHook | None) -> None:
        super().__init__()
        self.hook = hook
        self.history: dict[str, list[float]] = {}
        self.diverged_at: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        figures = {key: float(value) for key, value in (logs or {}).items()}
        figures["epoch_seconds"] = time.perf_counter() - self.started
        for key, value in figures.items():
            self.history.setdefault(key, []).append(value)
        if not all(math.isfinite(figures.get(k, 0.0)) for k in ("loss", "val_loss")):
            self.diverged_at = epoch + 1
            self.model.stop_training = True
        if self.hook is not None:
            self.hook(epoch + 1, figures)


def make_repeatable(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow; with `deterministic`, also pin TF's op choices.

    Op determinism stays on for the rest of the process once set: TF offers no way back.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def compile_model(model: keras.Model, learning_rate: float) -> None:
    # `loss` includes the sparse layer's L1 term; the `mse` metric is the reconstruction alone.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="mse",
        metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )


def fit_autoencoder(
    model: keras.Model,
    train_windows: np.ndarray,
    val_windows: np.ndarray,
    cfg: TrainConfig,
    on_epoch: EpochHook | None = None,
) -> FitResult:
    """Train to reconstruct the windows; restore the weights of the best validation loss."""
    compile_model(model, cfg.learning_rate)
    reporter = _EpochReporter(on_epoch)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=cfg.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    model.fit(
        train_windows,
        train_windows,
        validation_data=(val_windows, val_windows),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        callbacks=[reporter, stopper],
        verbose=0,
    )
    if reporter.diverged_at is not None:
        raise TrainingDiverged(f"loss is not finite at epoch {reporter.diverged_at}")
    val_loss = reporter.history["val_loss"]
    return FitResult(
        history=reporter.history,
        epochs_run=len(val_loss),
        best_epoch=int(np.argmin(val_loss)) + 1,
        seconds=time.perf_counter() - started,
    )


def reconstruct(model: keras.Model, windows: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    # Large batches: prediction has no gradient memory to bound it, and per-batch overhead rules.
    return model.predict(windows, batch_size=batch_size, verbose=0)
