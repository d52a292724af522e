"""Quiet output: TensorFlow's C++ and absl start-up lines and library warnings hidden unless
asked for (-v), for the commands and for `src/train.py`; and a quiet end: the process exits
without walking its heap once more."""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any


def quiet(verbose: bool) -> None:
    """Hide TensorFlow's C++ and absl start-up lines and library warnings, unless asked for
    (-v); MLflow's download bars are off wherever a store is opened (tracking.store). Set
    before TensorFlow is imported: its C++ logging reads the environment once."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # kept by the store
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    quiet_tensorflow_import()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("absl", "mlflow", "tensorflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """File descriptor 2 on /dev/null for a moment, Python's pending writes flushed first."""
    sys.stderr.flush()
    kept, muted = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(muted, 2)
        yield
    finally:
        os.dup2(kept, 2)
        os.close(kept), os.close(muted)


class _MutedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The package keeps its own loader: resource readers and is_package are asked of it.
        module.__loader__ = module.__spec__.loader = self.loader  # type: ignore[union-attr]
        with native_stderr_muted():
            self.loader.exec_module(module)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Imports `tensorflow`, whenever it first is, with native stderr muted: TensorFlow 2.21's
    absl prints its start-up lines (oneDNN, "All log messages before absl::InitializeLog")
    before TF_CPP_MIN_LOG_LEVEL applies (tensorflow/tensorflow#100442); later C++ logging
    honours the level. Python errors raised by the import still surface as exceptions."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and find_spec below must not find this finder
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _MutedLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Mute TensorFlow's import-time lines, unless it is already loaded, a hook is set or
    TF_CPP_MIN_LOG_LEVEL=0 asks for TensorFlow's info lines."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") == "0":
        return
    if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietTensorFlow) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorFlow())


def exit_quickly() -> None:
    """Skip the interpreter's last garbage collection when this process exits.

    It walks the whole heap (TensorFlow, Keras, MLflow): 1.3-2.2 s from a run's last line to
    its exit, and as long again for each joblib worker, which the sweep's end waits for
    (experiments/benchmark); 1-2 s after `score` or `reproduce` has written everything.
    `atexit` runs before that collection, after every run is closed and flushed; frozen
    objects are skipped by it, and go back with the process's memory.
    """
    atexit.unregister(gc.freeze)  # once per process, however many jobs or commands it runs
    atexit.register(gc.freeze)
