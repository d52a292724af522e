"""The real conf/ composes, and wrong values fail with the key's name."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from sparse_lstm_ad.config import ModelKind
from sparse_lstm_ad.config_checks import ConfigError
from tests.conftest import compose_config


def test_defaults_compose_to_training_that_converges() -> None:
    cfg = compose_config()
    assert cfg.data.name == "case2" and cfg.data.seed.n_f2 == 4
    assert cfg.model.kind == ModelKind.standard and cfg.model.hidden is None
    assert (cfg.train.epochs, cfg.train.patience, cfg.train.lr_patience) == (300, 10, 5)


def test_seed_preset_is_the_notebook() -> None:
    cfg = compose_config("+experiment=seed", "model=sparse")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.window) == (30, 128, 15)
    assert (cfg.train.patience, cfg.train.min_delta, cfg.train.lr_patience) == (5, 0.0, 0)
    assert (cfg.model.hidden, cfg.model.l1, cfg.model.l1_method.value) == (5, 1e-3, "penalty")


@pytest.mark.parametrize("preset", ["seed", "tune", "fast", "seed_comparison", "l1_sweep"])
def test_presets_compose(preset: str) -> None:
    assert compose_config(f"+experiment={preset}") is not None


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("standard", "standard"),
        ("sparse", "sparse_gate"),
        ("sparse_projection", "sparse_projection"),
        ("mahalanobis", "mahalanobis"),
        ("pca", "pca"),
        ("iforest", "iforest"),
    ],
)
def test_model_groups(group: str, kind: str) -> None:
    assert compose_config(f"model={group}").model.kind == ModelKind(kind)


def test_fast_preset_is_small() -> None:
    cfg = compose_config("+experiment=fast")
    assert cfg.train.epochs <= 2 and cfg.data.every == 20


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.l1=-1", "model.l1"),
        ("data.window=0", "data.window"),
        ("train.validation_split=1.5", "train.validation_split"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.epochs=0", "train.epochs"),
        ("model.hidden=0", "model.hidden"),
        ("scoring.threshold_quantile=1", "scoring.threshold_quantile"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config(override)


@pytest.mark.parametrize(
    "override",
    ["model.hiden=5", "train.epochs=many", "model.gate_activation=softmax", "data.extra=1"],
)
def test_unknown_keys_and_wrong_types_fail_at_compose(override: str) -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_config(override)


def test_unknown_group_option_fails_at_compose() -> None:
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config("model=transformer")
