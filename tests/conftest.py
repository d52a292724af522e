"""Shared fixtures: the real conf/ composed with small overrides, and a temp MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
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


def train_command(tmp_path: Path, *args: str, store: bool = True) -> list[str]:
    """`python src/train.py ARGS` with outputs, and unless told otherwise the store, in tmp_path."""
    command = [sys.executable, str(TRAIN), *args]
    command += [f"hydra.run.dir={tmp_path / 'outputs'}", f"hydra.sweep.dir={tmp_path / 'multirun'}"]
    return command + ([f"tracking.dir={tmp_path / 'mlruns'}"] if store else [])


def store_runs(store: Path) -> list[mlflow.entities.Run]:
    """Every run in a local store, oldest first; [] when the store was never created."""
    if not (store / "mlflow.db").exists():
        return []
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, order_by=["attributes.start_time ASC"])


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python src/train.py` in a subprocess against a temp store, outputs in tmp_path."""

    def run(*args: str, store: bool = True) -> subprocess.CompletedProcess[str]:
        command = train_command(tmp_path, *args, store=store)
        return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)

    return run
