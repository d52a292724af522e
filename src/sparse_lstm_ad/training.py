"""Fitting an autoencoder on normal windows: MSE + the sparse layer's L1, Adam, early stopping.

Runs end by early stopping, not by the epoch ceiling: the learning rate drops on a plateau
(`train.lr_patience`), training stops after `train.patience` epochs without a relative gain of
`train.min_delta`, and the best epoch's weights are restored. `FitResult.stopped_by` says which.

By default each epoch runs as one compiled (XLA) graph: the training windows' rows are held
once as a tensor and every batch is gathered from them inside the graph, so there is neither
a Python call per batch nor a copy of the input per step. `train.epoch_in_graph=false` falls
back to Keras `fit`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from sparse_lstm_ad.config import TrainConfig
from sparse_lstm_ad.fitting import FitResult, StoppedBy

# Called after every epoch with the epoch number (1-based) and that epoch's figures.
EpochHook = Callable[[int, dict[str, float]], None]


class Plateau(keras.callbacks.Callback):
    """Early stopping and reduce-on-plateau on val_loss, a gain measured as a share of the loss.

    Keras's own callbacks take an absolute `min_delta`, which means different things for a loss
    of 1.0 and one of 0.001; and two callbacks would count their plateaus apart.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.best, self.best_epoch, self.best_weights = math.inf, 0, None
        self.reference = math.inf  # the loss a gain is measured against: moves only on a gain
        self.waited = self.lr_waited = 0
        self.stopped_early = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = float((logs or {}).get("val_loss", math.nan))
        if not math.isfinite(current):
            return
        # Against the last loss that counted as a gain, as Keras does: a slow steady descent
        # still adds up to a gain, a plateau does not.
        improved = current < self.reference * (1 - self.cfg.min_delta)
        if improved:
            self.reference = current
        if current < self.best:
            self.best, self.best_epoch = current, epoch + 1
            self.best_weights = self.model.get_weights()
        self.waited = 0 if improved else self.waited + 1
        self.lr_waited = 0 if improved else self.lr_waited + 1
        if self.cfg.lr_patience and self.lr_waited >= self.cfg.lr_patience:
            self._reduce_learning_rate()
        if self.waited >= self.cfg.patience:
            self.stopped_early = self.model.stop_training = True

    def _reduce_learning_rate(self) -> None:
        optimizer = self.model.optimizer
        old = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        new = max(old * self.cfg.lr_factor, self.cfg.min_learning_rate)
        if new < old:
            optimizer.learning_rate = new
        self.lr_waited = 0

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


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
        figures["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
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
    from sparse_lstm_ad.models import ProximalAdam, proximal_l1

    # `loss` includes the sparse layer's L1 term; the `mse` metric is the reconstruction alone.
    model.compile(
        optimizer=ProximalAdam(proximal_l1(model), learning_rate=learning_rate),
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
    reporter, plateau = _EpochReporter(on_epoch), Plateau(cfg)
    started = time.perf_counter()
    fit = _fit_in_graph if cfg.epoch_in_graph else _fit_with_keras
    fit(model, train_windows, val_windows, cfg, [reporter, plateau])
    val_loss = np.asarray(reporter.history["val_loss"])
    if reporter.diverged_at is not None:
        stopped_by = StoppedBy.diverged
    else:
        stopped_by = StoppedBy.early_stopping if plateau.stopped_early else StoppedBy.max_epochs
    return FitResult(
        history=reporter.history,
        epochs_run=len(val_loss),
        best_epoch=int(np.nanargmin(val_loss)) + 1 if np.isfinite(val_loss).any() else 0,
        seconds=time.perf_counter() - started,
        stopped_by=stopped_by,
    )


def _fit_with_keras(
    model: keras.Model,
    train_windows: np.ndarray,
    val_windows: np.ndarray,
    cfg: TrainConfig,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    model.fit(
        train_windows,
        train_windows,
        validation_data=(val_windows, val_windows),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        callbacks=callbacks,
        verbose=0,
    )


def _fit_in_graph(
    model: keras.Model,
    train_windows: np.ndarray,
    val_windows: np.ndarray,
    cfg: TrainConfig,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Keras fit's epoch semantics (metrics, callbacks, stop_training), one graph per epoch."""
    train, val = WindowFeed.of(train_windows), WindowFeed.of(val_windows)
    # Variables must exist before tracing: a compiled loop body cannot create them.
    model.optimizer.build(model.trainable_variables)
    train_epoch = _epoch_function(model.train_step, train, cfg.batch_size, cfg.jit_compile)
    val_epoch = _epoch_function(model.test_step, val, cfg.eval_batch_size, cfg.jit_compile)
    hooks = keras.callbacks.CallbackList(callbacks, model=model, epochs=cfg.epochs, verbose=0)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(cfg.epochs):
        hooks.on_epoch_begin(epoch)
        # Keras's own order of visits: shuffled per epoch from the seeded global NumPy state.
        order = np.random.permutation(train.starts) if cfg.shuffle else train.starts
        logs = _run_epoch(model, train_epoch, order)
        logs.update({f"val_{k}": v for k, v in _run_epoch(model, val_epoch, val.starts).items()})
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()


def _run_epoch(model: keras.Model, epoch_function: Callable, starts: np.ndarray) -> dict:
    model.reset_metrics()
    epoch_function(starts)
    return {key: float(value) for key, value in model.get_metrics_result().items()}


@dataclass(frozen=True)
class WindowFeed:
    """Windows as the rows beneath them plus start rows: window i is rows[starts[i]:+length]."""

    rows: Any  # tf.Tensor (n_rows, k) float32, converted once per fit
    starts: np.ndarray  # (n_windows,) int32
    length: int

    @classmethod
    def of(cls, windows: np.ndarray) -> WindowFeed:
        import tensorflow as tf

        rows, starts = underlying_rows(windows)
        return cls(tf.convert_to_tensor(rows, dtype=tf.float32), starts, windows.shape[1])


def underlying_rows(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts) with windows[i] == rows[starts[i] : starts[i] + length].

    A sliding-window view (as `make_windows` returns) shares its rows with the series: they
    are recovered without copying, so the (n_windows, length, k) block never exists. Any
    other array is read as back-to-back windows of one contiguous copy.
    """
    n, length, k = windows.shape
    step_bytes, row_bytes = windows.strides[0], windows.strides[1]
    if n and row_bytes > 0 and step_bytes % row_bytes == 0 and step_bytes >= 0:
        stride = step_bytes // row_bytes
        shape = ((n - 1) * stride + length, k)
        rows = np.lib.stride_tricks.as_strided(
            windows, shape=shape, strides=(row_bytes, windows.strides[2]), writeable=False
        )
        return rows, np.arange(n, dtype=np.int32) * stride
    rows = np.ascontiguousarray(windows).reshape(n * length, k)
    return rows, np.arange(n, dtype=np.int32) * length


def _epoch_function(
    step: Callable, feed: WindowFeed, batch_size: int, jit_compile: bool
) -> Callable[[np.ndarray], None]:
    """Runs `step` on every batch of windows, in the order of the `starts` given.

    The full batches run in one compiled loop. XLA needs static shapes, and compiling a second
    copy of the step for the last, smaller batch would add half again to the compile time: that
    batch runs once per epoch in a plain TF graph instead, exactly as Keras would run it.
    """
    import tensorflow as tf

    batch_size = min(batch_size, len(feed.starts))
    full, rest = divmod(len(feed.starts), batch_size)
    offsets = tf.range(feed.length, dtype=tf.int32)[None, :]

    def run_batch(starts: tf.Tensor) -> None:
        windows = tf.gather(feed.rows, starts[:, None] + offsets)
        step((windows, windows))

    @tf.function(jit_compile=jit_compile)
    def run_full(starts: tf.Tensor) -> None:
        batches = tf.reshape(starts, (full, batch_size))
        for i in tf.range(full):
            run_batch(batches[i])

    run_rest = tf.function(run_batch, jit_compile=False)

    def call(starts: np.ndarray) -> None:
        run_full(tf.constant(starts[: full * batch_size], dtype=tf.int32))
        if rest:
            run_rest(tf.constant(starts[full * batch_size :], dtype=tf.int32))

    return call


def reconstructor(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A function from windows to the model's reconstructions (float32), traced once.

    Not `predict`, which traces a graph of its own each time and costs 0.3 s where this costs
    0.1 s on seed case 2; not an eager call, which steps the LSTM's time loop in Python and is
    4x slower than the graph at window 100 with two layers. Callers bound the batch they hand
    in (scoring.batch_errors): nothing here splits it.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    graph = tf.function(lambda windows: model(windows, training=False), input_signature=[spec])

    def reconstruct(windows: np.ndarray) -> np.ndarray:
        return graph(np.asarray(windows, dtype=np.float32)).numpy()

    return reconstruct
