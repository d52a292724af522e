"""The tracking store under writers it cannot see die, and under parallel jobs, in process."""

from __future__ import annotations

import threading
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking.liveness import close_dead_runs
from tests.conftest import store_runs


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
