"""Compiled graphs kept per process: a fit's epochs and a model's scoring, traced once per shape.

Tracing and XLA-compiling an epoch costs seconds, more than a whole fit on small data, and the
jobs of a sweep in one worker differ in seed, L1 and learning rate, not in shapes. So the
graphs are traced for a private copy of the model (a `Trainer`), kept per process under what
they depend on (the architecture, the data's shapes, the batch sizes, XLA), and each fit loads
its own model's weights and hyperparameters into that copy, trains it, and copies the weights
back: the model a fit is handed is the one it trains, and no two fits share a model.

Scoring is the same story with less state: one graph per architecture, a pure function of the
weights it is handed (Keras's `stateless_call`), so any number of models share it safely.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from sparse_lstm_ad.config import TrainConfig
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.epoch_graph import EpochGraph, epoch_graph

CACHE_SIZE = 4  # trainers kept per process: a sweep over a few model kinds keeps each warm


def compile_model(model: keras.Model, learning_rate: float) -> None:
    from sparse_lstm_ad.models import ProximalAdam, proximal_l1

    # `loss` includes the sparse layer's L1 term; the `mse` metric is the reconstruction alone,
    # weighted so that the padding of a last batch counts for nothing (epoch_graph). Without
    # sample weights (Keras fit, evaluate) it is the plain metric.
    model.compile(
        optimizer=ProximalAdam(proximal_l1(model), learning_rate=learning_rate),
        loss="mse",
        weighted_metrics=[keras.metrics.MeanSquaredError(name="mse")],
    )


@dataclass(frozen=True)
class WindowFeed:
    """Windows as the rows beneath them plus start rows: window i is rows[starts[i]:+length]."""

    rows: Any  # tf.Tensor (n_rows, k) float32, converted once per fit
    starts: np.ndarray  # (n_windows,) int32
    length: int

    @classmethod
    def of(cls, windows: Windows) -> WindowFeed:
        """The rows go to the graph once; the (n_windows, length, k) block never exists."""
        import tensorflow as tf

        rows = tf.convert_to_tensor(windows.rows, dtype=tf.float32)
        return cls(rows, windows.starts.astype(np.int32), windows.length)


@dataclass
class Trainer:
    """A compiled copy of a model and its training and validation epochs."""

    model: keras.Model
    train_epoch: EpochGraph
    val_epoch: EpochGraph
    graphs: tuple[Any, ...]  # the tf.functions, for their tracing counts

    def load(self, source: keras.Model, learning_rate: float) -> None:
        """Start a fit afresh from `source`'s weights, L1 and the given learning rate."""
        from sparse_lstm_ad.models import copy_l1

        self.model.set_weights(source.get_weights())
        optimizer = self.model.optimizer
        for variable in optimizer.variables:  # Adam's moments, its step count, lr and L1
            variable.assign(keras.ops.zeros_like(variable))
        optimizer.learning_rate = learning_rate
        copy_l1(source, self.model)
        self.model.stop_training = False

    @property
    def traces(self) -> int:
        """How often the graphs were traced: unchanged by a fit that reused them."""
        return sum(graph.experimental_get_tracing_count() for graph in self.graphs)


_TRAINERS: OrderedDict[str, Trainer] = OrderedDict()


def trainer_for(
    model: keras.Model, cfg: TrainConfig, train: WindowFeed, val: WindowFeed, jit_compile: bool
) -> Trainer:
    """The trainer for this model's architecture and these shapes, traced on first use."""
    key = _key(model, cfg, train, val, jit_compile)
    return _kept(_TRAINERS, key, lambda: _new_trainer(model, cfg, train, val, jit_compile))


def _kept(cache: OrderedDict[str, Any], key: str, make: Callable[[], Any]) -> Any:
    """cache[key], made on first use; the least recently used beyond CACHE_SIZE forgotten."""
    value = cache.pop(key, None) or make()
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _private_copy(model: keras.Model) -> keras.Model:
    """A clone of the model's architecture, its own variables.

    Cloning draws initializer seeds from Python's RNG: it is put back, so that a job runs on
    the same random stream whether or not it found its graphs kept.
    """
    state = random.getstate()
    copy = keras.models.clone_model(model)
    random.setstate(state)
    return copy


def clear() -> None:
    """Forget every graph (the next fit and the next scoring trace and compile again)."""
    _TRAINERS.clear()
    _SCORERS.clear()


_SCORERS: OrderedDict[str, Any] = OrderedDict()


def scoring_graph(model: keras.Model) -> Callable[[list, list, Any], Any]:
    """(trainable values, non-trainable values, windows) -> reconstructions, per architecture."""
    import tensorflow as tf

    def make() -> Any:
        copy = _private_copy(model)

        def specs(variables: list) -> list:
            return [tf.TensorSpec(v.shape, v.dtype) for v in variables]

        signature = [
            specs(copy.trainable_variables),
            specs(copy.non_trainable_variables),
            tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
        ]

        def reconstruct(trainable: list, non_trainable: list, windows: Any) -> Any:
            return copy.stateless_call(trainable, non_trainable, windows, training=False)[0]

        return tf.function(reconstruct, input_signature=signature)

    return _kept(_SCORERS, architecture(model), make)


def _key(
    model: keras.Model, cfg: TrainConfig, train: WindowFeed, val: WindowFeed, jit_compile: bool
) -> str:
    shapes = [(*feed.rows.shape, len(feed.starts), feed.length) for feed in (train, val)]
    graph = (cfg.batch_size, cfg.eval_batch_size, jit_compile, shapes)
    return json.dumps([architecture(model), graph], sort_keys=True, default=str)


def architecture(model: keras.Model) -> str:
    """What a graph of the model depends on: its config without the L1 values."""
    return json.dumps(_without_l1(model.get_config()), sort_keys=True, default=str)


def _without_l1(config: Any) -> Any:
    """A model config minus its L1 values, which the graphs read from variables."""
    if isinstance(config, dict):
        return {k: _without_l1(v) for k, v in config.items() if k != "l1"}
    if isinstance(config, list):
        return [_without_l1(v) for v in config]
    return config


def _new_trainer(
    model: keras.Model, cfg: TrainConfig, train: WindowFeed, val: WindowFeed, jit_compile: bool
) -> Trainer:
    copy = _private_copy(model)
    compile_model(copy, cfg.learning_rate)
    # Variables must exist before tracing: a compiled loop body cannot create them.
    copy.optimizer.build(copy.trainable_variables)
    train_epoch, train_graph = epoch_graph(
        copy, train.length, len(train.starts), cfg.batch_size, jit_compile, training=True
    )
    val_epoch, val_graph = epoch_graph(
        copy, val.length, len(val.starts), cfg.eval_batch_size, jit_compile, training=False
    )
    return Trainer(copy, train_epoch, val_epoch, (train_graph, val_graph))
