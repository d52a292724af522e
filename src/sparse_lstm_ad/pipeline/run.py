"""`run_experiment`: one straight path from the data config to scores and MLflow metrics.

series -> standardise -> windows (rows.py) -> the detector of model.kind, fitted (fit.py;
       a reconstruction's errors -> their Gaussian: detectors/) -> per-row scores -> threshold
       -> metrics (scores.py) -> MLflow, with plots and the scoring model (outputs.py)
"""

from __future__ import annotations

import logging

import numpy as np

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import Config, ScoringConfig
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.data.sources import dataset_name, dataset_source
from sparse_lstm_ad.detectors import Fitted, family
from sparse_lstm_ad.fitting import StoppedBy, TrainingDiverged
from sparse_lstm_ad.metrics import auc_pr
from sparse_lstm_ad.pipeline.fit import format_figures, train_model
from sparse_lstm_ad.pipeline.outputs import log_outputs
from sparse_lstm_ad.pipeline.rows import injected_validation, prepare_rows
from sparse_lstm_ad.pipeline.scores import final_metrics, score_parts
from sparse_lstm_ad.pipeline.values import JobInfo, Rows, RunSummary
from sparse_lstm_ad.thresholds import alarm_shift, promised_share, thin_promise

log = logging.getLogger("sparse_lstm_ad.pipeline")  # the run's log: one stream of lines


def run_experiment(cfg: Config, job: JobInfo) -> RunSummary:
    family(cfg.model.kind)  # a kind no detector fits: one line, before anything runs
    rows = prepare_rows(cfg)  # before TensorFlow loads: a data mistake fails in a second
    windows = {  # built once: training and scoring take these, and rebuild none
        part: Windows(getattr(rows, part), cfg.data.window, cfg.data.stride)
        for part in ("train", "val", "test")
    }
    injected = injected_validation(cfg, rows)  # a selection's test of the fitted detector
    tags = {
        **tracking.git_tags(),
        tracking.SWEEP_TAG: job.sweep,
        "model": job.choices.get("model", cfg.model.kind),
        "data": dataset_name(cfg.data, job.choices.get("data")),
        tracking.IDENTITY_TAG: job.identity,
        **({"mlflow.parentRunId": job.parent_run_id} if job.parent_run_id else {}),
        **job.tags,
    }
    with tracking.tracked_run(cfg.tracking, job.run_name, tags) as run_id:
        tracking.log_params(job.config)
        tracking.log_files(job.config_files, "config")
        parts = {"training": rows.train, "validation": rows.val, "testing": rows.test}
        tracking.log_datasets(parts, rows.channels, tags["data"], dataset_source(cfg.data))
        fitted = _fit(cfg, rows, windows)
        scored = score_parts(fitted.detector, cfg, windows, injected)
        metrics = final_metrics(cfg, scored, rows, fitted)
        if injected is not None:
            metrics["injected_auc_pr"] = auc_pr(scored.injected, injected.all_labels)
            metrics["injected_seconds"] = scored.injected_seconds
        warn_of_shift(cfg.scoring, metrics["flagged_share"])
        warn_of_a_thin_promise(cfg.scoring, scored.val)
        tracking.log_metrics(metrics)
        history = fitted.fit.history
        log_outputs(cfg, fitted.detector, rows, scored, history, (tags["model"], tags["data"]))
        summary = RunSummary(run_id, metrics, tracking.artifact_uri())
        link = tracking.active_run_link(cfg.tracking)
    log.info("run %s finished: %s", run_id, format_figures(metrics))
    log.info("artifacts: %s", summary.artifact_uri)
    log.info("in the MLflow UI: %s", link)
    return summary


def _fit(cfg: Config, rows: Rows, windows: dict[str, Windows]) -> Fitted:
    """The fitted detector; how its fit stopped and how it scores, as tags."""
    try:
        fitted = train_model(cfg, rows.train, windows)
    except TrainingDiverged:
        tracking.set_tags({"stopped_by": StoppedBy.diverged.value})
        raise
    stopped = fitted.fit.stopped_by
    if tags := {**fitted.tags, **({"stopped_by": stopped.value} if stopped else {})}:
        tracking.set_tags(tags)
    return fitted


def warn_of_a_thin_promise(cfg: ScoringConfig, val_scores: np.ndarray) -> None:
    """One warning line when too few validation rows lie above the threshold for its promise
    to hold (a short CSV's validation part): expect more false alarms than it says."""
    if (expected := thin_promise(val_scores, cfg)) is None:
        return
    log.warning(
        "the threshold's promise (%.2g %% of normal rows flagged) rests on about %.1f of the "
        "validation rows above it: expect more false alarms than that; more validation rows "
        "(train.validation_split, or more training rows) firm it up",
        100 * promised_share(cfg),
        expected,
    )


def warn_of_shift(cfg: ScoringConfig, share: float) -> None:
    """A threshold that flags far more, or fewer, test rows than it promises says the test
    series is not distributed as the rows it was fitted on: one warning line and a tag."""
    if (shift := alarm_shift(share, cfg)) is None:
        return
    log.warning(
        "the threshold flags %.1f %% of the test rows where it promises %.2g %% of normal rows "
        "(%s): a shift of the test data from the training data, or anomalies in far more rows "
        "than usual; F1 at this threshold is not a verdict (scoring.calibrate_rows=1000 lets the "
        "threshold follow the scored series from its first rows)",
        100 * share,
        100 * promised_share(cfg),
        shift,
    )
    tracking.set_tags({"alarm_shift": shift})
