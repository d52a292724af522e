"""Every model type builds, trains a step, and survives a .keras save/load unchanged."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from sparse_lstm_ad.config import L1Method, ModelConfig, TrainConfig
from sparse_lstm_ad.fitting import StoppedBy, TrainingDiverged, raise_if_diverged
from sparse_lstm_ad.models import build_model
from sparse_lstm_ad.sparse_fronts import FRONTS, projection_width, sparse_weights, weight_sparsity
from sparse_lstm_ad.sparse_layers import FeatureGate
from sparse_lstm_ad.training import fit_autoencoder
from tests.conftest import as_windows

WINDOW, CHANNELS = 6, 4


def _windows(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, WINDOW, CHANNELS)).astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "layers"),
    [("standard", 2), ("sparse_gate", 1), ("sparse_projection", 2)],
)
def test_build_train_and_round_trip(kind: str, layers: int, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(kind=kind, hidden=3, layers=layers), WINDOW, CHANNELS)
    x = _windows()
    fit = fit_autoencoder(
        model, as_windows(x[:48]), as_windows(x[48:]), TrainConfig(epochs=1, batch_size=16)
    )
    assert fit.epochs_run == 1 and np.isfinite(fit.history["loss"][0])
    assert model.predict(x, verbose=0).shape == x.shape

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_sparse_layers_expose_their_weights() -> None:
    gate = build_model(ModelConfig(kind="sparse_gate"), WINDOW, CHANNELS)
    assert sparse_weights(gate).shape == (WINDOW, CHANNELS)
    np.testing.assert_array_equal(sparse_weights(gate), 1.0)  # gates start open
    projection = build_model(ModelConfig(kind="sparse_projection"), WINDOW, CHANNELS)
    assert sparse_weights(projection).shape == (CHANNELS, projection_width(ModelConfig(), 4))
    assert sparse_weights(build_model(ModelConfig(), WINDOW, CHANNELS)) is None


def test_loss_includes_l1_but_mse_does_not() -> None:
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(kind="sparse_gate", l1=0.1, l1_method=L1Method.penalty)
    model = build_model(cfg, WINDOW, CHANNELS)
    x = _windows()
    fit = fit_autoencoder(
        model, as_windows(x[:48]), as_windows(x[48:]), TrainConfig(epochs=1, batch_size=48)
    )
    # All gates start at 1: the seed's L1 term at the start is 0.1 * 24 = 2.4, far above any MSE.
    assert fit.history["loss"][0] - fit.history["mse"][0] > 1.0


def test_proximal_loss_holds_the_mean_penalty_of_the_weights() -> None:
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(kind="sparse_gate", l1=2.0), WINDOW, CHANNELS)
    x = _windows()
    fit = fit_autoencoder(
        model, as_windows(x[:48]), as_windows(x[48:]), TrainConfig(epochs=1, batch_size=48)
    )
    penalty = 2.0 * np.abs(sparse_weights(model)).mean()
    assert fit.history["val_loss"][0] - fit.history["val_mse"][0] == pytest.approx(penalty, 1e-4)


def test_weight_sparsity_on_a_hand_made_gate() -> None:
    gate = np.array([[0.0, 0.5, -0.001], [1.0, -0.02, 0.009]])
    sparsity = weight_sparsity(gate, tolerance=0.01)
    assert sparsity.zero_share == pytest.approx(3 / 6)  # 0.0, -0.001, 0.009
    assert sparsity.l1_norm == pytest.approx(0.0 + 0.5 + 0.001 + 1.0 + 0.02 + 0.009)


def test_channel_mass_per_layer_kind() -> None:
    gate = np.array([[1.0, -2.0], [3.0, 0.0]])  # (time step, channel)
    np.testing.assert_allclose(FRONTS["sparse_gate"].channel_mass(gate), [4.0, 2.0])
    kernel = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]])  # (channel, unit)
    np.testing.assert_allclose(FRONTS["sparse_projection"].channel_mass(kernel), [3.5, 3.0])


def test_gate_config_round_trips() -> None:
    layer = FeatureGate(l1=0.5, initializer="random_uniform", activation="relu")
    clone = FeatureGate.from_config(layer.get_config())
    assert (clone.l1, clone.initializer, clone.activation_name) == (0.5, "random_uniform", "relu")


def test_non_finite_loss_stops_training_with_the_reason() -> None:
    model = build_model(ModelConfig(), WINDOW, CHANNELS)
    x = _windows()
    x[0, 0, 0] = np.nan
    fit = fit_autoencoder(
        model, as_windows(x[:48]), as_windows(x[48:]), TrainConfig(epochs=3, batch_size=16)
    )
    assert fit.stopped_by == StoppedBy.diverged
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        raise_if_diverged(fit)


@pytest.mark.parametrize("kind", ["standard", "sparse_gate", "sparse_projection"])
def test_reconstructor_equals_predict_for_any_batch(kind: str) -> None:
    from sparse_lstm_ad.training import reconstructor

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(kind=kind, hidden=3, layers=2), WINDOW, CHANNELS)
    reconstruct = reconstructor(model)
    x = _windows(50).astype(np.float64)  # the pipeline's windows are float64 views
    expected = model.predict(x, verbose=0)
    for batch in (x, x[:7], x[7:]):  # one traced graph serves every batch size
        got = reconstruct(batch)
        assert got.dtype == np.float32
        # To float32 rounding, not to the bit: predict splits batches of 32 itself, and how
        # the kernels block a batch depends on the CPU (equal bits on one machine, 2e-6 apart
        # on an AMD EPYC).
        np.testing.assert_allclose(got, model.predict(batch, verbose=0), rtol=1e-5, atol=1e-7)
    # Split differently, the same windows agree to rounding only: the kernels block by batch.
    split = np.concatenate([reconstruct(x[:7]), reconstruct(x[7:])])
    np.testing.assert_allclose(split, expected, rtol=1e-5, atol=1e-6)
    assert reconstruct(x[:0]).shape == (0, WINDOW, CHANNELS)


def test_models_of_one_architecture_share_a_scoring_graph_safely() -> None:
    from sparse_lstm_ad import graph_cache
    from sparse_lstm_ad.training import reconstructor

    graph_cache.clear()
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(kind="sparse_gate", hidden=3)
    first, second = (build_model(cfg, WINDOW, CHANNELS) for _ in range(2))
    first_reconstruct, second_reconstruct = reconstructor(first), reconstructor(second)
    x = _windows(20)
    # Interleaved calls: each reconstructor reads its own model's weights.
    for _ in range(2):
        for model, reconstruct in ((first, first_reconstruct), (second, second_reconstruct)):
            expected = model.predict(x, verbose=0)
            np.testing.assert_allclose(reconstruct(x), expected, rtol=1e-5, atol=1e-7)
    (graph,) = graph_cache._SCORERS.values()
    assert graph.experimental_get_tracing_count() == 1
