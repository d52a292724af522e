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
    seed = "seed"  # the seed notebook's generated series (`data.seed`)
    correlated = "correlated"  # generated groups of correlated channels (`data.correlated`)
    csv = "csv"  # a train and a test CSV file, or one file and a split row (`data.csv`)


class NanPolicy(StrEnum):
    error = "error"  # a NaN or inf stops the load, naming the file, column and row
    ffill = "ffill"  # carry the last finite value forward (leading gaps take the first one)
    zero = "zero"


class ConstantPolicy(StrEnum):
    error = "error"  # a column constant on the training rows stops the load
    drop = "drop"  # drop it (it carries nothing a model can learn), with a warning


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
class SeedDataConfig:
    n_f2: int = 4  # channels F1 then n_f2 exact copies of F2


@dataclass
class AnomalyTypeConfig:
    """One kind of injected anomaly; `size` means what its kind says (see correlated.yaml)."""

    count: int = 0  # how many go into the test part; 0 turns the kind off
    length: int = 50  # rows each
    size: float = 3.0
    channels: int = 1  # channels each one touches, all from one group


def _anomaly(count: int, length: int, size: float, channels: int) -> AnomalyTypeConfig:
    return AnomalyTypeConfig(count=count, length=length, size=size, channels=channels)


@dataclass
class CorrelatedAnomaliesConfig:
    # size: spike, level_shift, drift (at its end), noise_burst (noise std): in channel stds.
    spike: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(3, 1, 6.0, 1))
    level_shift: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(2, 30, 3.0, 2))
    # size: factor on the frequency of the channels' periodic part.
    frequency_change: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(2, 60, 2.0, 2))
    noise_burst: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(2, 30, 3.0, 2))
    drift: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(2, 60, 4.0, 2))
    # size: phase shift in periods of the group's signal (0.5: the opposite phase).
    correlation_break: AnomalyTypeConfig = field(default_factory=lambda: _anomaly(3, 60, 0.5, 1))
    gap: int = 50  # normal rows at least between anomalies and at the test part's ends


@dataclass
class CorrelatedDataConfig:
    seed: int = 0  # of the numpy Generator; independent of the top-level seed
    channels: int = 32
    groups: int = 4  # each group's channels follow one shared latent signal
    length: int = 10_000  # rows, train then test
    train_share: float = 0.6
    period: float = 100.0  # mean period of the latent signals (rows); each group's differs
    latent_noise: float = 0.3  # std of the noise shared by a group (sine amplitude 1)
    noise: float = 0.1  # std of each channel's own noise, added after its gain
    anomalies: CorrelatedAnomaliesConfig = field(default_factory=CorrelatedAnomaliesConfig)


@dataclass
class CsvDataConfig:
    dir: str = "."  # the file paths below are relative to it; it to the current directory
    train: str = ""  # the training file, or the only file with `test_from`
    test: str | None = None  # the test file; null: split `train` at `test_from`
    test_from: int | None = None  # with one file: its first test row (0-based, after header)
    time_column: str | None = None  # never a feature
    features: list[str] | None = None  # null: every numeric column but time and label
    label_column: str | None = None  # in the test rows, 1 = anomalous; null: no metrics
    channel_labels: str | None = None  # `start-end:channels` lines, rows from the first test row
    nan_policy: NanPolicy = NanPolicy.error  # NaN and inf alike
    constant: ConstantPolicy = ConstantPolicy.error


@dataclass
class DataConfig:
    name: str = MISSING
    source: DataSource = DataSource.seed
    entity: str = ""  # one part of a data set (ASD: omi-1 ... omi-4), named in preset paths
    every: int = 1  # keep every n-th row: shrinks a run for tests and quick tries
    window: int = 15
    stride: int = 1
    # Only the block of `source` is read; the others keep their defaults.
    seed: SeedDataConfig = field(default_factory=SeedDataConfig)
    correlated: CorrelatedDataConfig = field(default_factory=CorrelatedDataConfig)
    csv: CsvDataConfig = field(default_factory=CsvDataConfig)


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
    # One compiled graph per epoch (batches gathered from the rows inside it) instead of Keras
    # fit's Python loop of one call per batch: the loop's overhead dwarfs a batch of small LSTMs.
    epoch_in_graph: bool = True
    # XLA for that graph; Keras turns it off on CPU and under op determinism, yet on CPU it is
    # deterministic and fuses the LSTM's many small ops (measured ~5x per epoch, 2 cores).
    jit_compile: bool = True
    eval_batch_size: int = 4096  # validation batches in the graph: no gradients to bound them


