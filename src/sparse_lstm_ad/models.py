"""The LSTM autoencoders: standard, sparse gate (the seed's form), sparse projection (the paper's).

All three reconstruct a window of shape (length, channels) from a code of `hidden` units. The
sparse forms put an L1-penalised layer between the input and the LSTM encoder; the decoder
still reconstructs every input channel.

Sparsity that engages (`model.l1_method=proximal`, the default): the penalty is `l1` times
the *mean* magnitude of the layer's weights (scaled by the layer's size, so one L1 range
serves 5 channels and 500), applied as a soft-threshold step after each Adam step
(`ProximalAdam`) rather than as a gradient: Adam on an L1 gradient makes weights hover
around zero, the threshold makes them exactly zero. `penalty` is the seed's L1 unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from sparse_lstm_ad.config import L1Method, ModelConfig

# A sparse form's layer is named as its `model.kind`.
GATE_LAYER = "sparse_gate"
PROJECTION_LAYER = "sparse_projection"


@keras.saving.register_keras_serializable(package="sparse_lstm_ad")
class SparseL1(keras.regularizers.Regularizer):
    """Proximal: `l1` x mean |w|, its value in the loss and its step the optimizer's.

    Not proximal (`model.l1_method=penalty`): the seed's `l1` x sum |w|, a gradient in the loss.
    """

    def __init__(self, l1: float, proximal: bool) -> None:
        self.l1 = float(l1)
        self.proximal = bool(proximal)
        # A variable, not a constant: a compiled graph then serves any L1 (graph_cache).
        self.coefficient = keras.Variable(self.l1, trainable=False, name="l1")

    def set_l1(self, l1: float) -> None:
        self.l1 = float(l1)
        self.coefficient.assign(self.l1)

    def __call__(self, weights: keras.KerasTensor) -> keras.KerasTensor:
        if not self.proximal:
            return self.coefficient * keras.ops.sum(keras.ops.abs(weights))
        return keras.ops.stop_gradient(self.coefficient * keras.ops.mean(keras.ops.abs(weights)))

    def per_weight(self, weights: keras.Variable) -> float:
        """The coefficient on each |w| in the loss: l1 over the number of weights."""
        return self.l1 / max(1, int(np.prod(weights.shape)))

    def get_config(self) -> dict[str, object]:
        return {"l1": self.l1, "proximal": self.proximal}


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


@keras.saving.register_keras_serializable(package="sparse_lstm_ad")
class FeatureGate(keras.layers.Layer):
    """Multiplies each (time step, channel) input by its own trainable, L1-penalised weight.

    Equivalent to the seed's flatten -> element-wise gate -> reshape, without the reshapes.
    """

    def __init__(
        self,
        l1: float,
        initializer: str,
        activation: str,
        proximal: bool = False,  # saved before the proximal step existed: the seed's penalty
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.l1 = l1
        self.proximal = proximal
        self.initializer = initializer
        self.activation_name = activation
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gate = self.add_weight(
            name="gate",
            shape=tuple(input_shape[1:]),
            initializer=self.initializer,
            regularizer=SparseL1(self.l1, self.proximal),
        )

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        return self.activation(inputs * self.gate)

    def get_config(self) -> dict[str, object]:
        config = super().get_config()
        config.update(
            l1=self.l1,
            initializer=self.initializer,
            activation=self.activation_name,
            proximal=self.proximal,
        )
        return config


def projection_width(cfg: ModelConfig, n_channels: int) -> int:
    return cfg.projection_units or max(1, math.ceil(n_channels / 2))


def build_model(cfg: ModelConfig, window: int, n_channels: int) -> keras.Model:
    """The autoencoder for windows of shape (window, n_channels)."""
    inputs = keras.Input(shape=(window, n_channels), name="window")
    x = inputs
    proximal = cfg.l1_method == L1Method.proximal
    if cfg.kind == GATE_LAYER:
        x = FeatureGate(
            l1=cfg.l1,
            initializer=cfg.gate_init.value,
            activation=cfg.gate_activation.value,
            proximal=proximal,
            name=GATE_LAYER,
        )(x)
    elif cfg.kind == PROJECTION_LAYER:
        # Dense on a 3-D tensor acts per time step: each reduced unit mixes a few channels.
        x = keras.layers.Dense(
            projection_width(cfg, n_channels),
            use_bias=False,
            kernel_regularizer=SparseL1(cfg.l1, proximal),
            name=PROJECTION_LAYER,
        )(x)
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
    names = {layer.name for layer in model.layers}
    return next((kind for kind in (GATE_LAYER, PROJECTION_LAYER) if kind in names), "standard")


def sparse_weights(model: keras.Model) -> np.ndarray | None:
    """The sparse layer's weights: the gate (window, channels) or the kernel (channels, units)."""
    names = {layer.name for layer in model.layers}
    if GATE_LAYER in names:
        return keras.ops.convert_to_numpy(model.get_layer(GATE_LAYER).gate)
    if PROJECTION_LAYER in names:
        return keras.ops.convert_to_numpy(model.get_layer(PROJECTION_LAYER).kernel)
    return None


@dataclass(frozen=True)
class Sparsity:
    zero_share: float  # share of weights whose magnitude is below the tolerance
    l1_norm: float
    exact_zero_share: float = 0.0  # share of weights that are exactly 0.0


def weight_sparsity(weights: np.ndarray, tolerance: float) -> Sparsity:
    magnitudes = np.abs(weights)
    return Sparsity(
        zero_share=float(np.mean(magnitudes < tolerance)),
        l1_norm=float(magnitudes.sum()),
        exact_zero_share=float(np.mean(magnitudes == 0.0)),
    )


def channel_mass(weights: np.ndarray, kind: str) -> np.ndarray:
    """How much of each input channel the sparse layer lets through (L1 mass per channel)."""
    # A gate is (time step, channel); a projection kernel is (channel, unit).
    axis = 0 if kind == GATE_LAYER else 1
    return np.abs(weights).sum(axis=axis)


# A direction passing less than this share of the strongest one's gain carries nothing.
RANK_TOLERANCE = 1e-3


def layer_rank(weights: np.ndarray) -> int:
    """How many independent directions of the input the sparse layer passes."""
    return int(np.linalg.matrix_rank(weights, rtol=RANK_TOLERANCE))


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
