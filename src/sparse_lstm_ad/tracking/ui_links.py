"""Where an experiment's runs and a run are in the MLflow UI.

MLflow 3.17's UI opens every experiment on its GenAI view (traces, token usage, agent
versions) unless the link asks for the training runs (`workflowType=machine_learning`) or this
browser has clicked "Model training" before: the experiment's `mlflow.experimentKind` tag no
longer decides it (seen in a browser, 2026-12-04). So the commands print links that ask.
"""

from __future__ import annotations

from sparse_lstm_ad.config import TrackingConfig

UI_PORT = 5000  # `make ui`'s port (UI_PORT in the Makefile)
TRAINING_VIEW = "workflowType=machine_learning"


def ui_base(cfg: TrackingConfig) -> str:
    """A tracking server is its own UI; a local store is shown by `make ui` on this machine."""
    return (cfg.uri or "").rstrip("/") if cfg.is_server else f"http://127.0.0.1:{UI_PORT}"


def experiment_link(cfg: TrackingConfig, experiment_id: str) -> str:
    return f"{ui_base(cfg)}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"


def run_link(cfg: TrackingConfig, experiment_id: str, run_id: str) -> str:
    return f"{ui_base(cfg)}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"
