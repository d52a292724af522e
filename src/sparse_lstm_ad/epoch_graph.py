"""An epoch of training or validation steps as one graph, every batch of one shape.

A fit's windows rarely divide into whole batches, and Keras runs the last, smaller batch at
its own shape: a second trace of the step and a second graph to set up (XLA needs static
shapes), 0.64 s of a fresh process's first epoch with the executables on disk
(experiments/benchmark/first_epoch.py), paid again by each new shape in a sweep's worker.
Here that batch is padded to full size with copies of a window that weigh nothing, and each
step weighs its batch by the windows that are real: the figures are Keras fit's (to float
rounding, tests/test_training_speed_options.py), from one graph traced once.

The step is Keras's `train_step` / `test_step` with two weights in place of a batch's count:
the loss of the real windows is their mean (Keras divides a sum by the padded batch's size,
so each real window weighs batch / real), and the epoch's loss and metrics count real windows
alone. A full batch's weights are exactly 1: its arithmetic is Keras's own.

This holds for layers that treat each window on its own, as every model of `models.py` does
(LSTM, Dense, the sparse layer). A layer that reads across a batch (batch normalisation),
draws a random mask at the batch's shape (dropout, noise), adds a loss of its activations, or
keeps state between batches would see the padding: such a model needs Keras fit
(`train.epoch_in_graph=false`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

# One epoch over the windows at `starts` (in that order), gathered from `rows`.
EpochGraph = Callable[[Any, np.ndarray], None]

# One step on a batch of windows, given which are real (1.0) and which padding (0.0), (batch, 1).
Step = Callable[[Any, Any], None]


class _NoRetracingWarning(logging.Filter):
    """TensorFlow warns of "retracing" when many tf.functions defined at one place in the code
    trace: here every architecture and data shape has its own `run`, traced once and kept
    (graph_cache), so a sweep over model.hidden would warn on every job after the fifth.
    Only the epoch graph's warning goes: any other function's is a real one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "epoch_graph" in message)


_NO_RETRACING_WARNING = _NoRetracingWarning()


def epoch_graph(
    model: keras.Model, length: int, n_windows: int, batch_size: int, jit: bool, *, training: bool
) -> tuple[EpochGraph, Any]:
    """Runs the model's training (or validation) step on every batch of `n_windows` windows.

    The rows are an argument, not a captured constant, so the next fit's data reuses the graph.
    Returns the epoch function and the tf.function behind it (for its tracing count).
    """
    import tensorflow as tf

    logging.getLogger("tensorflow").addFilter(_NO_RETRACING_WARNING)  # added once, however called
    batches, batch_size = batching(n_windows, batch_size, training)
    step = (_train_step if training else _test_step)(model)
    offsets = tf.range(length, dtype=tf.int32)[None, :]

    @tf.function(jit_compile=jit)
    def run(rows: tf.Tensor, starts: tf.Tensor, real: tf.Tensor) -> None:
        starts = tf.reshape(starts, (batches, batch_size))
        real = tf.reshape(real, (batches, batch_size))
        for i in tf.range(batches):
            # (batch, 1): broadcast over a window's steps, as each step's error is a value
            step(tf.gather(rows, starts[i][:, None] + offsets), real[i][:, None])

    def call(rows: tf.Tensor, starts: np.ndarray) -> None:
        run(rows, *padded(starts, batches * batch_size))

    return call, run


def batching(n_windows: int, batch_size: int, training: bool) -> tuple[int, int]:
    """How many batches an epoch over `n_windows` runs, and their size.

    A training batch's size is a hyperparameter (a gradient step each); a validation batch's
    is not, so validation splits its windows evenly and pads fewer windows than it has
    batches: 4,097 windows at 4,096 are two batches of 2,049 (one padding window), not one of
    4,096 and one of a single window padded with 4,095.
    """
    batches = math.ceil(n_windows / batch_size)
    if training:
        return batches, min(batch_size, n_windows)
    return batches, math.ceil(n_windows / batches)


def padded(starts: np.ndarray, size: int) -> tuple[Any, Any]:
    """The starts, padded to `size` with the first window's, and which of them are real."""
    import tensorflow as tf

    real = np.arange(size) < len(starts)
    starts = np.concatenate([starts, np.repeat(starts[:1], size - len(starts))])
    return tf.constant(starts, dtype=tf.int32), tf.constant(real, dtype=tf.float32)


def _weights(real: Any) -> tuple[Any, Any]:
    """The loss's per-window weights (mean over the real windows) and the real windows' count."""
    count = keras.ops.sum(real)
    return real * (keras.ops.cast(keras.ops.size(real), real.dtype) / count), count


def _loss_tracker(model: keras.Model) -> keras.metrics.Metric:
    return next(metric for metric in model.metrics if metric.name == "loss")


def _train_step(model: keras.Model) -> Step:
    import tensorflow as tf

    tracker = _loss_tracker(model)

    def step(windows: tf.Tensor, real: tf.Tensor) -> None:
        loss_weights, count = _weights(real)
        with tf.GradientTape() as tape:
            reconstructed = model(windows, training=True)
            loss = model.compute_loss(windows, windows, reconstructed, loss_weights, training=True)
            tracker.update_state(loss, sample_weight=count)
            loss = model.optimizer.scale_loss(loss)
        weights = model.trainable_weights
        model.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        model.compute_metrics(windows, windows, reconstructed, sample_weight=real)

    return step


def _test_step(model: keras.Model) -> Step:
    tracker = _loss_tracker(model)

    def step(windows: Any, real: Any) -> None:
        loss_weights, count = _weights(real)
        reconstructed = model(windows, training=False)
        loss = model.compute_loss(windows, windows, reconstructed, loss_weights, training=False)
        tracker.update_state(loss, sample_weight=count)
        model.compute_metrics(windows, windows, reconstructed, sample_weight=real)

    return step
