"""The compiled-epoch training path: same figures as Keras fit, no window copies, repeatable."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sparse_lstm_ad.config import ModelConfig, ModelKind, TrainConfig
from sparse_lstm_ad.data import make_windows
from sparse_lstm_ad.models import build_model
from sparse_lstm_ad.training import fit_autoencoder, underlying_rows

WINDOW, CHANNELS = 5, 3


def _series(n: int = 120) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, CHANNELS))


@pytest.mark.parametrize("stride", [1, 3])
def test_underlying_rows_of_a_view_share_memory(stride: int) -> None:
    series = _series()
    windows = make_windows(series, WINDOW, stride)
    rows, starts = underlying_rows(windows)
    assert np.shares_memory(rows, series)
    rebuilt = rows[starts[:, None] + np.arange(WINDOW)]
    np.testing.assert_array_equal(rebuilt, windows)


def test_underlying_rows_of_a_plain_array() -> None:
    windows = np.ascontiguousarray(make_windows(_series(), WINDOW))[::-1]  # negative stride
    rows, starts = underlying_rows(windows)
    np.testing.assert_array_equal(rows[starts[:, None] + np.arange(WINDOW)], windows)


def _fit(cfg: TrainConfig, kind: ModelKind = ModelKind.sparse_gate) -> dict[str, list[float]]:
    keras.utils.set_random_seed(0)
    series = _series()
    model = build_model(ModelConfig(kind=kind, hidden=3), WINDOW, CHANNELS)
    # 96 training windows at batch 40: two full batches and a last one of 16.
    fit = fit_autoencoder(
        model, make_windows(series[:100], WINDOW), make_windows(series[100:], WINDOW), cfg
    )
    return fit.history


@pytest.mark.parametrize("jit_compile", [True, False])
def test_compiled_epochs_match_keras_fit(jit_compile: bool) -> None:
    base = {"epochs": 2, "batch_size": 40, "eval_batch_size": 7}
    keras_fit = _fit(TrainConfig(**base, epoch_in_graph=False))
    in_graph = _fit(TrainConfig(**base, jit_compile=jit_compile))
    for key in ("loss", "mse", "val_loss", "val_mse"):
        np.testing.assert_allclose(in_graph[key], keras_fit[key], rtol=1e-5, err_msg=key)


def test_compiled_epochs_repeat_to_the_bit_and_shuffle() -> None:
    cfg = TrainConfig(epochs=2, batch_size=32, shuffle=True)
    first, second = _fit(cfg), _fit(cfg)
    assert first["val_loss"] == second["val_loss"] and first["loss"] == second["loss"]
    assert first["loss"] != _fit(TrainConfig(epochs=2, batch_size=32))["loss"]
