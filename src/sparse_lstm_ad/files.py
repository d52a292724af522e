"""Files written whole or not at all: what a reader (a user, MLflow, another process) finds
at a path is either absent, the previous version, or complete. A lock file that lets one
process at a time through. And a dataclass of arrays as an .npz of its fields: how the
detectors' fitted state is kept, never pickled."""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Yield a scratch path beside `path`; when the block ends without error, rename it to
    `path` (atomic on one file system); the scratch file never outlives the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
    scratch.unlink(missing_ok=True)  # a leftover of a writer with the same pid that died
    try:
        yield scratch
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file at `path` (made if absent) for the block: processes
    of one machine, or of nodes sharing its folder, pass one at a time."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        yield


def save_fields(value: Any, path: Path) -> Path:
    """The fields of the dataclass `value` as arrays of one .npz (`load_fields` reads them)."""
    np.savez(path, **{item.name: getattr(value, item.name) for item in dataclasses.fields(value)})
    return path


def load_fields(path: Path) -> dict[str, np.ndarray]:
    """name -> array of an .npz, without pickle: a saved file runs no code when read."""
    with np.load(path, allow_pickle=False) as saved:
        return {name: saved[name] for name in saved.files}
