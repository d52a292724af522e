"""The config schema in Hydra's ConfigStore: every YAML in conf/ is checked against the
dataclasses of `sparse_lstm_ad.config` when Hydra composes it (a wrong type fails there)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from sparse_lstm_ad.config import Config


def register_configs() -> None:
    # conf/config.yaml lists this first in its defaults: every group merges onto a typed node.
    ConfigStore.instance().store(name="config_schema", node=Config)
