"""The run's scoring model in MLflow: logging it (from code, with the package inside it),
loading it, registering it.

A run's model is logged under a name that says what it is (`sparse-case2`), so the UI's
models are told apart; `runs:/RUN_ID/model` still names it, resolved through the run's
`scoring_model` tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking.retries import free_interrupted_write, retrying
from sparse_lstm_ad.tracking.store import (
    check_existing_store,
    check_model_name,
    experiment_names,
    tracking_uri,
)
from sparse_lstm_ad.tracking.store import use_store as _use_store

MODEL_TAG = "scoring_model"  # the logged model's name, on its run
PACKAGE = Path(__file__).resolve().parents[1]  # src/sparse_lstm_ad: carried inside the model
# What the model needs besides the package it carries: pinned to what trained it.
REQUIREMENTS = (
    "keras",
    "tensorflow-cpu",
    "mlflow",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "omegaconf",
)


def model_name(model: str, data: str) -> str:
    """`sparse-case2`: MLflow takes letters, digits, '-', '_' and '.' in a model's name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model}-{data}").strip("_")[:100]


def log_pyfunc_model(
    model_code: Path,
    artifacts: Mapping[str, Path],
    example: pd.DataFrame,
    output: pd.DataFrame,
    name: str,
) -> str:
    """Log the scoring model as `name` on the active run; returns its URI.

    Logged from code, not pickled: loading it never unpickles anything. The package goes
    with it (`code_paths`), so `mlflow models serve` and a fresh environment need no index
    that serves sparse-lstm-ad.
    """
    from mlflow.models import infer_signature

    info = retrying(
        mlflow.pyfunc.log_model,
        name=name,
        python_model=str(model_code),
        artifacts={key: str(path) for key, path in artifacts.items()},
        code_paths=[str(PACKAGE)],
        signature=infer_signature(example, output),
        input_example=example,
        # Naming the requirements spares MLflow from probing the environment for them.
        pip_requirements=[f"{package}=={_version(package)}" for package in REQUIREMENTS],
    )
    retrying(mlflow.set_tag, MODEL_TAG, name)
    return info.model_uri


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        if package != "tensorflow-cpu":
            raise
        # `make gpu` trades tensorflow-cpu for TensorFlow's CUDA build of the same version:
        # the model still needs only the CPU one to score.
        return version("tensorflow")


def resolved(model_uri: str) -> str:
    """`runs:/RUN_ID/model` -> `runs:/RUN_ID/<the run's model name>`; other URIs as given."""
    match = re.fullmatch(r"runs:/([0-9a-f]{32})/model", model_uri)
    if match is None:
        return model_uri
    try:
        tags = MlflowClient().get_run(match[1]).data.tags
    except mlflow.exceptions.MlflowException:
        return model_uri  # MLflow's own message about the run follows
    return f"runs:/{match[1]}/{tags.get(MODEL_TAG, 'model')}"


def register_model(
    cfg: TrackingConfig, run_id: str, name: str, tags: Mapping[str, str] | None = None
) -> str:
    """Register a run's scoring model as a new version of `name`, tagged `tags`; returns the
    version number.

    A register that fails leaves nothing behind: the run and its logged model are found
    before anything is created, and a registered model that this call created is deleted
    again when its version cannot be made (one that existed before is never touched).
    """
    if (reason := check_model_name(name)) is not None:
        raise LookupError(f"cannot register run {run_id}'s model as {name!r}: {reason}")
    model_id = _logged_model_id(cfg, run_id)
    client, created = MlflowClient(), False
    try:
        created = _create_registered_model(client, name)
        version = retrying(
            client.create_model_version,
            name,
            f"models:/{model_id}",
            run_id=run_id,
            tags=dict(tags or {}),
            model_id=model_id,
        )
    except BaseException as error:  # Ctrl-C included: the empty name goes as well
        if isinstance(error, KeyboardInterrupt):  # one inside a write holds SQLite's lock
            free_interrupted_write(error)
        left = created and not _undo_create(client, name)
        if not isinstance(error, mlflow.exceptions.MlflowException):
            raise
        note = f" (the registered model {name!r} it created is left, empty)" if left else ""
        raise LookupError(
            f"cannot register run {run_id}'s model: {_first_line(error)}{note}"
        ) from error
    return str(version.version)


def _logged_model_id(cfg: TrackingConfig, run_id: str) -> str:
    """The id of the run's READY scoring model; LookupError when the run or the model is not
    there. Creates nothing, not even a local store."""
    if not experiment_names(cfg):  # a local store not made yet holds no run: leave it unmade
        raise LookupError(f"cannot register run {run_id}'s model: {tracking_uri(cfg)} has no runs")
    _use_store(cfg)
    client = MlflowClient()
    try:
        run = retrying(client.get_run, run_id)
        if run.info.lifecycle_stage == "deleted":
            raise LookupError(f"cannot register run {run_id}'s model: the run is deleted")
        wanted = run.data.tags.get(MODEL_TAG, "model")
        outputs = sorted(run.outputs.model_outputs if run.outputs else [], key=lambda o: o.step)
        models = [retrying(client.get_logged_model, output.model_id) for output in outputs]
    except mlflow.exceptions.MlflowException as error:
        raise LookupError(f"cannot register run {run_id}'s model: {_first_line(error)}") from error
    ready = [m for m in models if m.name == wanted and m.status == LoggedModelStatus.READY]
    if not ready:
        raise LookupError(f"cannot register run {run_id}'s model: it logged no model {wanted!r}")
    return ready[-1].model_id  # the last step's, as mlflow.register_model chooses


def _create_registered_model(client: MlflowClient, name: str) -> bool:
    """Create `name` in the registry; False when it was there already."""
    try:
        retrying(client.create_registered_model, name)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            return False
        raise
    return True


def _undo_create(client: MlflowClient, name: str) -> bool:
    """Delete `name`, which this call created, unless another writer has since given it a
    version (deleting a registered model deletes its versions); False if it could not be."""
    try:
        if not retrying(client.get_registered_model, name).latest_versions:
            retrying(client.delete_registered_model, name)
    except Exception:  # the error that brought us here is the one to tell
        return False
    return True


def _first_line(error: mlflow.exceptions.MlflowException) -> str:
    return (error.message.strip() or repr(error)).splitlines()[0]


def load_scoring_model(cfg: TrackingConfig, model_uri: str) -> Any:
    """The logged scoring model; LookupError in one line when the URI names none."""
    check_existing_store(cfg)
    _use_store(cfg)
    try:
        return mlflow.pyfunc.load_model(resolved(model_uri))
    except mlflow.exceptions.MlflowException as error:
        first_line = (error.message.strip() or repr(error)).splitlines()[0]
        raise LookupError(f"cannot load the model {model_uri}: {first_line}") from error
