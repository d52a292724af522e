"""One run, from the data config to scores and MLflow metrics, read as the diagram:

    rows.py     series -> standardise -> train / validation / test rows (values.Rows)
    fit.py      windows -> the detector of model.kind, fitted (detectors/: for a network, its
                errors' Gaussian too; refits of a closed sparse layer)
    scores.py   the detector's per-row scores of each part (values.Scored) -> threshold
                -> metrics
    outputs.py  plots, the scores tables, the scoring model
    run.py      `run_experiment`: the above in order, inside one MLflow run

and `sweep_selection.py`: a selection sweep's verdict on its parent run.
"""

from sparse_lstm_ad.pipeline.fit import train_model
from sparse_lstm_ad.pipeline.rows import injected_validation, prepare_rows
from sparse_lstm_ad.pipeline.run import run_experiment
from sparse_lstm_ad.pipeline.scores import final_metrics, score_parts
from sparse_lstm_ad.pipeline.values import JobInfo, Rows, RunSummary, Scored

__all__ = [
    "JobInfo",
    "Rows",
    "RunSummary",
    "Scored",
    "final_metrics",
    "injected_validation",
    "prepare_rows",
    "run_experiment",
    "score_parts",
    "train_model",
]
