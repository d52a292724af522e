"""Which process and code a run comes from, which RUNNING runs still have a live process,
and the closing of those that do not.

A process that is SIGKILLed, loses its machine, or loses the tracking server cannot end its
own run. Each run therefore carries its process (host, pid) and a heartbeat tag its process
refreshes; any later command on the store closes as KILLED every RUNNING run, sweep parents
included, whose heartbeat is stale, or whose process on this host is gone. The pid alone
would not do: another host's pid means nothing here, and pids are reused.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.tracking.retries import retrying

log = logging.getLogger(__name__)

HEARTBEAT_TAG = "heartbeat"  # unix seconds, refreshed by the run's process while it lives
# Overridable for tests; a run is taken for dead after STALE_BEATS missed beats.
HEARTBEAT_S = float(os.environ.get("SPARSE_LSTM_AD_HEARTBEAT_S", "30"))
STALE_BEATS = 10


def git_tags() -> dict[str, str]:
    """The commit the code ran from, and whether the work tree had uncommitted changes: of
    the checkout this package is in (installed in place), wherever the command runs from (a
    run made from /tmp was tagged `unknown`, and reproduce then warned the code differed)."""
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10, cwd=package
        ).stdout.strip()

    try:
        # This file is in the checkout, not a copy installed in a venv an outer repo holds.
        git("ls-files", "--error-unmatch", "--", Path(__file__).name)
        dirty = bool(git("status", "--porcelain"))
        return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": str(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}


def process_tags() -> dict[str, str]:
    """Which process runs the job: lets a later command tell a dead run from a live one."""
    return {"host": socket.gethostname(), "pid": str(os.getpid()), HEARTBEAT_TAG: _now()}


def _now() -> str:
    return f"{time.time():.0f}"


class Heartbeat:
    """Refreshes a run's heartbeat tag from a daemon thread until stopped."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        client = MlflowClient()
        while not self._stop.wait(HEARTBEAT_S):
            try:
                client.set_tag(self.run_id, HEARTBEAT_TAG, _now())
            except Exception as error:  # a busy or absent store: the next beat tries again
                log.debug("heartbeat of run %s not written: %s", self.run_id, error)


@contextmanager
def heartbeat(run_id: str) -> Iterator[None]:
    beat = Heartbeat(run_id).start()
    try:
        yield
    finally:
        beat.stop()


def is_dead(tags: dict[str, str], now: float | None = None) -> bool:
    """A RUNNING run's process is gone: its pid on this host, or its heartbeat went quiet."""
    here = tags.get("host") == socket.gethostname()
    if here and not _alive(tags.get("pid")):
        return True
    try:
        last = float(tags[HEARTBEAT_TAG])
    except (KeyError, ValueError):  # a run from before heartbeats: only a dead pid tells
        return False
    # A stale beat also catches a pid reused by another process on this host.
    now = time.time() if now is None else now
    return now - last > HEARTBEAT_S * STALE_BEATS


def _alive(pid: str | None) -> bool:
    try:
        os.kill(int(pid or ""), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def close_dead_runs(experiment_ids: list[str]) -> list[str]:
    """Mark KILLED every RUNNING run of these experiments whose process is gone; their ids."""
    client = MlflowClient()
    running = retrying(
        client.search_runs,
        experiment_ids,
        filter_string="attributes.status = 'RUNNING'",
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=10_000,
    )
    closed = []
    for run in running:
        if run.info.run_id == _own_run_id() or not is_dead(run.data.tags):
            continue
        retrying(client.set_tag, run.info.run_id, "error", "its process died while it ran")
        retrying(client.set_terminated, run.info.run_id, status="KILLED")
        kind = "sweep parent run" if "sweep_parent" in run.data.tags else "run"
        log.warning("%s %s was left RUNNING by a dead process: KILLED", kind, run.info.run_id)
        closed.append(run.info.run_id)
    return closed


def _own_run_id() -> str | None:
    import mlflow

    run = mlflow.active_run()
    return None if run is None else run.info.run_id
