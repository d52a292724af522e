"""The only module that talks to MLflow: the store, a run's life, and what it logs."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig

log = logging.getLogger(__name__)

SWEEP_TAG = "sweep"
_PARAM_BATCH = 100  # MLflow's limit of params per log_params call


def tracking_uri(cfg: TrackingConfig) -> str:
    if cfg.uri:
        return cfg.uri
    return f"sqlite:///{(Path(cfg.dir) / 'mlflow.db').resolve()}"


def prepare_store(cfg: TrackingConfig) -> str:
    """Create the store and the experiment if needed; return the experiment id.

    Called once before any job: first writers racing on a fresh SQLite file were seen to
    break it, and racing `set_experiment` calls to file runs under "Default".
    """
    if not cfg.uri:
        Path(cfg.dir).mkdir(parents=True, exist_ok=True)
    # Schema migrations and model validation log at INFO on every run: noise in a sweep log.
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.pyfunc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    experiment = mlflow.get_experiment_by_name(cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None if cfg.uri else (Path(cfg.dir) / "artifacts").resolve().as_uri()
    return mlflow.create_experiment(cfg.experiment, artifact_location=artifacts)


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


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A run that ends FINISHED, FAILED (error recorded as a tag) or KILLED, never RUNNING."""
    experiment_id = prepare_store(cfg)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
    try:
        yield run.info.run_id
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException as error:
        mlflow.set_tag("error", f"{type(error).__name__}: {error}"[:5000])
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


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
        mlflow.log_params(dict(items[i : i + _PARAM_BATCH]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_files(paths: list[Path], artifact_path: str) -> None:
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


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
            for package in ("sparse-lstm-ad", "keras", "tensorflow-cpu", "mlflow", "pandas")
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
    """All runs of one multirun, oldest first, with their params, metrics and tags."""
    experiment_id = prepare_store(cfg)
    return mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.{SWEEP_TAG} = '{sweep}'",
        order_by=["attributes.start_time ASC"],
    )


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


def load_scoring_model(cfg: TrackingConfig, model_uri: str) -> Any:
    mlflow.set_tracking_uri(tracking_uri(cfg))
    return mlflow.pyfunc.load_model(model_uri)
