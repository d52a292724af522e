"""Shared fixtures: the real conf/ composed with small overrides, and a temp MLflow store."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.config_checks import validate
from sparse_lstm_ad.data import Windows

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


def as_windows(windows: np.ndarray) -> Windows:
    """An (n, length, k) array of windows as `Windows`: back to back over one copy of rows."""
    n, length, k = windows.shape
    return Windows(np.ascontiguousarray(windows).reshape(n * length, k), length, length)


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


def _train_script() -> ModuleType:
    """src/train.py as a module, loaded once per test process."""
    if (module := sys.modules.get("sparse_lstm_ad_train_script")) is None:
        spec = importlib.util.spec_from_file_location("sparse_lstm_ad_train_script", TRAIN)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def train_in_process(command: list[str]) -> subprocess.CompletedProcess[str]:
    """`command` (a train_command) run by train.py's own `cli()` in this process.

    What a test checks of a run (its store, its output, its exit code) is the same as from a
    subprocess; the process's imports (TensorFlow, MLflow, Hydra) and compiled graphs are
    paid once per test process instead of once per run. Signal handlers are put back."""
    train, argv = _train_script(), command[1:]
    _keep_pytest_capture_open()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    out, err, code = io.StringIO(), io.StringIO(), 0
    # Hydra finds conf/ relative to the script when it believes the script is __main__.
    main_module = os.environ.get("HYDRA_MAIN_MODULE")
    os.environ["HYDRA_MAIN_MODULE"] = "__main__"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        old_argv, sys.argv = sys.argv, argv
        try:
            train.cli()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            sys.argv = old_argv
            if main_module is None:
                del os.environ["HYDRA_MAIN_MODULE"]
            else:
                os.environ["HYDRA_MAIN_MODULE"] = main_module
            train._label_job("")  # a multirun's job label stays off later log lines
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _keep_pytest_capture_open() -> None:
    """absl's log handler writes to the sys.stderr of the moment absl was imported: under
    pytest, pytest's capture. Hydra starts each run with `logging.config.dictConfig`, which
    closes every handler, and absl's close() closes its stream unless that stream is
    sys.stderr, which while a run's output is redirected here it is not: pytest's capture
    would be closed under it. sys.__stderr__ (fd 2, captured too) is never closed."""
    if (absl := sys.modules.get("absl.logging")) is not None:
        absl.get_absl_handler().python_handler.stream = sys.__stderr__


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python src/train.py ARGS` against a temp store, outputs in tmp_path: in this
    process (train_in_process), or in a subprocess where the launcher needs one (joblib's
    workers import train.py by path) or `subprocess=True` asks for a fresh process."""

    def run(*args: str, store: bool = True, subprocess_: bool = False) -> Any:
        command = train_command(tmp_path, *args, store=store)
        if subprocess_ or any(a.startswith("hydra/launcher=") for a in args):
            return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
        return train_in_process(command)

    return run


def parent_and_children(store: Path) -> tuple[list, list]:
    """A store's sweep parent runs and the other runs, oldest first."""
    runs = store_runs(store)
    parents = [r for r in runs if "sweep_parent" in r.data.tags]
    return parents, [r for r in runs if r not in parents]


def run_concurrent_writers(
    store: str, folder: Path, writers: int = 8, steps: int = 50, prepare: bool = True
) -> None:
    """Processes logging `steps` metric points each to one store at the same time.

    `store` is the TrackingConfig's arguments as Python source, e.g. "dir='/tmp/x'". Each
    writer imports MLflow, says it is ready and waits for the others: they then open their
    runs (and, with prepare=False, create the store) together, not as their imports end.
    """
    writer = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from sparse_lstm_ad import tracking
        from sparse_lstm_ad.config import TrackingConfig
        cfg = TrackingConfig({store}, experiment="writers")
        Path({str(folder)!r}, f"ready-{{sys.argv[1]}}").touch()
        while not Path({str(folder)!r}, "go").exists():
            time.sleep(0.01)
        with tracking.tracked_run(cfg, f"writer {{sys.argv[1]}}", {{}}):
            for step in range({steps}):
                tracking.log_metrics({{"value": step}}, step=step)
    """)
    if prepare:  # as the CLI does: the store is prepared once before jobs start
        code = "from sparse_lstm_ad import tracking, config; tracking.prepare_store("
        code += f"config.TrackingConfig({store}, experiment='writers'))"
        subprocess.run([sys.executable, "-c", code], check=True)
    folder.mkdir(parents=True, exist_ok=True)
    started = [subprocess.Popen([sys.executable, "-c", writer, str(i)]) for i in range(writers)]
    deadline = time.monotonic() + 300
    while len(list(folder.glob("ready-*"))) < writers and time.monotonic() < deadline:
        assert all(w.poll() is None for w in started), "a writer ended before it was ready"
        time.sleep(0.05)
    (folder / "go").touch()
    assert [w.wait(timeout=300) for w in started] == [0] * writers