@dataclass
class ScoringConfig:
    fit_on: FitOn = FitOn.train
    inverse: CovarianceInverse = CovarianceInverse.pinv
    shrinkage: float = 0.1
    threshold_quantile: float = 0.99  # of the per-step scores of normal validation rows
    vus_max_buffer: int = 100  # VUS averages range curves over buffers 0..this many rows


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


# The fields of CorrelatedAnomaliesConfig that are anomaly kinds, in injection-config order.
ANOMALY_KINDS = (
    "spike",
    "level_shift",
    "frequency_change",
    "noise_burst",
    "drift",
    "correlation_break",
)
_ANOMALY_SIZES = {
    "frequency_change": (lambda size: size > 0 and size != 1, "> 0 and not 1"),
    "correlation_break": (lambda size: 0 < size < 1, "in (0, 1)"),
}


def _anomaly_checks(kind: str) -> list[tuple[str, object, str]]:
    key = f"data.correlated.anomalies.{kind}"
    size_ok, size_allowed = _ANOMALY_SIZES.get(kind, (lambda size: size > 0, "> 0"))

    def kind_of(c: Config) -> AnomalyTypeConfig:
        return getattr(c.data.correlated.anomalies, kind)

    return [
        (f"{key}.count", lambda c: kind_of(c).count >= 0, ">= 0"),
        (f"{key}.length", lambda c: kind_of(c).length >= 1, ">= 1"),
        (f"{key}.size", lambda c: size_ok(kind_of(c).size), size_allowed),
        (f"{key}.channels", lambda c: kind_of(c).channels >= 1, ">= 1"),
    ]


_DATA_CHECKS: list[tuple[str, object, str]] = [
    ("data.every", lambda c: c.data.every >= 1, ">= 1"),
    ("data.window", lambda c: c.data.window >= 2, ">= 2"),
    ("data.stride", lambda c: c.data.stride >= 1, ">= 1"),
    ("data.seed.n_f2", lambda c: c.data.seed.n_f2 >= 1, ">= 1"),
    ("data.correlated.channels", lambda c: c.data.correlated.channels >= 1, ">= 1"),
    (
        "data.correlated.groups",
        lambda c: 1 <= c.data.correlated.groups <= c.data.correlated.channels,
        "in [1, data.correlated.channels]",
    ),
    ("data.correlated.length", lambda c: c.data.correlated.length >= 4, ">= 4"),
    ("data.correlated.train_share", lambda c: 0 < c.data.correlated.train_share < 1, "in (0, 1)"),
    ("data.correlated.period", lambda c: c.data.correlated.period >= 2, ">= 2 (rows)"),
    ("data.correlated.latent_noise", lambda c: c.data.correlated.latent_noise >= 0, ">= 0"),
    ("data.correlated.noise", lambda c: c.data.correlated.noise >= 0, ">= 0"),
    ("data.correlated.anomalies.gap", lambda c: c.data.correlated.anomalies.gap >= 0, ">= 0"),
    *(check for kind in ANOMALY_KINDS for check in _anomaly_checks(kind)),
    (
        "data.csv.test_from",
        lambda c: c.data.csv.test_from is None or c.data.csv.test_from >= 1,
        ">= 1 or null",
    ),
]

_CHECKS: list[tuple[str, object, str]] = [
    *_DATA_CHECKS,
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
    ("train.eval_batch_size", lambda c: c.train.eval_batch_size >= 1, ">= 1"),
    ("scoring.vus_max_buffer", lambda c: c.scoring.vus_max_buffer >= 0, ">= 0"),
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


def active_only(config: dict) -> dict:
    """The config without the data blocks of the sources not in use: what a run depends on."""
    data = dict(config.get("data", {}))
    for source in DataSource:
        if source.value != data.get("source"):
            data.pop(source.value, None)
    return {**config, "data": data}


def register_configs() -> None:
    """Register the schemas so every YAML in conf/ is checked against them at compose time."""
    from hydra.core.config_store import ConfigStore

    # conf/config.yaml lists this first in its defaults: every group merges onto a typed node.
    ConfigStore.instance().store(name="config_schema", node=Config)
