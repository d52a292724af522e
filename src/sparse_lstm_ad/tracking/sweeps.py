"""A multirun in MLflow: its parent run, how its jobs ended, and the runs it holds."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking.liveness import process_tags
from sparse_lstm_ad.tracking.retries import retrying
from sparse_lstm_ad.tracking.store import prepare_store, use_store

SWEEP_TAG = "sweep"  # on each job's run: the multirun directory
PARENT_TAG = "sweep_parent"  # on a sweep's parent run: the multirun directory
IDENTITY_TAG = "config_hash"  # what a run computes; equal hashes, equal runs


def search(cfg: TrackingConfig, filter_string: str) -> pd.DataFrame:
    experiment_id = prepare_store(cfg)
    return retrying(
        mlflow.search_runs,
        experiment_ids=[experiment_id],
        filter_string=filter_string,
        order_by=["attributes.start_time ASC"],
    )


def sweep_runs(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """All job runs of one multirun, oldest first, with their params, metrics and tags."""
    return search(cfg, f"tags.{SWEEP_TAG} = '{sweep}'")


def start_sweep(cfg: TrackingConfig, sweep: str, name: str, git: Mapping[str, str]) -> str:
    """Open the parent run that groups a multirun's jobs; returns its id."""
    experiment_id = prepare_store(cfg)
    tags = {PARENT_TAG: sweep, **git, **process_tags()}
    run = retrying(MlflowClient().create_run, experiment_id, tags=tags, run_name=name)
    return run.info.run_id


