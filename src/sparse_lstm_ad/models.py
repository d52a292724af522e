"""The LSTM autoencoders: standard, sparse gate (the seed's form), sparse projection (the paper's).

All three reconstruct a window of shape (length, channels) from a code of `hidden` units. The
sparse forms (sparse_fronts.py) put an L1-penalised layer between the input and the LSTM
encoder; the decoder still reconstructs every input channel. With `model.l1_method=proximal`
(the default) the optimizer is `ProximalAdam`: Adam, then the L1's soft-threshold step.
"""

from __future__ import annotations

import keras

from sparse_lstm_ad.config import ModelConfig
from sparse_lstm_ad.sparse_fronts import network_front, sparse_front
from sparse_lstm_ad.sparse_layers import SparseL1


@keras.saving.register_keras_serializable(package="sparse_lstm_ad")
class ProximalAdam(keras.optimizers.Adam):
    """Adam, then on each L1-penalised weight the proximal step of its penalty.

    The soft threshold uses Adam's own per-weight step (alpha / (sqrt(v) + eps)), so the pair
    is a proximal gradient step in Adam's metric: a weight whose reconstruction gradient stays
    below its L1 coefficient goes to exactly zero and stays there.
    """

    def __init__(self, l1_by_path: dict[str, float] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.l1_by_path = dict(l1_by_path or {})
        self._index_by_path: dict[str, int] = {}
        self._l1_by_index: dict[int, keras.Variable] = {}

    def build(self, variables: list[keras.Variable]) -> None:
        super().build(variables)
        # update_step may get the backend's variable, which has no path: match by index.
        self._index_by_path = {
            v.path: self._get_variable_index(v) for v in variables if v.path in self.l1_by_path
        }
        # Variables, as the learning rate is: a compiled step serves any L1 (graph_cache).
        self._l1_by_index = {
            index: self.add_variable((), keras.initializers.Constant(self.l1_by_path[path]))
            for path, index in self._index_by_path.items()
        }

    def set_l1(self, l1_by_path: dict[str, float]) -> None:
        """New per-weight coefficients for the same weights (after `build`)."""
        self.l1_by_path = dict(l1_by_path)
        for path, value in self.l1_by_path.items():
            self._l1_by_index[self._index_by_path[path]].assign(value)

    def update_step(self, gradient: object, variable: keras.Variable, learning_rate: object):
        super().update_step(gradient, variable, learning_rate)
        l1 = self._l1_by_index.get(self._get_variable_index(variable))
        if l1 is None:
            return
        ops, dtype = keras.ops, variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        alpha = (
            ops.cast(learning_rate, dtype)
            * ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), step))
            / (1 - ops.power(ops.cast(self.beta_1, dtype), step))
        )
        velocity = self._velocities[self._get_variable_index(variable)]
        threshold = alpha * ops.cast(l1, dtype) / (ops.sqrt(velocity) + self.epsilon)
        self.assign(variable, ops.sign(variable) * ops.relu(ops.abs(variable) - threshold))

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "l1_by_path": self.l1_by_path}


def proximal_l1(model: keras.Model) -> dict[str, float]:
    """Variable path -> per-weight L1 coefficient, for the weights penalised proximally."""
    return {
        weight.path: weight.regularizer.per_weight(weight)
        for weight in model.trainable_weights
        if isinstance(getattr(weight, "regularizer", None), SparseL1)
        and weight.regularizer.proximal
    }


def hidden_units(cfg: ModelConfig, n_channels: int) -> int:
    """`model.hidden`, or the rule: twice the channels, at least 16 and at most 64."""
    return cfg.hidden or min(64, max(16, 2 * n_channels))


def build_model(cfg: ModelConfig, window: int, n_channels: int) -> keras.Model:
    """The autoencoder for windows of shape (window, n_channels)."""
    inputs = keras.Input(shape=(window, n_channels), name="window")
    x = inputs
    if (front := sparse_front(cfg.kind)) is not None:
        x = front.layer(cfg, n_channels)(x)
    hidden = hidden_units(cfg, n_channels)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        x = keras.layers.LSTM(hidden, return_sequences=not last, name=f"encoder_{i}")(x)
    x = keras.layers.RepeatVector(window, name="repeat_code")(x)
    for i in range(cfg.layers):
        x = keras.layers.LSTM(hidden, return_sequences=True, name=f"decoder_{i}")(x)
    outputs = keras.layers.Dense(n_channels, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"lstm_ae_{cfg.kind}")


def network_kind(model: keras.Model) -> str:
    """The `model.kind` of a built or loaded network: its sparse layer says."""
    front = network_front(model)
    return "standard" if front is None else front.kind


def copy_l1(source: keras.Model, target: keras.Model) -> None:
    """Give `target` (the same architecture) the L1 coefficients of `source`'s sparse layer."""
    coefficients = {
        weight.path: weight.regularizer.l1
        for weight in source.trainable_weights
        if isinstance(getattr(weight, "regularizer", None), SparseL1)
    }
    for weight in target.trainable_weights:
        if weight.path in coefficients:
            weight.regularizer.set_l1(coefficients[weight.path])
    if isinstance(target.optimizer, ProximalAdam):
        target.optimizer.set_l1(proximal_l1(target))
