"""Sweep tables and best-run choice, from a hand-made frame shaped like mlflow.search_runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_lstm_ad.register import best_run
from sparse_lstm_ad.report import format_table, sweep_table

RUNS = pd.DataFrame(
    {
        "run_id": ["a", "b", "c"],
        "status": ["FINISHED", "FINISHED", "FAILED"],
        "tags.mlflow.runName": ["model=standard", "model=sparse", "model=sparse model.l1=1"],
        "tags.model": ["standard", "sparse", "sparse"],
        "tags.data": ["case2"] * 3,
        "metrics.auc_pr": [0.9, 0.95, np.nan],
        "metrics.val_reconstruction_mse": [0.8, 0.85, np.nan],
    }
)


def test_best_run_by_metric_skips_unfinished_runs() -> None:
    assert best_run(RUNS, "auc_pr", lowest=False) == "b"
    assert best_run(RUNS, "val_reconstruction_mse", lowest=True) == "a"
    with pytest.raises(LookupError, match="f1"):
        best_run(RUNS, "f1", lowest=False)


def test_sweep_table_names_runs_and_metrics() -> None:
    table = sweep_table(RUNS)
    assert list(table.columns) == ["run", "model", "case", "status", "AUC-PR"]
    assert table["AUC-PR"].tolist()[:2] == [0.9, 0.95]
    text = format_table(table)
    assert "model=sparse model.l1=1" in text and "FAILED" in text
    assert format_table(sweep_table(RUNS.iloc[0:0])) == "(no runs recorded for this sweep)"
