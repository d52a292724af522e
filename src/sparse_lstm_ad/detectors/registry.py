"""The one place a detector is chosen: `model.kind` -> its family.

Every module of this package that defines `FAMILY` is a family; adding a detector is adding
such a module and its `conf/model/<name>.yaml`. A module imports TensorFlow or scikit-learn
only inside its functions, so finding the families loads neither.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from sparse_lstm_ad.config import ModelConfig
from sparse_lstm_ad.config_checks import ConfigError
from sparse_lstm_ad.detectors.protocol import Family


@functools.cache
def families() -> dict[str, Family]:
    """kind -> family, of every module here that defines FAMILY."""
    found: dict[str, Family] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        family = getattr(importlib.import_module(f"{__package__}.{module.name}"), "FAMILY", None)
        for kind in family.kinds if family is not None else ():
            if kind in found:
                raise RuntimeError(f"model.kind {kind} is fitted by two detector modules")
            found[kind] = family
    return found


def family(kind: str) -> Family:
    if (chosen := families().get(kind)) is None:
        raise ConfigError(f"model.kind={kind} is not a detector: the kinds are {kinds_line()}")
    return chosen


def kinds_line() -> str:
    return ", ".join(sorted(families()))


def unused_model_keys(kind: str) -> list[str]:
    """The model keys a kind ignores (l1 for the standard model, hidden for a baseline)."""
    used = family(kind).kinds[kind]
    return [name for name in ModelConfig.__dataclass_fields__ if name not in (*used, "kind")]
