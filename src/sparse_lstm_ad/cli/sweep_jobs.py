"""The jobs a multirun launches, read the one way the command's checks, its joblib batches and
its progress line read them: as Hydra's sweepers do, the preset's `hydra.sweeper.params`
first, then the command line's overrides, whose value of a key replaces the preset's in its
place (BasicSweeper: `params_conf.extend(arguments)`), swept or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf


def preset_first(params: Mapping[str, Any] | None, overrides: Sequence[str]) -> list[str]:
    """The override lines a sweeper reads: the preset's params, then the command line's."""
    return [f"{key}={value}" for key, value in (params or {}).items()] + list(overrides)


def basic_sweep(overrides: list[Override]) -> list[list[str]]:
    """The jobs of a basic sweep in launch order: the product of the swept values, a later
    override of a key replacing an earlier one."""
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    return jobs


def last_of_each_key(overrides: list[Override]) -> list[Override]:
    """Each key's last override, in the place of its first: what any sweeper applies."""
    last: dict[str, Override] = {}
    for override in overrides:
        last[override.get_key_element()] = override
    return list(last.values())


def launched_jobs(config: DictConfig) -> list[list[str]] | None:
    """The jobs a composed multirun's basic sweeper launches; None for another sweeper, whose
    jobs are not known up front."""
    if "BasicSweeper" not in str(config.hydra.sweeper.get("_target_")):
        return None
    task = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
    lines = preset_first(config.hydra.sweeper.get("params"), task)  # type: ignore[arg-type]
    return basic_sweep(OverridesParser.create().parse_overrides(lines))
