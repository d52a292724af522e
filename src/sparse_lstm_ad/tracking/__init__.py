"""Everything that talks to MLflow lives in this package: this module (a run's life and what it
logs) and the modules it gathers: `store` (where the store is, its creation), `retries` (a
busy store told apart and retried), `liveness` (heartbeats, closing dead runs), `sweeps` (a
multirun's parent and its runs) and `scoring_model` (the logged pyfunc model;
`pyfunc_model_code` is its entry point) and `ui_links` (where a run is in the MLflow UI).
Callers import this module, but for the few that need one name without MLflow's import
(`store.StoreError`, `store.cache_dir`) or the scoring model's own values (`scoring_model`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking.liveness import Heartbeat, git_tags, heartbeat, process_tags
from sparse_lstm_ad.tracking.logged_model import (
    load_scoring_model,
    log_pyfunc_model,
    model_name,
    register_model,
)
from sparse_lstm_ad.tracking.retries import free_interrupted_write, retrying
from sparse_lstm_ad.tracking.store import (
    StoreError,
    check_existing_store,
    check_model_name,
    check_store,
    close_dead,
    experiment_names,
    forget_stores,
    is_unreachable,
    prepare_store,
    require_experiment,
    store_error,
    tracking_uri,
    use_store,
)
from sparse_lstm_ad.tracking.sweeps import (
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
    run_csv,
    run_tags,
    runs_by_id,
    search,
    sweep_parent,
    sweep_results,
    sweep_runs,
    tag_run,
)
from sparse_lstm_ad.tracking.sweeps import start_sweep as _start_sweep
from sparse_lstm_ad.tracking.ui_links import experiment_link, run_link

__all__ = [
    "IDENTITY_TAG",
    "PARENT_TAG",
    "SWEEP_TAG",
    "Heartbeat",
    "StoreError",
    "abandon_sweep",
    "check_existing_store",
    "check_model_name",
    "check_store",
    "child_runs",
    "close_dead",
    "end_sweep",
    "experiment_names",
    "forget_stores",
    "free_interrupted_write",
    "git_tags",
    "load_scoring_model",
    "log_best_trial",
    "log_datasets",
    "log_files_to",
    "log_pyfunc_model",
    "model_name",
    "note_job",
    "noted_jobs",
    "prepare_store",
    "register_model",
    "require_experiment",
    "run_csv",
    "run_tags",
    "runs_by_id",
    "sweep_parent",
    "sweep_results",
    "sweep_runs",
    "tag_run",
    "tracking_uri",
    "use_store",
]

log = logging.getLogger(__name__)

SYSTEM_METRICS_SECONDS = 2
_PARAM_BATCH = 100  # MLflow's limit of params per log_params call
INTERRUPTED: list[str] = []  # runs this process ended KILLED on Ctrl-C or SIGTERM, in order


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A run that ends FINISHED, FAILED (error recorded as a tag) or KILLED, never RUNNING.

    FINISHED is set last, after every artifact was logged. A run that cannot be ended (the
    store went away) is closed by the next command on the store, its heartbeat gone quiet.
    """
    experiment_id = prepare_store(cfg)
    if cfg.system_metrics:  # MLflow's default, a sample every 10 s, misses most of our fits
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_SECONDS)
        mlflow.set_system_metrics_samples_before_logging(1)
    run = retrying(
        mlflow.start_run,
        experiment_id=experiment_id,
        run_name=run_name,
        tags={**tags, **process_tags()},
        log_system_metrics=cfg.system_metrics,
    )
    run_id = run.info.run_id
    try:
        with heartbeat(run_id):
            yield run_id
    except KeyboardInterrupt as interrupt:
        free_interrupted_write(interrupt)
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
    client, marked = MlflowClient(), False
    try:
        # First: MLflow takes the run off its stack before it writes. A run left there would
        # be ended FINISHED by MLflow's atexit, and the daemon's next command could not start.
        try:
            mlflow.end_run(status)
        except Exception:
            retrying(client.set_terminated, run_id, status=status)
        marked = True
        if error is not None:
            retrying(client.set_tag, run_id, "error", error)
    except Exception as failure:
        if not quiet:
            raise
        first_line = (str(failure).strip() or repr(failure)).splitlines()[0]
        if marked:
            log.error("run %s ended %s; its error tag not written (%s)", run_id, status, first_line)
        else:
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


def log_datasets(
    parts: Mapping[str, np.ndarray], channels: list[str], name: str, source: str
) -> None:
    """The run's training, validation and test rows as MLflow datasets (the UI's Datasets
    column): name, where they come from, a digest of their values, their channels."""
    import warnings

    from mlflow.data.code_dataset_source import CodeDatasetSource

    origin: Any = source
    if source.startswith("generated:"):  # made by a generator from its config: no file
        origin = CodeDatasetSource(tags={"generator": source.removeprefix("generated:")})
    for context, values in parts.items():
        frame = pd.DataFrame(values, columns=channels, copy=False)
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": a local file
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=origin, name=f"{name}-{context}")
        retrying(mlflow.log_input, dataset, context=context)


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def artifact_uri() -> str:
    return mlflow.get_artifact_uri()


def active_run_link(cfg: TrackingConfig) -> str:
    """The active run's page in the MLflow UI, on the training view."""
    info = mlflow.active_run().info
    return run_link(cfg, info.experiment_id, info.run_id)


def runs_link(cfg: TrackingConfig) -> str:
    """The experiment's runs in the MLflow UI, on the training view."""
    return experiment_link(cfg, prepare_store(cfg))


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
    check_existing_store(cfg)
    use_store(cfg)
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
