"""Value checks the schema's types cannot make: ranges, and keys that bound one another."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from sparse_lstm_ad.config import ANOMALY_KINDS, SELECTION_CRITERIA, AnomalyTypeConfig, Config


class ConfigError(ValueError):
    """A value the user set that the schema's types cannot reject on their own."""


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
    ("data.window", lambda c: c.data.window >= 1, ">= 1"),
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
    (  # a test file of its own was read, and the split row silently ignored
        "data.csv.test_from",
        lambda c: c.data.csv.test is None or c.data.csv.test_from is None,
        "null where data.csv.test names a test file: it splits data.csv.train, the only file "
        "(or set data.csv.test=null)",
    ),
]

_SEED_RANGE = "an integer in [0, 2**32 - 1] (NumPy's seed range)"

_CHECKS: list[tuple[str, object, str]] = [
    ("seed", lambda c: 0 <= c.seed < 2**32, _SEED_RANGE),
    ("data.correlated.seed", lambda c: 0 <= c.data.correlated.seed < 2**32, _SEED_RANGE),
    *_DATA_CHECKS,
    ("model.hidden", lambda c: c.model.hidden is None or c.model.hidden >= 1, ">= 1 or null"),
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
    ("train.min_delta", lambda c: 0 <= c.train.min_delta < 1, "in [0, 1)"),
    ("train.lr_patience", lambda c: c.train.lr_patience >= 0, ">= 0 (0: off)"),
    ("train.lr_factor", lambda c: 0 < c.train.lr_factor < 1, "in (0, 1)"),
    ("train.min_learning_rate", lambda c: c.train.min_learning_rate >= 0, ">= 0"),
    ("model.pca_variance", lambda c: 0 < c.model.pca_variance <= 1, "in (0, 1]"),
    ("model.iforest_trees", lambda c: c.model.iforest_trees >= 1, ">= 1"),
    ("scoring.pot_level", lambda c: 0 < c.scoring.pot_level < 1, "in (0, 1)"),
    (
        "scoring.pot_risk",
        lambda c: 0 < c.scoring.pot_risk < 1 - c.scoring.pot_level,
        "in (0, 1 - scoring.pot_level)",
    ),
    ("scoring.shrinkage", lambda c: 0 <= c.scoring.shrinkage <= 1, "in [0, 1]"),
    ("scoring.threshold_quantile", lambda c: 0 < c.scoring.threshold_quantile < 1, "in (0, 1)"),
    ("train.eval_batch_size", lambda c: c.train.eval_batch_size >= 1, ">= 1"),
    ("scoring.vus_max_buffer", lambda c: c.scoring.vus_max_buffer >= 0, ">= 0"),
    ("scoring.calibrate_rows", lambda c: c.scoring.calibrate_rows >= 0, ">= 0 (0: validation)"),
    ("scoring.max_anomaly_share", lambda c: 0 < c.scoring.max_anomaly_share < 1, "in (0, 1)"),
    ("threads", lambda c: c.threads >= 0, ">= 0 (0: TensorFlow's choice)"),
    ("selection.anomaly_share", lambda c: 0 < c.selection.anomaly_share < 1, "in (0, 1)"),
    ("selection.anomalies", lambda c: 1 <= c.selection.anomalies <= 1000, "in [1, 1000]"),
    ("selection.length", lambda c: c.selection.length >= 2, ">= 2"),
    ("selection.size", lambda c: c.selection.size > 0, "> 0"),
    ("selection.channel_share", lambda c: 0 < c.selection.channel_share <= 1, "in (0, 1]"),
    (
        "selection.weights",
        lambda c: (
            set(c.selection.weights) <= set(SELECTION_CRITERIA)
            and all(0 <= w < math.inf for w in c.selection.weights.values())
            and any(w > 0 for w in c.selection.weights.values())
        ),
        f"finite weights >= 0, not all 0, of the criteria {', '.join(SELECTION_CRITERIA)}",
    ),
]


def validate(cfg: Config) -> Config:
    """Raise ConfigError with one line naming the first key whose value is not allowed."""
    for key, value in _floats(cfg):
        if not math.isfinite(value):  # inf passes every `> 0`, NaN fails with a wrong reason
            raise ConfigError(f"{key}={value} is not allowed: must be a finite number")
    for key, check, allowed in _CHECKS:
        if not check(cfg):  # type: ignore[operator]
            value = functools.reduce(getattr, key.split("."), cfg)
            raise ConfigError(f"{key}={value} is not allowed: must be {allowed}")
    return cfg


def _floats(node: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(key, value) of every float in a config of nested dataclasses."""
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        if dataclasses.is_dataclass(value):
            yield from _floats(value, f"{prefix}{item.name}.")
        elif isinstance(value, float):
            yield f"{prefix}{item.name}", value


def unknown_keys(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """(key, the keys its schema has) for each key the schema does not know.

    Hydra adds `+group.key=value` even to a typed node, and the dataclass then drops it: a
    mistyped `+train.learning_rat=0.1` would train with the default learning rate.
    """
    schema = OmegaConf.get_type(node)
    known = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else []
    for key in node:
        name = f"{prefix}{key}"
        if known and key not in known:
            yield name, known
            continue
        child = node._get_node(key)  # the node itself: its value may be an interpolation
        if isinstance(child, DictConfig) and not child._is_none():
            yield from unknown_keys(child, f"{name}.")


def checked_config(composed: DictConfig) -> Config:
    """The composed config (less Hydra's own node) as checked dataclasses, or ConfigError."""
    task = copy.deepcopy(composed)
    with open_dict(task):
        task.pop("hydra", None)
    for key, known in unknown_keys(task):
        close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
        group = key.rsplit(".", 1)[0] + "." if "." in key else ""
        hint = f": did you mean {group}{close[0]}?" if close else ""
        raise ConfigError(f"{key} is not a key of the config{hint}")
    return validate(OmegaConf.to_object(task))  # type: ignore[arg-type]
