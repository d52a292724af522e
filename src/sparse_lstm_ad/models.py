"""The LSTM autoencoders: standard, sparse gate (the seed's form), sparse projection (the paper's).

All three reconstruct a window of shape (length, channels) from a code of `hidden` units. The
sparse forms put an L1-penalised layer between the input and the LSTM encoder; the decoder
still reconstructs every input channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from sparse_lstm_ad.config import ModelConfig, ModelKind

GATE_LAYER = "sparse_gate"
PROJECTION_LAYER = "sparse_projection"


@keras.saving.register_keras_serializable(package="sparse_lstm_ad")
class FeatureGate(keras.layers.Layer):
    """Multiplies each (time step, channel) input by its own trainable, L1-penalised weight.

    Equivalent to the seed's flatten -> element-wise gate -> reshape, without the reshapes.
    """

    def __init__(
        self,
        l1: float = 1e-3,
        initializer: str = "ones",
        activation: str = "linear",
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.l1 = l1
        self.initializer = initializer
        self.activation_name = activation
        self.activation = keras.activations.get(activation)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.gate = self.add_weight(
            name="gate",
            shape=tuple(input_shape[1:]),
            initializer=self.initializer,
            regularizer=keras.regularizers.L1(self.l1),
        )

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        return self.activation(inputs * self.gate)

    def get_config(self) -> dict[str, object]:
        config = super().get_config()
        config.update(l1=self.l1, initializer=self.initializer, activation=self.activation_name)
        return config


def projection_width(cfg: ModelConfig, n_channels: int) -> int:
    return cfg.projection_units or max(1, math.ceil(n_channels / 2))


def build_model(cfg: ModelConfig, window: int, n_channels: int) -> keras.Model:
    """The autoencoder for windows of shape (window, n_channels)."""
    inputs = keras.Input(shape=(window, n_channels), name="window")
    x = inputs
    if cfg.kind == ModelKind.sparse_gate:
        x = FeatureGate(
            l1=cfg.l1,
            initializer=cfg.gate_init.value,
            activation=cfg.gate_activation.value,
            name=GATE_LAYER,
        )(x)
    elif cfg.kind == ModelKind.sparse_projection:
        # Dense on a 3-D tensor acts per time step: each reduced unit mixes a few channels.
        x = keras.layers.Dense(
            projection_width(cfg, n_channels),
            use_bias=False,
            kernel_regularizer=keras.regularizers.L1(cfg.l1),
            name=PROJECTION_LAYER,
        )(x)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        x = keras.layers.LSTM(cfg.hidden, return_sequences=not last, name=f"encoder_{i}")(x)
    x = keras.layers.RepeatVector(window, name="repeat_code")(x)
    for i in range(cfg.layers):
        x = keras.layers.LSTM(cfg.hidden, return_sequences=True, name=f"decoder_{i}")(x)
    outputs = keras.layers.Dense(n_channels, name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=f"lstm_ae_{cfg.kind.value}")


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


def weight_sparsity(weights: np.ndarray, tolerance: float) -> Sparsity:
    magnitudes = np.abs(weights)
    return Sparsity(
        zero_share=float(np.mean(magnitudes < tolerance)), l1_norm=float(magnitudes.sum())
    )


def channel_mass(weights: np.ndarray, kind: ModelKind) -> np.ndarray:
    """How much of each input channel the sparse layer lets through (L1 mass per channel)."""
    # A gate is (time step, channel); a projection kernel is (channel, unit).
    axis = 0 if kind == ModelKind.sparse_gate else 1
    return np.abs(weights).sum(axis=axis)
