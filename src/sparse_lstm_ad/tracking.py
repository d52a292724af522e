"""The only modules that talk to MLflow: this one (a run's life and what it logs) and the
`tracking_*` modules it gathers (the store, liveness of runs, sweeps). Callers import this one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking_liveness import Heartbeat, git_tags, heartbeat, process_tags
from sparse_lstm_ad.tracking_store import (
    StoreError,
    check_model_name,
    check_store,
    experiment_names,
    is_unreachable,
    prepare_store,
    quiet_mlflow,
    retrying,
    store_error,
    tracking_uri,
)
from sparse_lstm_ad.tracking_sweeps import (
    IDENTITY_TAG,
    PARENT_TAG,
    SWEEP_TAG,
    abandon_sweep,
    child_runs,
    end_sweep,
    log_best_trial,
    log_files_to,
    note_job,
    noted_jobs,
    runs_by_id,
    search,
    sweep_parent,
    sweep_results,
    sweep_runs,
)
from sparse_lstm_ad.tracking_sweeps import start_sweep as _start_sweep

__all__ = [
    "IDENTITY_TAG",
    "PARENT_TAG",
    "SWEEP_TAG",
    "Heartbeat",
    "StoreError",
    "abandon_sweep",
    "check_model_name",
    "check_store",
    "child_runs",
    "end_sweep",
    "experiment_names",
    "git_tags",
    "log_best_trial",
    "log_files_to",
    "note_job",
    "noted_jobs",
    "prepare_store",
    "runs_by_id",
    "sweep_parent",
    "sweep_results",
    "sweep_runs",
    "tracking_uri",
]

log = logging.getLogger(__name__)

_PARAM_BATCH = 100  # MLflow's limit of params per log_params call
INTERRUPTED: list[str] = []  # runs this process ended KILLED on Ctrl-C or SIGTERM, in order


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A run that ends FINISHED, FAILED (error recorded as a tag) or KILLED, never RUNNING.

    FINISHED is set last, after every artifact was logged. A run that cannot be ended (the
    store went away) is closed by the next command on the store, its heartbeat gone quiet.
    """
    experiment_id = prepare_store(cfg)
    run = retrying(
        mlflow.start_run,
        experiment_id=experiment_id,
        run_name=run_name,
        tags={**tags, **process_tags()},
    )
    run_id = run.info.run_id
    try:
        with heartbeat(run_id):
            yield run_id
    except KeyboardInterrupt:
        INTERRUPTED.append(run_id)
        _end(run_id, "KILLED", "interrupted (Ctrl-C or SIGTERM)")
        raise
    except BaseException as error:
        _end(run_id, "FAILED", f"{type(error).__name__}: {error}"[:5000])
        if is_unreachable(error):  # one line for the store, not a traceback through MLflow
            raise store_error(cfg, error) from error
        raise
    try:
        _end(run_id, "FINISHED", None, quiet=False)
    except Exception as error:  # the store went away at the very end
        raise store_error(cfg, error) from error


def _end(run_id: str, status: str, error: str | None, quiet: bool = True) -> None:
    """End the active run; with `quiet`, a store that cannot be written is logged, not raised,
    so that the error that ended the run is the one reported."""
    client = MlflowClient()
    try:
        if error is not None:
            retrying(client.set_tag, run_id, "error", error)
        try:
            mlflow.end_run(status)  # takes the run off MLflow's stack before it writes
        except Exception:
            retrying(client.set_terminated, run_id, status=status)
    except Exception as failure:
        if not quiet:
            raise
        first_line = (str(failure).strip() or repr(failure)).splitlines()[0]
        log.error(
            "run %s could not be marked %s (%s): the next command on this store closes it",
            run_id,
            status,
            first_line,
        )


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
        retrying(mlflow.log_params, dict(items[i : i + _PARAM_BATCH]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    retrying(mlflow.log_metrics, {k: float(v) for k, v in metrics.items()}, step=step)


def set_tags(tags: Mapping[str, str]) -> None:
    retrying(mlflow.set_tags, dict(tags))


def log_files(paths: list[Path], artifact_path: str) -> None:
    for path in paths:
        retrying(mlflow.log_artifact, str(path), artifact_path=artifact_path)


def log_pyfunc_model(
    model_code: Path, artifacts: Mapping[str, Path], example: pd.DataFrame, output: pd.DataFrame
) -> str:
    """Log the scoring model under `model`; returns its URI for mlflow.pyfunc.load_model.

    Logged from code, not pickled: loading it never unpickles anything.
    """
    from mlflow.models import infer_signature

    info = retrying(
        mlflow.pyfunc.log_model,
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


def run_status(cfg: TrackingConfig, run_id: str) -> str:
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return retrying(MlflowClient().get_run, run_id).info.status


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
    if (reason := check_model_name(name)) is not None:
        raise LookupError(f"cannot register run {run_id}'s model as {name!r}: {reason}")
    try:
        return retrying(mlflow.register_model, f"runs:/{run_id}/model", name).version
    except mlflow.exceptions.MlflowException as error:
        raise LookupError(f"cannot register run {run_id}'s model: {error.message}") from error


def load_scoring_model(cfg: TrackingConfig, model_uri: str) -> Any:
    """The logged scoring model; LookupError in one line when the URI names none."""
    quiet_mlflow()
    check_store(cfg)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    try:
        return mlflow.pyfunc.load_model(model_uri)
    except mlflow.exceptions.MlflowException as error:
        first_line = (error.message.strip() or repr(error)).splitlines()[0]
        raise LookupError(f"cannot load the model {model_uri}: {first_line}") from error


def finished_run(cfg: TrackingConfig, identity: str) -> LoggedRun | None:
    """The newest FINISHED run that computed the same config, if any."""
    runs = search(cfg, f"tags.{IDENTITY_TAG} = '{identity}' and attributes.status = 'FINISHED'")
    if runs.empty:
        return None
    row = runs.iloc[-1]
    metrics = {k.removeprefix("metrics."): v for k, v in row.items() if k.startswith("metrics.")}
    tags = {k.removeprefix("tags."): v for k, v in row.items() if k.startswith("tags.")}
    return LoggedRun(row["run_id"], tags.get("mlflow.runName", ""), "FINISHED", metrics, tags, "")


def start_sweep(cfg: TrackingConfig, sweep: str, name: str) -> str:
    """Open the parent run that groups a multirun's jobs; returns its id."""
    return _start_sweep(cfg, sweep, name, git_tags())
