"""The Keras layers of the sparse forms (sparse_fronts.py): the L1 on their weights and the
seed's per-(time step, channel) gate. Registered with Keras: a saved network names them.

Sparsity that engages (`model.l1_method=proximal`, the default): the penalty is `l1` times
the *mean* magnitude of the layer's weights (scaled by the layer's size, so one L1 range
serves 5 channels and 500), applied as a soft-threshold step after each Adam step
(models.ProximalAdam) rather than as a gradient: Adam on an L1 gradient makes weights hover
around zero, the threshold makes them exactly zero. `penalty` is the seed's L1 unchanged.
"""

from __future__ import annotations

import keras
import numpy as np


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
