"""conf/ holds only what differs: no option file sets a value its dataclass (or the option it
extends) already has, so every default is written once, in src/sparse_lstm_ad/config.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from sparse_lstm_ad.config import Config
from tests.conftest import ROOT, compose_config

CONF = ROOT / "conf"
GROUPS = ("data", "model", "train", "scoring", "tracking")
NAMES = ("name", "source", "kind", "entity")  # what an option is: said even where it is the default


def _defaults(group: str) -> dict[str, Any]:
    node = getattr(Config(), group)
    return OmegaConf.to_container(OmegaConf.structured(node), enum_to_str=True)


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    found: dict[str, Any] = {}
    for key, value in node.items():
        found.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def _file(path: Path) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}


def _inherited(path: Path, group: str) -> dict[str, Any]:
    """The values an option starts from: its dataclass, then the options it lists first."""
    values = _leaves(_defaults(group))
    for parent in _file(path).get("defaults", []):
        if isinstance(parent, str) and parent != "_self_":
            parent_path = path.with_name(f"{parent}.yaml")
            values.update(_inherited(parent_path, group))
            values.update(_leaves({k: v for k, v in _file(parent_path).items() if k != "defaults"}))
    return values


def _options() -> list[tuple[str, Path]]:
    return [(g, p) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "path"), _options(), ids=lambda x: getattr(x, "name", x))
def test_no_option_repeats_a_value_it_already_has(group: str, path: Path) -> None:
    own = _leaves({k: v for k, v in _file(path).items() if k != "defaults"})
    inherited = _inherited(path, group)
    repeated = {
        key: value
        for key, value in own.items()
        if key.split(".")[-1] not in NAMES and key in inherited and inherited[key] == value
    }
    assert not repeated, f"{path.relative_to(ROOT)} repeats {repeated}"


def test_the_trimmed_options_still_compose_to_their_values() -> None:
    cfg = compose_config("data=asd_omi2")
    assert (cfg.data.window, cfg.data.csv.nan_policy.value) == (15, "error")
    assert cfg.data.csv.constant.value == "drop" and cfg.data.name == "asd-omi-2"
    assert compose_config("data=case1").data.seed.n_f2 == 1
    assert compose_config("data=case2").data.seed.n_f2 == 4
    correlated = compose_config("data=correlated").data.correlated
    assert (correlated.channels, correlated.anomalies.spike.size) == (32, 6.0)
    assert compose_config("scoring=train_errors").scoring.fit_on.value == "train"
    assert dataclasses.is_dataclass(compose_config("+experiment=notebook").train)
