"""Files written whole or not at all: what a reader (a user, MLflow, another process) finds
at a path is either absent, the previous version, or complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
