"""The only module that talks to MLflow: the store, a run's life, and what it logs."""

from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig

log = logging.getLogger(__name__)

SWEEP_TAG = "sweep"  # on each job's run: the multirun directory
PARENT_TAG = "sweep_parent"  # on a sweep's parent run: the multirun directory
IDENTITY_TAG = "config_hash"  # what a run computes; equal hashes, equal runs
_PARAM_BATCH = 100  # MLflow's limit of params per log_params call
_LOCK_RETRIES = 8


class StoreError(RuntimeError):
    """The tracking store cannot be reached, created or written."""


def _retrying(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call, retrying with jittered backoff while the store reports a lock (busy SQLite)."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if "locked" not in str(error).lower() or attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def tracking_uri(cfg: TrackingConfig) -> str:
    if cfg.uri:
        return cfg.uri
    return f"sqlite:///{(Path(cfg.dir) / 'mlflow.db').resolve()}"


def prepare_store(cfg: TrackingConfig) -> str:
    """Create the store and the experiment if needed; return the experiment id.

    Called once before any job: first writers racing on a fresh SQLite file were seen to
    break it, and racing `set_experiment` calls to file runs under "Default".
    """
    check_store(cfg)
    _no_progress_bars()
    # Schema migrations and model validation log at INFO on every run: noise in a sweep log.
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.pyfunc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    try:
        experiment = _retrying(mlflow.get_experiment_by_name, cfg.experiment)
        if experiment is not None:
            return experiment.experiment_id
        artifacts = None if cfg.uri else (Path(cfg.dir) / "artifacts").resolve().as_uri()
        return _retrying(mlflow.create_experiment, cfg.experiment, artifact_location=artifacts)
    except Exception as error:  # MLflow and SQLAlchemy raise many types for a bad store
        raise _store_error(cfg, error) from error


def _store_error(cfg: TrackingConfig, error: Exception) -> StoreError:
    first_line = (str(error).strip() or repr(error)).splitlines()[0]
    return StoreError(f"tracking store {tracking_uri(cfg)} cannot be used: {first_line}")


def experiment_names(cfg: TrackingConfig) -> list[str]:
    """The store's active experiments; [] for a local store not created yet (nor created here)."""
    if not cfg.uri and not (Path(cfg.dir) / "mlflow.db").exists():
        return []
    check_store(cfg)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    try:
        return [experiment.name for experiment in _retrying(mlflow.search_experiments)]
    except Exception as error:  # as in prepare_store: many types for a bad store
        raise _store_error(cfg, error) from error


def check_store(cfg: TrackingConfig) -> None:
    """Fail fast, in one line, when the store is unreachable or cannot be created."""
    if cfg.uri and cfg.uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{cfg.uri.rstrip('/')}/health", timeout=5).close()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise StoreError(f"tracking.uri={cfg.uri} is not reachable: {reason}") from error
    elif not cfg.uri:
        folder = Path(cfg.dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise PermissionError(13, "not writable")
        except OSError as error:
            raise StoreError(
                f"tracking.dir={cfg.dir} cannot hold the store: {error.strerror or error}"
            ) from error


def git_tags() -> dict[str, str]:
    """The commit the code ran from, and whether the work tree had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        dirty = bool(git("status", "--porcelain"))
        return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": str(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}


def process_tags() -> dict[str, str]:
    """Which process runs the job: lets a later sweep tell a dead run from a live one."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A run that ends FINISHED, FAILED (error recorded as a tag) or KILLED, never RUNNING.

    FINISHED is set last, after every artifact was logged.
    """
    experiment_id = prepare_store(cfg)
    run = _retrying(
        mlflow.start_run,
        experiment_id=experiment_id,
        run_name=run_name,
        tags={**tags, **process_tags()},
    )
    try:
        yield run.info.run_id
    except KeyboardInterrupt:
        _retrying(mlflow.set_tag, "error", "interrupted (Ctrl-C or SIGTERM)")
        _retrying(mlflow.end_run, status="KILLED")
        raise
    except BaseException as error:
        _retrying(mlflow.set_tag, "error", f"{type(error).__name__}: {error}"[:5000])
        _retrying(mlflow.end_run, status="FAILED")
        raise
    _retrying(mlflow.end_run, status="FINISHED")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_params(config: Mapping[str, Any]) -> None:
    items = list(flatten(config).items())
    for i in range(0, len(items), _PARAM_BATCH):
        _retrying(mlflow.log_params, dict(items[i : i + _PARAM_BATCH]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    _retrying(mlflow.log_metrics, {k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, str]) -> None:
    _retrying(mlflow.set_tags, dict(tags))


def log_files(paths: list[Path], artifact_path: str) -> None:
    for path in paths:
        _retrying(mlflow.log_artifact, str(path), artifact_path=artifact_path)


def log_pyfunc_model(
    model_code: Path, artifacts: Mapping[str, Path], example: pd.DataFrame, output: pd.DataFrame
) -> str:
    """Log the scoring model under `model`; returns its URI for mlflow.pyfunc.load_model.

    Logged from code, not pickled: loading it never unpickles anything.
    """
    from mlflow.models import infer_signature

    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(model_code),
        artifacts={key: str(path) for key, path in artifacts.items()},
        signature=infer_signature(example, output),
        input_example=example,
        # Naming the requirements spares MLflow from probing the environment for them.
        pip_requirements=[
            f"{package}=={_version(package)}"
            for package in (
                "sparse-lstm-ad",
                "keras",
                "tensorflow-cpu",
                "mlflow",
                "pandas",
                "scikit-learn",
            )
        ],
    )
    return info.model_uri


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def artifact_uri() -> str:
    return mlflow.get_artifact_uri()


def sweep_runs(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """All job runs of one multirun, oldest first, with their params, metrics and tags."""
    return _search(cfg, f"tags.{SWEEP_TAG} = '{sweep}'")


def run_status(cfg: TrackingConfig, run_id: str) -> str:
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return MlflowClient().get_run(run_id).info.status


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    name: str
    status: str
    metrics: dict[str, float]
    tags: dict[str, str]
    config_yaml: str  # the composed config the run logged


def load_run(cfg: TrackingConfig, run_id: str) -> LoggedRun:
    """A run's record and its logged config; a clear error when either is missing."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    try:
        run = MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        raise LookupError(f"run {run_id} is not in {tracking_uri(cfg)}") from error
    try:
        config_yaml = mlflow.artifacts.load_text(f"runs:/{run_id}/config/config.yaml")
    except Exception as error:  # MLflow raises several types for a missing artifact
        raise LookupError(f"run {run_id} has no config/config.yaml artifact") from error
    return LoggedRun(
        run_id=run_id,
        name=run.info.run_name,
        status=run.info.status,
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        config_yaml=config_yaml,
    )


def register_model(cfg: TrackingConfig, run_id: str, name: str) -> str:
    """Register a run's scoring model; returns the new version number."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    try:
        return mlflow.register_model(f"runs:/{run_id}/model", name).version
    except mlflow.exceptions.MlflowException as error:
        raise LookupError(f"cannot register run {run_id}'s model: {error.message}") from error


def _no_progress_bars() -> None:
    # Progress bars of artifact transfers would fill every job's log and every command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def load_scoring_model(cfg: TrackingConfig, model_uri: str) -> Any:
    _no_progress_bars()
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return mlflow.pyfunc.load_model(model_uri)


def finished_run(cfg: TrackingConfig, identity: str) -> LoggedRun | None:
    """The newest FINISHED run that computed the same config, if any."""
    runs = _search(cfg, f"tags.{IDENTITY_TAG} = '{identity}' and attributes.status = 'FINISHED'")
    if runs.empty:
        return None
    row = runs.iloc[-1]
    metrics = {k.removeprefix("metrics."): v for k, v in row.items() if k.startswith("metrics.")}
    tags = {k.removeprefix("tags."): v for k, v in row.items() if k.startswith("tags.")}
    return LoggedRun(row["run_id"], tags.get("mlflow.runName", ""), "FINISHED", metrics, tags, "")


def close_orphans(cfg: TrackingConfig, identity: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this config whose process on this host is gone.

    A worker killed with SIGKILL cannot end its own run; the next sweep that wants the same
    config ends it for it.
    """
    runs = _search(cfg, f"tags.{IDENTITY_TAG} = '{identity}' and attributes.status = 'RUNNING'")
    closed = []
    client = MlflowClient()
    for _, row in runs.iterrows():
        if row.get("tags.host") != socket.gethostname() or _alive(row.get("tags.pid")):
            continue
        client.set_tag(row["run_id"], "error", "its process died (killed?) while it ran")
        client.set_terminated(row["run_id"], status="KILLED")
        closed.append(row["run_id"])
    return closed


def _alive(pid: str | None) -> bool:
    try:
        os.kill(int(pid or ""), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _search(cfg: TrackingConfig, filter_string: str) -> pd.DataFrame:
    experiment_id = prepare_store(cfg)
    return _retrying(
        mlflow.search_runs,
        experiment_ids=[experiment_id],
        filter_string=filter_string,
        order_by=["attributes.start_time ASC"],
    )


def start_sweep(cfg: TrackingConfig, sweep: str, name: str) -> str:
    """Open the parent run that groups a multirun's jobs; returns its id."""
    experiment_id = prepare_store(cfg)
    tags = {PARENT_TAG: sweep, **git_tags(), **process_tags()}
    run = _retrying(MlflowClient().create_run, experiment_id, tags=tags, run_name=name)
    return run.info.run_id


def sweep_results(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """One FINISHED run per config of a sweep, over every invocation of it.

    Jobs skipped on a re-run are answered by the earlier runs their parents point to.
    """
    parents = _search(cfg, f"tags.{PARENT_TAG} = '{sweep}'")
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
    runs = _search(cfg, f"tags.{PARENT_TAG} = '{sweep}'")
    return None if runs.empty else str(runs.iloc[-1]["run_id"])


def end_sweep(
    cfg: TrackingConfig, parent_id: str, counts: Mapping[str, int], files: list[Path]
) -> str:
    """Record the jobs' outcome on the parent and close it: FAILED if any job failed."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    client = MlflowClient()
    for key, value in counts.items():
        _retrying(client.log_metric, parent_id, f"jobs_{key}", value)
    for path in files:
        _retrying(client.log_artifact, parent_id, str(path), artifact_path="report")
    status = "FAILED" if counts.get("failed", 0) or counts.get("killed", 0) else "FINISHED"
    _retrying(client.set_terminated, parent_id, status=status)
    return status


def abandon_sweep(cfg: TrackingConfig, parent_id: str) -> None:
    """Close a parent run left open by an interrupted multirun."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    client = MlflowClient()
    if client.get_run(parent_id).info.status == "RUNNING":
        client.set_tag(parent_id, "error", "the multirun was interrupted")
        client.set_terminated(parent_id, status="KILLED")


def note_job(cfg: TrackingConfig, parent_id: str, outcome: str, job: str, detail: str) -> None:
    """Record on the parent how a job ended without a run of its own ("skipped", "failed").

    One tag per job, so parallel workers never overwrite each other.
    """
    mlflow.set_tracking_uri(tracking_uri(cfg))
    _retrying(MlflowClient().set_tag, parent_id, f"{outcome}.{job}", detail[:5000])


def noted_jobs(cfg: TrackingConfig, parent_id: str, outcome: str) -> dict[str, str]:
    """job number -> detail, for the jobs noted with this outcome."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    tags = MlflowClient().get_run(parent_id).data.tags
    prefix = f"{outcome}."
    return {
        key.removeprefix(prefix): value for key, value in tags.items() if key.startswith(prefix)
    }


def child_runs(cfg: TrackingConfig, parent_id: str) -> pd.DataFrame:
    """The job runs of one multirun invocation (a re-run of a sweep has a parent of its own)."""
    return _search(cfg, f"tags.mlflow.parentRunId = '{parent_id}'")


def runs_by_id(cfg: TrackingConfig, run_ids: list[str]) -> pd.DataFrame:
    if not run_ids:
        return pd.DataFrame()
    quoted = ", ".join(f"'{run_id}'" for run_id in sorted(set(run_ids)))
    return _search(cfg, f"attributes.run_id IN ({quoted})")


def log_files_to(cfg: TrackingConfig, run_id: str, paths: list[Path], artifact_path: str) -> None:
    """Log files to a run that is not the active one (a sweep's parent)."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    client = MlflowClient()
    for path in paths:
        _retrying(client.log_artifact, run_id, str(path), artifact_path=artifact_path)


def log_best_trial(
    cfg: TrackingConfig, parent_id: str, value: float, params: Mapping[str, Any]
) -> None:
    """A hyper-parameter search's best objective and the values that reached it."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    client = MlflowClient()
    _retrying(client.log_metric, parent_id, "best_value", value)
    for key, best in params.items():
        _retrying(client.set_tag, parent_id, f"best.{key}", str(best))