def sweep_results(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """One FINISHED run per config of a sweep, over every invocation of it.

    Jobs skipped on a re-run are answered by the earlier runs their parents point to.
    """
    parents = search(cfg, f"tags.{PARENT_TAG} = '{sweep}'")
    skipped = [
        value
        for column in parents.columns
        if column.startswith("tags.skipped.")
        for value in parents[column].dropna()
    ]
    runs = pd.concat([sweep_runs(cfg, sweep), runs_by_id(cfg, skipped)], ignore_index=True)
    if runs.empty:
        return runs
    done = runs[runs["status"] == "FINISHED"].sort_values("start_time")
    return done.drop_duplicates(f"tags.{IDENTITY_TAG}", keep="last").reset_index(drop=True)


def sweep_parent(cfg: TrackingConfig, sweep: str) -> str | None:
    runs = search(cfg, f"tags.{PARENT_TAG} = '{sweep}'")
    return None if runs.empty else str(runs.iloc[-1]["run_id"])


def end_sweep(
    cfg: TrackingConfig, parent_id: str, counts: Mapping[str, int], files: list[Path]
) -> str:
    """Record the jobs' outcome on the parent and close it: FAILED if any job failed."""
    use_store(cfg)
    client = MlflowClient()
    done = sum(counts.values())  # the step of the progress metrics' last point (progress_to)
    for key, value in counts.items():
        retrying(client.log_metric, parent_id, f"jobs_{key}", value, step=done)
    for path in files:
        retrying(client.log_artifact, parent_id, str(path), artifact_path="report")
    status = "FAILED" if counts.get("failed", 0) or counts.get("killed", 0) else "FINISHED"
    retrying(client.set_terminated, parent_id, status=status)
    return status


def abandon_sweep(cfg: TrackingConfig, parent_id: str, reason: str) -> bool:
    """Close a parent run left open by an interrupted multirun; False if it was not open."""
    use_store(cfg)
    client = MlflowClient()
    if retrying(client.get_run, parent_id).info.status != "RUNNING":
        return False
    retrying(client.set_tag, parent_id, "error", reason)
    retrying(client.set_terminated, parent_id, status="KILLED")
    return True


def note_job(cfg: TrackingConfig, parent_id: str, outcome: str, job: str, detail: str) -> None:
    """Record on the parent how a job ended without a run of its own ("skipped", "failed").

    One tag per job, so parallel workers never overwrite each other.
    """
    use_store(cfg)
    retrying(MlflowClient().set_tag, parent_id, f"{outcome}.{job}", detail[:5000])


def noted_jobs(cfg: TrackingConfig, parent_id: str, outcome: str) -> dict[str, str]:
    """job number -> detail, for the jobs noted with this outcome."""
    use_store(cfg)
    tags = retrying(MlflowClient().get_run, parent_id).data.tags
    prefix = f"{outcome}."
    return {
        key.removeprefix(prefix): value for key, value in tags.items() if key.startswith(prefix)
    }


def child_runs(cfg: TrackingConfig, parent_id: str) -> pd.DataFrame:
    """The job runs of one multirun invocation (a re-run of a sweep has a parent of its own)."""
    return search(cfg, f"tags.mlflow.parentRunId = '{parent_id}'")


def runs_by_id(cfg: TrackingConfig, run_ids: list[str]) -> pd.DataFrame:
    if not run_ids:
        return pd.DataFrame()
    quoted = ", ".join(f"'{run_id}'" for run_id in sorted(set(run_ids)))
    return search(cfg, f"attributes.run_id IN ({quoted})")


def log_files_to(cfg: TrackingConfig, run_id: str, paths: list[Path], artifact_path: str) -> None:
    """Log files to a run that is not the active one (a sweep's parent)."""
    use_store(cfg)
    client = MlflowClient()
    for path in paths:
        retrying(client.log_artifact, run_id, str(path), artifact_path=artifact_path)


def run_csv(cfg: TrackingConfig, run_id: str, artifact: str) -> pd.DataFrame:
    """A CSV a run logged (`scores/test_scores.csv`), read through the store: local or served."""
    import tempfile

    use_store(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = retrying(MlflowClient().download_artifacts, run_id, artifact, tmp)
        return pd.read_csv(path)


def run_tags(cfg: TrackingConfig, run_id: str) -> dict[str, str]:
    use_store(cfg)
    return dict(retrying(MlflowClient().get_run, run_id).data.tags)


def tag_run(cfg: TrackingConfig, run_id: str, tags: Mapping[str, str]) -> None:
    """Tags on a run that is not the active one (a sweep's parent)."""
    use_store(cfg)
    client = MlflowClient()
    for key, value in tags.items():
        retrying(client.set_tag, run_id, key, value)


def log_best_trial(
    cfg: TrackingConfig, parent_id: str, value: float, params: Mapping[str, Any]
) -> None:
    """A hyper-parameter search's best objective and the values that reached it."""
    use_store(cfg)
    client = MlflowClient()
    retrying(client.log_metric, parent_id, "best_value", value)
    for key, best in params.items():
        retrying(client.set_tag, parent_id, f"best.{key}", str(best))


@dataclass(frozen=True)
class EndedRun:
    """A job's run that is no longer RUNNING: how it ended and when (ms since the epoch)."""

    run_id: str
    status: str
    start_ms: int
    end_ms: int


def ended_job_runs(cfg: TrackingConfig, parent_id: str, since_ms: int = 0) -> list[EndedRun]:
    """The runs of one multirun invocation that ended at `since_ms` or later."""
    experiment_id = prepare_store(cfg)
    query = (
        f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status != 'RUNNING'"
        f" and attributes.end_time >= {since_ms}"
    )
    runs = retrying(MlflowClient().search_runs, [experiment_id], query, max_results=50_000)
    return [
        EndedRun(r.info.run_id, r.info.status, r.info.start_time, r.info.end_time or 0)
        for r in runs
    ]


def progress_to(
    cfg: TrackingConfig, parent_id: str, metrics: Mapping[str, float], step: int, text: str
) -> None:
    """A multirun's progress on its parent: metrics at step = jobs done, and a `progress` tag."""
    use_store(cfg)
    now = int(time.time() * 1000)
    points = [Metric(key, float(value), now, step) for key, value in metrics.items()]
    retrying(MlflowClient().log_batch, parent_id, metrics=points, tags=[RunTag("progress", text)])
