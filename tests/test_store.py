"""The tracking store under writers it cannot see die, and under parallel jobs, in process."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking.liveness import close_dead_runs
from sparse_lstm_ad.tracking.retries import free_interrupted_write
from tests.conftest import ROOT, store_runs


def test_a_run_on_another_host_is_closed_by_its_heartbeat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The pid of another host says nothing here: a heartbeat gone quiet does."""
    experiment = tracking.prepare_store(TrackingConfig(dir=str(tmp_path / "mlruns")))
    client = MlflowClient()
    ids = {}
    for name, beat in (("stale", "1"), ("fresh", "9e12")):
        tags = {"host": "another-host", "pid": "1", "heartbeat": beat}
        ids[name] = client.create_run(experiment, run_name=name, tags=tags).info.run_id
    assert close_dead_runs([experiment]) == [ids["stale"]]
    status = {r.info.run_name: r.info.status for r in store_runs(tmp_path / "mlruns")}
    assert status == {"stale": "KILLED", "fresh": "RUNNING"}
    assert f"run {ids['stale']} was left RUNNING by a dead process: KILLED" in caplog.text


@contextmanager
def ctrl_c_after_the_next_batch_write() -> Iterator[None]:
    """A KeyboardInterrupt as the next batch INSERT (a run's metrics) returns from SQLite,
    before its commit: where a Ctrl-C that comes as SQLite writes them is raised (CI saw one
    there). The batch's statement is left unfinished, and holds SQLite's write lock."""
    dialect = sqlalchemy.engine.default.DefaultDialect
    execute_many = dialect.do_executemany

    def interrupted(self: object, cursor: Any, statement: str, *args: Any) -> None:
        execute_many(self, cursor, statement, *args)
        if statement.lstrip().upper().startswith("INSERT"):
            dialect.do_executemany = execute_many  # once
            raise KeyboardInterrupt

    dialect.do_executemany = interrupted
    try:
        yield
    finally:
        dialect.do_executemany = execute_many


def writable(database: Path) -> bool:
    """Another connection can take the write lock within half a second."""
    with contextlib.closing(sqlite3.connect(database, timeout=0.5)) as connection:
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # database is locked
            return False
        connection.execute("ROLLBACK")
        return True


def test_ctrl_c_inside_a_write_leaves_the_store_writable(tmp_path: Path) -> None:
    """Without free_interrupted_write the interrupted write keeps SQLite's lock, and the
    run's KILLED waits it out retry after retry (minutes)."""
    # No system-metrics sampler: its batch writes, on its own thread, could take the interrupt.
    cfg = TrackingConfig(dir=str(tmp_path / "mlruns"), system_metrics=False)
    database = tmp_path / "mlruns" / "mlflow.db"
    metrics = {"loss": 1.0, "val_loss": 2.0}
    by_hand = tracking.tracked_run(cfg, "by hand", {})
    with pytest.raises(KeyboardInterrupt), by_hand, ctrl_c_after_the_next_batch_write():
        try:
            tracking.log_metrics(metrics, step=0)
        except KeyboardInterrupt as interrupt:
            assert not writable(database)  # the interrupted write holds the lock
            free_interrupted_write(interrupt)
            assert writable(database)
            raise
    # The same through a run alone: ended KILLED at once, the store free for the next command.
    alone = tracking.tracked_run(cfg, "interrupted", {})
    with pytest.raises(KeyboardInterrupt), alone, ctrl_c_after_the_next_batch_write():
        tracking.log_metrics(metrics, step=0)
    statuses = {r.info.run_name: r.info.status for r in store_runs(tmp_path / "mlruns")}
    assert statuses == {"by hand": "KILLED", "interrupted": "KILLED"} and writable(database)


def test_parallel_jobs_logging_the_same_datasets_all_link_them(tmp_path: Path) -> None:
    """Jobs of a parallel sweep on one data set log the same MLflow datasets at once: MLflow
    looks a dataset up and then inserts it, so all but one hit the UNIQUE constraint (5 of 8
    threads did before the store's retry counted it as transient). Every run gets its inputs."""
    experiment = tracking.prepare_store(TrackingConfig(dir=str(tmp_path / "mlruns")))
    rows = np.random.default_rng(0).normal(size=(200, 3))
    start, errors, runs = threading.Barrier(8), [], []

    def job() -> None:
        try:
            with mlflow.start_run(experiment_id=experiment) as run:
                runs.append(run.info.run_id)
                start.wait()
                parts = {"training": rows, "testing": rows + 1}
                tracking.log_datasets(parts, ["a", "b", "c"], "case", "generated:probe")
        except Exception as error:  # a thread's exception would otherwise only be printed
            errors.append(error)

    threads = [threading.Thread(target=job) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    client = MlflowClient()
    for run_id in runs:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert sorted(i.dataset.name for i in inputs) == ["case-testing", "case-training"]


def test_a_deleted_experiment_names_a_restore_command_that_works_as_printed(
    tmp_path: Path,
) -> None:
    cfg = TrackingConfig(dir=str(tmp_path / "mlruns"), experiment="plantexp")
    experiment = tracking.prepare_store(cfg)
    MlflowClient().delete_experiment(experiment)
    tracking.forget_stores()
    with pytest.raises(tracking.StoreError) as raised:
        tracking.prepare_store(cfg)
    command = re.search(r"restore it \((.+)\) or pick another name", str(raised.value))[1]
    elsewhere = tmp_path / "elsewhere"  # run from another folder: no ./mlruns, no ./mlflow.db
    elsewhere.mkdir()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the venv's mlflow
    env = {**os.environ, "PATH": path}
    env.pop("MLFLOW_TRACKING_URI", None)
    restored = subprocess.run(
        command, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert restored.returncode == 0, (command, restored.stderr[-2000:])
    assert list(elsewhere.iterdir()) == []
    tracking.forget_stores()
    assert tracking.prepare_store(cfg)  # the experiment is back


def test_the_code_version_is_the_packages_checkout_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from /tmp, a run was tagged git_commit=unknown and reproduce warned that the code
    differed: git was asked about the current folder, not the package's checkout."""
    import subprocess

    from sparse_lstm_ad.tracking.liveness import git_tags

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    monkeypatch.chdir(tmp_path)  # no repository here
    assert git_tags()["git_commit"] == head
