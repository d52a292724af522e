"""Shared fixtures: the real conf/ composed with small overrides, and a temp MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.config_checks import validate

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


def parent_and_children(store: Path) -> tuple[list, list]:
    """A store's sweep parent runs and the other runs, oldest first."""
    runs = store_runs(store)
    parents = [r for r in runs if "sweep_parent" in r.data.tags]
    return parents, [r for r in runs if r not in parents]


def run_concurrent_writers(store: str, writers: int = 8, steps: int = 200) -> None:
    """Processes logging `steps` metric points each to one store at the same time.

    `store` is the TrackingConfig's arguments as Python source, e.g. "dir='/tmp/x'".
    """
    writer = textwrap.dedent(f"""
        import sys
        from sparse_lstm_ad import tracking
        from sparse_lstm_ad.config import TrackingConfig
        cfg = TrackingConfig({store}, experiment="writers")
        with tracking.tracked_run(cfg, f"writer {{sys.argv[1]}}", {{}}):
            for step in range({steps}):
                tracking.log_metrics({{"value": step}}, step=step)
    """)
    # The store is prepared once before the writers start, as the CLI does.
    prepare = "from sparse_lstm_ad import tracking, config; tracking.prepare_store("
    prepare += f"config.TrackingConfig({store}, experiment='writers'))"
    subprocess.run([sys.executable, "-c", prepare], check=True)
    started = [subprocess.Popen([sys.executable, "-c", writer, str(i)]) for i in range(writers)]
    assert [w.wait(timeout=300) for w in started] == [0] * writers
