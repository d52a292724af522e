"""Tables that compare the runs of a sweep, from what MLflow recorded."""

from __future__ import annotations

import pandas as pd

COLUMNS = {
    "tags.model": "model",
    "tags.data": "case",
    "status": "status",
    "metrics.auc_roc": "AUC-ROC",
    "metrics.auc_pr": "AUC-PR",
    "metrics.f1": "F1",
    "metrics.train_reconstruction_mse": "train MSE",
    "metrics.epochs_run": "epochs",
    "metrics.fit_seconds": "fit s",
}


def sweep_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: model, case, detection metrics, reconstruction MSE, epochs, seconds."""
    present = [column for column in COLUMNS if column in runs.columns]
    table = runs[present].rename(columns=COLUMNS)
    if "tags.mlflow.runName" in runs.columns:
        table.insert(0, "run", runs["tags.mlflow.runName"])
    return table.reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no runs recorded for this sweep)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def job_counts(runs: pd.DataFrame, noted: dict[str, int]) -> dict[str, int]:
    """How the sweep's jobs ended: the runs' statuses plus jobs noted on the parent run.

    A job is noted "failed" whatever the stage it failed at (some fail before their run
    starts) and "skipped" when an earlier run of its config had FINISHED.
    """
    statuses = runs["status"].value_counts() if not runs.empty else pd.Series(dtype=int)
    return {
        "finished": int(statuses.get("FINISHED", 0)),
        "failed": noted.get("failed", 0),
        "killed": int(statuses.get("KILLED", 0)),
        "skipped": noted.get("skipped", 0),
    }
