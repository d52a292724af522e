"""The sparse forms of the autoencoder, one per sparse `model.kind`: the L1-penalised layer
between the input and the LSTM encoder, and what its weights say.

- `sparse_gate` (the seed's form): one weight per (time step, channel), weights (window, channels);
- `sparse_projection` (the paper's): a Dense layer mixing the channels at each time step,
  weights (channels, units).

Each is a `SparseFront`; `FRONTS` is the one place a kind is looked up: models.py builds
through it, detectors/network.py reads a fitted layer through it. The layer is named as its
kind, so a loaded network says which form it is. No Keras at import: the baselines' runs
import this module through the detector registry and never load TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sparse_lstm_ad.config import L1Method, ModelConfig

if TYPE_CHECKING:
    import keras

# A direction passing less than this share of the strongest one's gain carries nothing.
RANK_TOLERANCE = 1e-3


class SparseFront(Protocol):
    @property
    def kind(self) -> str:
        """The `model.kind`, and the layer's name in the network."""
        ...

    @property
    def keys(self) -> tuple[str, ...]:
        """The model keys only this form reads."""
        ...

    @property
    def axes(self) -> tuple[str, str]:
        """What the rows and the columns of its weights are."""
        ...

    def layer(self, cfg: ModelConfig, n_channels: int) -> keras.layers.Layer: ...

    def weights(self, model: Any) -> np.ndarray:
        """Its layer's weights in a built or loaded network."""
        ...

    def channel_mass(self, weights: np.ndarray) -> np.ndarray:
        """How much of each input channel the layer lets through (L1 mass per channel)."""
        ...

    def defect(self, weights: np.ndarray) -> str | None:
        """What is wrong with the fitted layer, seen without labels; None when nothing is."""
        ...

    def figures(self, weights: np.ndarray) -> dict[str, float]:
        """What a run logs of the fitted layer beside its channel mass."""
        ...


def _closed(mass: np.ndarray) -> str | None:
    return None if mass.any() else "closed (every weight 0, no channel selected)"


@dataclass(frozen=True)
class Gate:
    kind: str = "sparse_gate"
    keys: tuple[str, ...] = ("gate_init", "gate_activation")
    axes: tuple[str, str] = ("time step", "channel")

    def layer(self, cfg: ModelConfig, n_channels: int) -> keras.layers.Layer:
        from sparse_lstm_ad.sparse_layers import FeatureGate

        return FeatureGate(
            l1=cfg.l1,
            initializer=cfg.gate_init.value,
            activation=cfg.gate_activation.value,
            proximal=cfg.l1_method == L1Method.proximal,
            name=self.kind,
        )

    def weights(self, model: Any) -> np.ndarray:
        return np.asarray(model.get_layer(self.kind).gate.numpy())

    def channel_mass(self, weights: np.ndarray) -> np.ndarray:
        return np.abs(weights).sum(axis=0)

    def defect(self, weights: np.ndarray) -> str | None:
        return _closed(self.channel_mass(weights))

    def figures(self, weights: np.ndarray) -> dict[str, float]:
        return {}


@dataclass(frozen=True)
class Projection:
    kind: str = "sparse_projection"
    keys: tuple[str, ...] = ("projection_units",)
    axes: tuple[str, str] = ("channel", "unit")

    def layer(self, cfg: ModelConfig, n_channels: int) -> keras.layers.Layer:
        import keras

        from sparse_lstm_ad.sparse_layers import SparseL1

        # Dense on a 3-D tensor acts per time step: each reduced unit mixes a few channels.
        return keras.layers.Dense(
            projection_width(cfg, n_channels),
            use_bias=False,
            kernel_regularizer=SparseL1(cfg.l1, cfg.l1_method == L1Method.proximal),
            name=self.kind,
        )

    def weights(self, model: Any) -> np.ndarray:
        return np.asarray(model.get_layer(self.kind).kernel.numpy())

    def channel_mass(self, weights: np.ndarray) -> np.ndarray:
        return np.abs(weights).sum(axis=1)

    def defect(self, weights: np.ndarray) -> str | None:
        """Closed, or collapsed to one direction: the network then sees one mixed signal,
        and which one varies from seed to seed."""
        if closed := _closed(self.channel_mass(weights)):
            return closed
        if min(weights.shape) >= 2 and (rank := layer_rank(weights)) < 2:
            return f"collapsed to rank {rank} (one direction of the channels passes)"
        return None

    def figures(self, weights: np.ndarray) -> dict[str, float]:
        return {"sparse_rank": float(layer_rank(weights))}


FRONTS: dict[str, SparseFront] = {front.kind: front for front in (Gate(), Projection())}


def sparse_front(kind: str) -> SparseFront | None:
    """The sparse form of `model.kind`; None for a network without a sparse layer."""
    return FRONTS.get(kind)


def network_front(model: Any) -> SparseFront | None:
    """The sparse form of a built or loaded network: its layer's name says."""
    names = {layer.name for layer in model.layers}
    return next((front for kind, front in FRONTS.items() if kind in names), None)


def sparse_weights(model: Any) -> np.ndarray | None:
    """The sparse layer's weights; None for a network without one."""
    front = network_front(model)
    return None if front is None else front.weights(model)


def projection_width(cfg: ModelConfig, n_channels: int) -> int:
    return cfg.projection_units or max(1, math.ceil(n_channels / 2))


def layer_rank(weights: np.ndarray) -> int:
    """How many independent directions of the input the sparse layer passes."""
    return int(np.linalg.matrix_rank(weights, rtol=RANK_TOLERANCE))


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
