"""The configuration schema: one dataclass per config group, and the value checks.

The dataclasses are plain (no Hydra import at module level) so the modules below the CLI can
take them as arguments. `register_configs` puts them in Hydra's ConfigStore, which makes a
wrong type or an unknown key fail at compose time with the key's name.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING

from sparse_lstm_ad.scoring import CovarianceInverse


# Member names are what users type: OmegaConf matches an enum field by name, not value.
class DataSource(StrEnum):
    seed = "seed"


class ModelKind(StrEnum):
    standard = "standard"  # LSTM encoder -> repeat -> LSTM decoder -> per-step Dense
    sparse_gate = "sparse_gate"  # the seed's sparse form: an L1 gate per (time step, channel)
    sparse_projection = "sparse_projection"  # the paper's: an L1-sparse Dense reducing channels


class GateInit(StrEnum):
    ones = "ones"  # every channel passes at first; L1 then closes the ones not needed
    random_uniform = "random_uniform"  # the seed's uniform(-0.05, 0.05): did not learn


class GateActivation(StrEnum):
    linear = "linear"
    relu = "relu"  # the seed's choice: zeroes every negative standardised input


class FitOn(StrEnum):
    train = "train"  # the seed: errors of the training windows
    val = "val"  # EncDec-AD: errors of held-out normal windows


@dataclass
class DataConfig:
    name: str = MISSING
    source: DataSource = DataSource.seed
    n_f2: int = 4  # seed data: channels F1 then n_f2 exact copies of F2
    every: int = 1  # keep every n-th row: shrinks a run for tests and quick tries
    window: int = 15
    stride: int = 1


@dataclass
class ModelConfig:
    kind: ModelKind = ModelKind.standard
    hidden: int = 5
    layers: int = 1  # stacked LSTM layers on each side
    l1: float = 1e-3  # L1 coefficient of the sparse layer; unused by `standard`
    gate_init: GateInit = GateInit.ones
    gate_activation: GateActivation = GateActivation.linear
    projection_units: int | None = None  # width of the paper's layer; None: half the channels
    sparsity_tolerance: float = 1e-2  # a sparse weight below this magnitude counts as zero


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    validation_split: float = 0.1  # the last share of the training rows, held out
    patience: int = 5
    shuffle: bool = False
    deterministic: bool = True  # TF op determinism: a CPU re-run repeats the run's metrics


@dataclass
class ScoringConfig:
    fit_on: FitOn = FitOn.train
    inverse: CovarianceInverse = CovarianceInverse.pinv
    shrinkage: float = 0.1
    threshold_quantile: float = 0.99  # of the per-step scores of normal validation rows


@dataclass
class TrackingConfig:
    dir: str = "mlruns"  # SQLite store `mlflow.db` and `artifacts/` live here
    uri: str | None = None  # a tracking server or database URI; overrides `dir`
    experiment: str = "sparse-lstm-ad"
    log_model: bool = True
    register_as: str | None = None  # also register the run's model under this name


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0
    rerun: bool = False  # in a multirun, run jobs again even if their config already FINISHED
    threads: int = 0  # TensorFlow intra- and inter-op threads; 0: TF's choice (1 under joblib)


class ConfigError(ValueError):
    """A value the user set that the schema's types cannot reject on their own."""


_CHECKS: list[tuple[str, object, str]] = [
    ("data.n_f2", lambda c: c.data.n_f2 >= 1, ">= 1"),
    ("data.every", lambda c: c.data.every >= 1, ">= 1"),
    ("data.window", lambda c: c.data.window >= 2, ">= 2"),
    ("data.stride", lambda c: c.data.stride >= 1, ">= 1"),
    ("model.hidden", lambda c: c.model.hidden >= 1, ">= 1"),
    ("model.layers", lambda c: c.model.layers >= 1, ">= 1"),
    ("model.l1", lambda c: c.model.l1 >= 0, ">= 0"),
    (
        "model.projection_units",
        lambda c: c.model.projection_units is None or c.model.projection_units >= 1,
        ">= 1 or null",
    ),
    ("model.sparsity_tolerance", lambda c: c.model.sparsity_tolerance >= 0, ">= 0"),
    ("train.epochs", lambda c: c.train.epochs >= 1, ">= 1"),
    ("train.batch_size", lambda c: c.train.batch_size >= 1, ">= 1"),
    ("train.learning_rate", lambda c: c.train.learning_rate > 0, "> 0"),
    ("train.validation_split", lambda c: 0 < c.train.validation_split < 1, "in (0, 1)"),
    ("train.patience", lambda c: c.train.patience >= 0, ">= 0"),
    ("scoring.shrinkage", lambda c: 0 <= c.scoring.shrinkage <= 1, "in [0, 1]"),
    ("scoring.threshold_quantile", lambda c: 0 < c.scoring.threshold_quantile < 1, "in (0, 1)"),
    ("threads", lambda c: c.threads >= 0, ">= 0 (0: TensorFlow's choice)"),
]


def validate(cfg: Config) -> Config:
    """Raise ConfigError with one line naming the first key whose value is not allowed."""
    for key, check, allowed in _CHECKS:
        if not check(cfg):  # type: ignore[operator]
            value = functools.reduce(getattr, key.split("."), cfg)
            raise ConfigError(f"{key}={value} is not allowed: must be {allowed}")
    return cfg


# Keys that say where and how a run is executed, not what it computes.
_NOT_IDENTITY = ("tracking", "rerun", "threads")
# Model keys that only the sparse forms use: a standard model ignores them.
_SPARSE_ONLY = ("l1", "gate_init", "gate_activation", "projection_units", "sparsity_tolerance")


def config_identity(config: dict) -> str:
    """A short hash of what a run computes: equal configs give equal hashes across sweeps."""
    kept = {key: value for key, value in config.items() if key not in _NOT_IDENTITY}
    model = dict(kept.get("model", {}))
    if model.get("kind") == "standard":
        model = {key: value for key, value in model.items() if key not in _SPARSE_ONLY}
    kept["model"] = model
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def register_configs() -> None:
    """Register the schemas so every YAML in conf/ is checked against them at compose time."""
    from hydra.core.config_store import ConfigStore

    # conf/config.yaml lists this first in its defaults: every group merges onto a typed node.
    ConfigStore.instance().store(name="config_schema", node=Config)
