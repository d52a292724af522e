"""Shared fixtures: the real conf/ composed with small overrides, and a temp MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sparse_lstm_ad.config import Config, register_configs, validate

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TRAIN = ROOT / "src" / "train.py"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
register_configs()


def compose_config(*overrides: str) -> Config:
    """The real config, as train.py would compose it, checked and turned into dataclasses."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return validate(OmegaConf.to_object(cfg))  # type: ignore[arg-type]


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python src/train.py` in a subprocess against a temp store, outputs in tmp_path."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            str(TRAIN),
            *args,
            f"tracking.dir={tmp_path / 'mlruns'}",
            f"hydra.run.dir={tmp_path / 'outputs'}",
            f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)

    return run
