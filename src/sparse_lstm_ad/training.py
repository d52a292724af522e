"""Fitting an autoencoder on normal windows: MSE + the sparse layer's L1, Adam, early stopping.

Runs end by early stopping, not by the epoch ceiling: the learning rate drops on a plateau
(`train.lr_patience`), training stops after `train.patience` epochs without a relative gain of
`train.min_delta`, and the best epoch's weights are restored. `FitResult.stopped_by` says which.

By default each epoch runs as one compiled (XLA) graph: the training windows' rows are held
once as a tensor and every batch is gathered from them inside the graph, so there is neither
a Python call per batch nor a copy of the input per step; the compiled graphs are kept for the
next fit of the same shapes in the process (graph_cache). `train.epoch_in_graph=false` falls
back to Keras `fit`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import keras
import numpy as np

from sparse_lstm_ad.config import TrainConfig
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.fitting import FitResult, StoppedBy
from sparse_lstm_ad.graph_cache import WindowFeed, compile_model, scoring_graph, trainer_for

# The XLA rule (use_xla), from the measurements in experiments/benchmark/RESULTS.md.
XLA_COMPILE_STEPS = 1000
EXPECTED_EPOCHS = 30

# Called after every epoch with the epoch number (1-based), that epoch's figures and the
# model being trained (a trainer's copy, see graph_cache: read its weights, not the caller's).
EpochHook = Callable[[int, dict[str, float], keras.Model], None]


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
            self.hook(epoch + 1, figures, self.model)


def make_repeatable(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and Keras; with `deterministic`, also pin TF's op choices.

    `keras.utils.set_random_seed` less its `tf.random.set_seed`: setting TF's global seed
    clears TF's kernel caches, so the next fit re-instantiates the kept graphs (1-3 s measured,
    graph_cache), and nothing here draws from it: Keras seeds its initializers from Python's
    RNG and its own seed generator. Op determinism stays on for the rest of the process once
    set: TF offers no way back.
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def fit_autoencoder(
    model: keras.Model,
    train_windows: Windows,
    val_windows: Windows,
    cfg: TrainConfig,
    on_epoch: EpochHook | None = None,
) -> FitResult:
    """Train to reconstruct the windows; restore the weights of the best validation loss."""
    compile_model(model, cfg.learning_rate)  # as Keras users expect: evaluate works after
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
    train_windows: Windows,
    val_windows: Windows,
    cfg: TrainConfig,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    train, val = train_windows.view, val_windows.view
    model.fit(
        train,
        train,
        validation_data=(val, val),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        callbacks=callbacks,
        verbose=0,
    )


def _fit_in_graph(
    model: keras.Model,
    train_windows: Windows,
    val_windows: Windows,
    cfg: TrainConfig,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Keras fit's epoch semantics (metrics, callbacks, stop_training), one graph per epoch.

    The graphs belong to a trainer kept across fits (graph_cache): it is loaded with this
    model's weights, trained, and its best weights copied back into the model.
    """
    train, val = WindowFeed.of(train_windows), WindowFeed.of(val_windows)
    jit = use_xla(cfg, len(train.starts))
    trainer = trainer_for(model, cfg, train, val, jit)
    trainer.load(model, cfg.learning_rate)
    trained = trainer.model
    hooks = keras.callbacks.CallbackList(callbacks, model=trained, epochs=cfg.epochs, verbose=0)
    hooks.on_train_begin()
    for epoch in range(cfg.epochs):
        hooks.on_epoch_begin(epoch)
        # Keras's own order of visits: shuffled per epoch from the seeded global NumPy state.
        order = np.random.permutation(train.starts) if cfg.shuffle else train.starts
        logs = _run_epoch(trained, lambda s: trainer.train_epoch(train.rows, s), order)
        val_logs = _run_epoch(trained, lambda s: trainer.val_epoch(val.rows, s), val.starts)
        logs.update({f"val_{k}": v for k, v in val_logs.items()})
        hooks.on_epoch_end(epoch, logs)
        if trained.stop_training:
            break
    hooks.on_train_end()
    model.set_weights(trained.get_weights())


def use_xla(cfg: TrainConfig, n_windows: int) -> bool:
    """`train.jit_compile`, or when unset (null) the rule: XLA when the fit repays its compile.

    XLA compiles for XLA_COMPILE_STEPS batch steps' worth of the time it then saves per step
    (measured, experiments/benchmark/RESULTS.md): a fit expected to run fewer steps than that
    runs its graph without XLA. A fit's length is not known before it ends: the ceiling, or
    EXPECTED_EPOCHS when early stopping is likely to come first.
    """
    if cfg.jit_compile is not None:
        return cfg.jit_compile
    epochs = min(cfg.epochs, EXPECTED_EPOCHS)
    return epochs * math.ceil(n_windows / cfg.batch_size) >= XLA_COMPILE_STEPS


def _run_epoch(model: keras.Model, epoch_function: Callable, starts: np.ndarray) -> dict:
    model.reset_metrics()
    epoch_function(starts)
    return {key: float(value) for key, value in model.get_metrics_result().items()}


def reconstructor(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A function from windows to the model's reconstructions (float32), in a kept graph.

    Not `predict`, which traces a graph of its own each time and costs 0.3 s where this costs
    0.1 s on seed case 2; not an eager call, which steps the LSTM's time loop in Python and is
    4x slower than the graph at window 100 with two layers. The graph is shared by every model
    of the architecture in the process (graph_cache.scoring_graph) and reads this model's
    weights at each call. Callers bound the batch they hand in (error_scores.batch_errors): nothing
    here splits it.
    """
    graph = scoring_graph(model)

    def reconstruct(windows: np.ndarray) -> np.ndarray:
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        return graph(trainable, non_trainable, np.asarray(windows, dtype=np.float32)).numpy()

    return reconstruct
