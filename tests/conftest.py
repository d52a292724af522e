"""Shared fixtures: the real conf/ composed with small overrides, and a temp MLflow store."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
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
# The package's caches (the empty store it copies, XLA's compiled executables) in a folder of
# this test process, inherited by the commands it starts: never the user's ~/.cache.
os.environ.setdefault("SPARSE_LSTM_AD_CACHE", tempfile.mkdtemp(prefix="sparse-lstm-ad-cache-"))
# No test's command goes to a train daemon the developer started (tests/test_daemon.py starts
# its own).
os.environ["SPARSE_LSTM_AD_DAEMON"] = "off"
register_configs()


# The first line of a test's Python child that loads TensorFlow or MLflow: at its exit the
# interpreter skips its last garbage collection (1-2 s walking their heap), as train.py's
# processes do (cli/quiet.py: exit_quickly). What the child prints and writes is done by then.
QUICK_EXIT = "import atexit, gc; atexit.register(gc.freeze)\n"


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


class ProcessOutput:
    """A process's output (stdout, stderr merged into it), read line by line by a thread, so
    that every wait on it has a real deadline: a process that goes quiet without ending fails
    the wait in `timeout` seconds instead of blocking it in `readline` for ever."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None, "start the process with stdout=subprocess.PIPE"
        self.process = process
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)  # the end of the output

    def _next(self, deadline: float) -> str | None:
        """The next line, or None at the end of the output; Empty once the deadline passed."""
        line = self._lines.get(timeout=max(deadline - time.monotonic(), 0))
        if line is None:
            self._lines.put(None)  # every later read sees the end too
        else:
            self.seen.append(line)
        return line

    def wait_for(self, text: str, timeout: float = 300) -> str:
        """Read until a line holds `text`; return what was read. Fails when the output ends,
        or `timeout` seconds pass, first."""
        start, deadline = len(self.seen), time.monotonic() + timeout
        try:
            while (line := self._next(deadline)) is not None:
                if text in line:
                    return "".join(self.seen[start:])
            why = f"the output ended (exit code {self.process.poll()})"
        except queue.Empty:
            why = f"{timeout:.0f} s passed"
        raise AssertionError(f"{text!r} never appeared ({why}):\n{''.join(self.seen)[-3000:]}")

    def rest(self, timeout: float = 300) -> str:
        """Wait for the process to end (killed, and the test failed, after `timeout` s); the
        output not yet read by wait_for."""
        start = len(self.seen)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._read_all()  # what it had printed, for the failure's story
            raise AssertionError(
                f"still running after {timeout:.0f} s:\n{''.join(self.seen)[-3000:]}"
            ) from None
        self._read_all()
        return "".join(self.seen[start:])

    def _read_all(self) -> None:
        """Read the output to its end (10 s at most: a child left behind may hold the pipe)."""
        deadline = time.monotonic() + 10
        try:
            while self._next(deadline) is not None:
                pass
        except queue.Empty:
            pass


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty local store made once per test process by the package's own creation code:
    MLflow's schema migrations take 1.5-3.5 s of CPU, paid by every fresh store otherwise."""
    from sparse_lstm_ad.config import TrackingConfig
    from sparse_lstm_ad.tracking.store import _create_sqlite_store

    folder = tmp_path_factory.mktemp("store_template")
    _create_sqlite_store(TrackingConfig(dir=str(folder)))
    return folder / "mlflow.db"


def seed_store(template: Path, store: Path, served: bool = False) -> None:
    """Copy the empty template into `store` (a tracking.dir) unless a store is there; its
    Default experiment then keeps its artifacts in `store`, as a store created there would.

    `served`: `store` is the state folder of a SQLite tracking server (sparse_lstm_ad.server),
    whose Default experiment keeps its artifacts on the server (mlflow-artifacts:/0), as in a
    database the server created; the server then finds its schema migrated."""
    import shutil
    import sqlite3

    if (store / "mlflow.db").exists():
        return
    store.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, store / "mlflow.db")
    with contextlib.closing(sqlite3.connect(store / "mlflow.db")) as db, db:
        root = "mlflow-artifacts:/0" if served else (store / "artifacts").resolve().as_uri()
        db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", [root])


@pytest.fixture
def run_cli(tmp_path: Path, store_template: Path) -> Callable[..., Any]:
    """Run `python src/train.py ARGS` against a temp store, outputs in tmp_path: in this
    process (train_in_process), or in a subprocess where the launcher needs one (joblib's
    workers import train.py by path) or `subprocess=True` asks for a fresh process.

    The store starts as a copy of `store_template` (made by the package, once per process);
    `fresh_store=True` leaves the command to create it."""

    def run(
        *args: str, store: bool = True, subprocess_: bool = False, fresh_store: bool = False
    ) -> Any:
        command = train_command(tmp_path, *args, store=store)
        if store and not fresh_store:
            seed_store(store_template, tmp_path / "mlruns")
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

    `store` is the TrackingConfig's arguments as Python source, e.g. "dir='/tmp/x'". One
    process imports MLflow and forks the writers (eight interpreters importing MLflow on two
    cores took most of this helper's time, and are not what is tested): each says it is ready
    and waits for the others, then they open their runs (and, with prepare=False, create the
    store) together. Each writer is a process of its own, with its own connections.
    """
    program = QUICK_EXIT + textwrap.dedent(f"""
        import os, sys, time, traceback
        from pathlib import Path
        from sparse_lstm_ad import tracking
        from sparse_lstm_ad.config import TrackingConfig

        def write(number):
            cfg = TrackingConfig({store}, experiment="writers")
            Path({str(folder)!r}, f"ready-{{number}}").touch()
            while not Path({str(folder)!r}, "go").exists():
                time.sleep(0.01)
            with tracking.tracked_run(cfg, f"writer {{number}}", {{}}):
                for step in range({steps}):
                    tracking.log_metrics({{"value": step}}, step=step)

        children = []
        for number in range({writers}):
            if (pid := os.fork()) == 0:
                try:
                    write(number)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stdout.flush(), sys.stderr.flush()
                os._exit(code)
            children.append(pid)
        codes = {{}}
        while len(codes) < len(children):
            pid, status = os.wait()
            codes[pid] = os.waitstatus_to_exitcode(status)
            if codes[pid] != 0 and not Path({str(folder)!r}, "go").exists():
                print(f"writer {{children.index(pid)}} ended before it was ready", flush=True)
                for other in set(children) - set(codes):
                    os.kill(other, 9)
                sys.exit(1)
        print("exit codes", [codes[pid] for pid in children], flush=True)
    """)
    if prepare:  # as the CLI does: the store is prepared once before jobs start
        code = QUICK_EXIT + "from sparse_lstm_ad import tracking, config; tracking.prepare_store("
        code += f"config.TrackingConfig({store}, experiment='writers'))"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    folder.mkdir(parents=True, exist_ok=True)
    parent = subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = ProcessOutput(parent)
    try:
        deadline = time.monotonic() + 300
        while (ready := len(list(folder.glob("ready-*")))) < writers:
            assert parent.poll() is None, output.rest()
            assert time.monotonic() < deadline, f"{ready} of {writers} writers ready in 300 s"
            time.sleep(0.05)
        (folder / "go").touch()
        assert output.wait_for("exit codes").split("exit codes ")[-1] == f"{[0] * writers}\n"
        assert parent.wait(timeout=60) == 0
    finally:
        if parent.poll() is None:  # a failed assertion leaves no writer behind
            os.killpg(parent.pid, signal.SIGKILL)
