"""A busy store, told apart from a broken one, and the calls retried while it is busy: what
every module that writes to the store shares (store set-up, liveness, runs, sweeps, models)."""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from typing import Any

_RETRIES = 10
# Messages of errors that pass: another writer holds SQLite. A tracking server that does
# not answer is retried by MLflow's HTTP client (MLFLOW_HTTP_REQUEST_MAX_RETRIES, 7 by
# default, with backoff: about two minutes); retrying each of its retries would take hours.
_TRANSIENT = ("database is locked", "database table is locked", "busy")


def is_transient(error: BaseException) -> bool:
    """A busy store, or a dataset another job inserted first: MLflow's store looks a dataset
    up, then inserts it, so parallel jobs on one data set race on `log_input` and all but one
    hit the table's UNIQUE constraint (5 of 8 threads on one SQLite store; a Ray sweep's job
    through a server). Asked again, the store finds the dataset and only links it."""
    text = str(error).lower()
    raced = "unique constraint" in text and "datasets" in text
    return raced or any(word in text for word in _TRANSIENT)


def retrying(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call, retrying with jittered backoff (about 50 s in all) while the store is busy."""
    for attempt in range(_RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if not is_transient(error) or attempt == _RETRIES - 1:
                raise
            time.sleep(min(0.05 * 2**attempt, 10.0) * (1 + random.random()))
    raise AssertionError("unreachable")


def free_interrupted_write(interrupt: BaseException) -> None:
    """Let the store be written again after Ctrl-C or SIGTERM landed inside a write.

    The interrupt can come between SQLite running a statement and its commit. SQLAlchemy then
    closes that connection, but the statement is still held by the interrupt's traceback, and
    SQLite keeps a closed connection with a live statement open, its write lock held. Every
    later write, the run's own KILLED included, then waits out busy_timeout (20 s) on each of
    its retries: minutes. Clearing the frames frees the statement; the write is rolled back.
    """
    traceback.clear_frames(interrupt.__traceback__)
