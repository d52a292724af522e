"""Runs end by early stopping and say why; the proximal L1 step makes exact zeros."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_lstm_ad.config import L1Method, ModelConfig, TrainConfig
from sparse_lstm_ad.fitting import StoppedBy
from sparse_lstm_ad.models import build_model
from sparse_lstm_ad.sparse_fronts import sparse_weights, weight_sparsity
from sparse_lstm_ad.training import fit_autoencoder
from tests.conftest import as_windows

WINDOW, CHANNELS = 8, 6


def _windows(n: int = 160, seed: int = 0) -> np.ndarray:
    """Three informative channels and three of pure noise, as windows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + WINDOW)
    signal = np.sin(t / 4)[:, None] * np.array([1.0, -0.5, 0.8])
    rows = np.hstack([signal, 0.05 * rng.normal(size=(len(t), 3))]).astype(np.float32)
    return np.lib.stride_tricks.sliding_window_view(rows, WINDOW, axis=0).transpose(0, 2, 1)


def _fit(model_cfg: ModelConfig, train_cfg: TrainConfig):
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(model_cfg, WINDOW, CHANNELS)
    x = np.ascontiguousarray(_windows())
    return model, fit_autoencoder(model, as_windows(x[:128]), as_windows(x[128:]), train_cfg)


def test_a_run_at_the_ceiling_says_so() -> None:
    _, fit = _fit(ModelConfig(hidden=4), TrainConfig(epochs=2, batch_size=32, jit_compile=False))
    assert fit.stopped_by == StoppedBy.max_epochs and fit.epochs_run == 2


def test_a_plateau_ends_by_early_stopping_with_the_best_weights() -> None:
    # A gain of half the loss per epoch is never reached: no epoch after the first counts.
    train = TrainConfig(
        epochs=50, batch_size=32, patience=3, min_delta=0.5, lr_patience=2, jit_compile=False
    )
    model, fit = _fit(ModelConfig(hidden=4), train)
    assert fit.stopped_by == StoppedBy.early_stopping
    assert fit.epochs_run == 4  # the first epoch, then three without a gain
    assert fit.history["learning_rate"][-1] < train.learning_rate  # reduced on the plateau
    val = np.asarray(fit.history["val_loss"])
    assert fit.best_epoch == int(np.argmin(val)) + 1
    x = np.ascontiguousarray(_windows())[128:]
    restored = model.evaluate(x, x, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(val.min(), rel=1e-4)


@pytest.mark.parametrize("kind", ["sparse_gate", "sparse_projection"])
def test_the_l1_range_takes_the_layer_from_no_zeros_to_nearly_all(kind: str) -> None:
    train = TrainConfig(epochs=15, batch_size=32, learning_rate=1e-2, jit_compile=False)
    shares = []
    for l1 in (0.0, 1e3):
        model, _ = _fit(ModelConfig(kind=kind, hidden=4, l1=l1), train)
        shares.append(weight_sparsity(sparse_weights(model), 1e-2).exact_zero_share)
    assert shares[0] == 0.0 and shares[1] > 0.9


def test_the_seed_penalty_shrinks_without_exact_zeros() -> None:
    train = TrainConfig(epochs=40, batch_size=32, learning_rate=1e-2, jit_compile=False)
    cfg = ModelConfig(kind="sparse_gate", hidden=4, l1=1.0, l1_method=L1Method.penalty)
    model, _ = _fit(cfg, train)
    sparsity = weight_sparsity(sparse_weights(model), 1e-2)
    assert sparsity.exact_zero_share < 0.05 < sparsity.zero_share


def test_a_closed_sparse_layer_is_fitted_again_with_a_smaller_l1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An L1 that zeroes every weight selects nothing (the detector would be the Mahalanobis
    baseline): seen without labels, the network is refitted at a tenth of the L1."""
    from sparse_lstm_ad.detectors import network
    from tests.conftest import compose_config

    cfg = compose_config(
        "+experiment=fast",
        "model=sparse",
        "model.l1=30",
        f"data.window={WINDOW}",
        "train.jit_compile=false",  # three short fits: compiling would cost more than them
    )
    x = np.ascontiguousarray(_windows()).astype(np.float64)
    windows = {"train": as_windows(x[:120]), "val": as_windows(x[120:])}
    cfg = type(cfg)(
        **{**cfg.__dict__, "data": type(cfg.data)(**{**cfg.data.__dict__, "window": WINDOW})}
    )
    with caplog.at_level("WARNING"):
        fitted = network.fit(cfg, x[:, 0, :], windows, lambda step, epoch, figures: None)
    weights = sparse_weights(fitted.detector.model)
    assert np.abs(weights).sum() > 0, "the layer the run keeps selects some channel"
    assert fitted.figures["l1_effective"] < 30
    assert (
        "the sparse layer closed (every weight 0, no channel selected) at model.l1=30"
        in caplog.text
    )


def test_a_projection_collapsed_to_one_direction_is_a_defect_seen_without_labels() -> None:
    """A kernel of rank 1 passes one mix of the channels (the LSTM sees a single signal); an
    open kernel of full rank, or one with a weak second direction, is left alone."""
    from sparse_lstm_ad.sparse_fronts import FRONTS, layer_rank, sparse_weights
    from tests.conftest import compose_config

    cfg = compose_config("model=sparse_projection", "model.projection_units=3")
    model = build_model(cfg.model, WINDOW, CHANNELS)
    front = FRONTS["sparse_projection"]
    kernel = model.get_layer(front.kind).kernel
    rng = np.random.default_rng(0)
    direction = np.outer(rng.normal(size=CHANNELS), [1.0, -0.5, 0.0])
    for weights, defect in (
        (rng.normal(size=(CHANNELS, 3)), None),
        (direction + 1e-2 * np.eye(CHANNELS, 3), None),  # a weak second direction still passes
        (direction + 1e-6 * np.eye(CHANNELS, 3), "collapsed to rank 1"),
        (np.zeros((CHANNELS, 3)), "closed (every weight 0"),
    ):
        kernel.assign(weights.astype("float32"))
        found = front.defect(sparse_weights(model))
        assert (found is None) if defect is None else found.startswith(defect), found
    assert layer_rank(direction) == 1
