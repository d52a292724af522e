"""The compiled-epoch training path: same figures as Keras fit, no window copies, repeatable."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sparse_lstm_ad import graph_cache
from sparse_lstm_ad.config import ModelConfig, TrainConfig
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.epoch_graph import batching
from sparse_lstm_ad.models import build_model
from sparse_lstm_ad.sparse_fronts import sparse_weights
from sparse_lstm_ad.training import fit_autoencoder, make_repeatable, use_xla

WINDOW, CHANNELS = 5, 3


def _series(n: int = 120) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, CHANNELS))


@pytest.mark.parametrize("stride", [1, 3])
def test_what_the_epoch_graphs_gather_is_the_windows_view(stride: int) -> None:
    series = _series()
    windows = Windows(series, WINDOW, stride)
    feed = graph_cache.WindowFeed.of(windows)
    assert np.shares_memory(windows.view, series) and len(windows) == len(feed.starts)
    gathered = np.asarray(feed.rows)[feed.starts[:, None] + np.arange(WINDOW)]
    np.testing.assert_allclose(gathered, windows.view, rtol=1e-6)


def _fit(cfg: TrainConfig, kind: str = "sparse_gate") -> dict[str, list[float]]:
    return _fit_model(cfg, kind)[1]


def _fit_model(
    cfg: TrainConfig, kind: str = "sparse_gate"
) -> tuple[keras.Model, dict[str, list[float]]]:
    keras.utils.set_random_seed(0)
    series = _series()
    model = build_model(ModelConfig(kind=kind, hidden=3), WINDOW, CHANNELS)
    # 96 training windows at batch 40: two full batches and a last one of 16 (padded to 40 in
    # the compiled epoch); 16 validation windows at batch 7: three of 6, the last padded by 2.
    fit = fit_autoencoder(model, Windows(series[:100], WINDOW), Windows(series[100:], WINDOW), cfg)
    return model, fit.history


@pytest.mark.parametrize("jit_compile", [True, False])
def test_compiled_epochs_match_keras_fit(jit_compile: bool) -> None:
    base = {"epochs": 2, "batch_size": 40, "eval_batch_size": 7}
    keras_model, keras_fit = _fit_model(TrainConfig(**base, epoch_in_graph=False))
    graph_cache.clear()
    model, in_graph = _fit_model(TrainConfig(**base, jit_compile=jit_compile))
    for key in ("loss", "mse", "val_loss", "val_mse"):
        np.testing.assert_allclose(in_graph[key], keras_fit[key], rtol=1e-5, err_msg=key)
    # The padding moved no weight: the trained weights are Keras fit's.
    for ours, theirs in zip(model.get_weights(), keras_model.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    # One graph for the training epoch, one for validation, each traced once: the last,
    # smaller batch is padded into the same loop, not traced at its own shape.
    (trainer,) = graph_cache._TRAINERS.values()
    assert trainer.traces == 2


def test_compiled_epochs_repeat_to_the_bit_and_shuffle() -> None:
    cfg = TrainConfig(epochs=2, batch_size=32, shuffle=True)
    first, second = _fit(cfg), _fit(cfg)
    assert first["val_loss"] == second["val_loss"] and first["loss"] == second["loss"]
    assert first["loss"] != _fit(TrainConfig(epochs=2, batch_size=32))["loss"]


def _job(seed: int, l1: float, cfg: TrainConfig) -> tuple[keras.Model, dict[str, list[float]]]:
    """What a sweep's job does in its worker: seed, build, fit."""
    make_repeatable(seed, deterministic=True)
    series = np.random.default_rng(seed).normal(size=(120, CHANNELS))
    model = build_model(ModelConfig(kind="sparse_gate", hidden=3, l1=l1), WINDOW, CHANNELS)
    fit = fit_autoencoder(model, Windows(series[:100], WINDOW), Windows(series[100:], WINDOW), cfg)
    return model, fit.history


def test_compiled_graphs_are_reused_by_the_next_job_of_a_worker() -> None:
    cfg = TrainConfig(epochs=3, batch_size=32, jit_compile=True)
    graph_cache.clear()
    first_model, _first = _job(0, l1=1.0, cfg=cfg)
    (trainer,) = graph_cache._TRAINERS.values()
    traced = trainer.traces
    gate_after_first = sparse_weights(first_model).copy()
    second_model, second = _job(1, l1=0.01, cfg=cfg)
    # The same trainer, not traced again, though seed, data and L1 changed.
    assert list(graph_cache._TRAINERS.values()) == [trainer] and trainer.traces == traced
    # The first job's model is its own: the second fit did not touch it.
    np.testing.assert_array_equal(sparse_weights(first_model), gate_after_first)
    assert second_model is not trainer.model and first_model is not trainer.model
    # And the second job computes what it computes in a fresh worker, to the bit.
    graph_cache.clear()
    fresh_model, fresh = _job(1, l1=0.01, cfg=cfg)
    assert second == {**fresh, "epoch_seconds": second["epoch_seconds"]}
    for reused, alone in zip(second_model.get_weights(), fresh_model.get_weights(), strict=True):
        np.testing.assert_array_equal(reused, alone)


def test_tensorflow_s_retracing_warning_is_dropped_once_epoch_graphs_are_built() -> None:
    import logging

    _job(0, l1=0.1, cfg=TrainConfig(epochs=1, batch_size=32, jit_compile=False))  # a fit

    def passes(message: str) -> bool:  # the logger's own filters, whatever its level
        record = logging.LogRecord("tensorflow", logging.WARNING, "", 0, message, None, None)
        return bool(logging.getLogger("tensorflow").filter(record))

    epoch = "<function epoch_graph.<locals>.run at 0x7f>"
    assert not passes(f"5 out of the last 5 calls to {epoch} triggered tf.function retracing.")
    assert passes("5 out of the last 5 calls to <function score> triggered tf.function retracing.")
    assert passes("another warning")


def test_xla_only_where_the_fit_repays_its_compile() -> None:
    assert use_xla(TrainConfig(), n_windows=10_000)  # ~80 batches x 30 expected epochs
    assert not use_xla(TrainConfig(epochs=2), n_windows=500)  # the fast config: 8 steps
    assert not use_xla(TrainConfig(), n_windows=200)  # 2 batches an epoch
    assert use_xla(TrainConfig(epochs=2, jit_compile=True), n_windows=500)  # asked for


def test_training_batches_keep_their_size_and_validation_pads_least() -> None:
    assert batching(96, 40, training=True) == (3, 40)  # 16 real windows in the last
    assert batching(10, 40, training=True) == (1, 10)
    # Validation splits evenly: fewer padding windows than batches.
    assert batching(4097, 4096, training=False) == (2, 2049)
    assert batching(16, 7, training=False) == (3, 6)
    assert batching(2486, 4096, training=False) == (1, 2486)
