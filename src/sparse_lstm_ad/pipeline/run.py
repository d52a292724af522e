"""`run_experiment`: one straight path from the data config to scores and MLflow metrics.

series -> standardise -> windows (rows.py) -> model -> fit (fit.py) -> reconstruction errors
       -> error model (mu, inverse covariance) -> per-row scores -> metrics (scores.py)
       -> MLflow, with plots and the scoring model (outputs.py)
"""

from __future__ import annotations

import logging

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import NETWORK_KINDS, Config, ScoringConfig
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.data.sources import dataset_name, dataset_source
from sparse_lstm_ad.detectors import scope_tag, sparse_layer_metrics
from sparse_lstm_ad.fitting import raise_if_diverged
from sparse_lstm_ad.metrics import auc_pr
from sparse_lstm_ad.pipeline.fit import format_figures, train_model
from sparse_lstm_ad.pipeline.outputs import log_outputs
from sparse_lstm_ad.pipeline.rows import injected_validation, prepare_rows
from sparse_lstm_ad.pipeline.scores import final_metrics, score_parts
from sparse_lstm_ad.pipeline.values import JobInfo, RunSummary
from sparse_lstm_ad.thresholds import alarm_shift, promised_share

log = logging.getLogger("sparse_lstm_ad.pipeline")  # the run's log: one stream of lines


def run_experiment(cfg: Config, job: JobInfo) -> RunSummary:
    rows = prepare_rows(cfg)  # before TensorFlow loads: a data mistake fails in a second
    if cfg.model.kind in NETWORK_KINDS:  # baselines never load TensorFlow
        from sparse_lstm_ad.training import make_repeatable  # TensorFlow loads here

        fresh_tensorflow(cfg.threads)
        make_repeatable(cfg.seed, cfg.train.deterministic)
    windows = {  # built once: training and scoring take these, and rebuild none
        part: Windows(getattr(rows, part), cfg.data.window, cfg.data.stride)
        for part in ("train", "val", "test")
    }
    injected = injected_validation(cfg, rows)  # a selection's test of the fitted detector
    tags = {
        **tracking.git_tags(),
        tracking.SWEEP_TAG: job.sweep,
        "model": job.choices.get("model", cfg.model.kind.value),
        "data": dataset_name(cfg.data, job.choices.get("data")),
        tracking.IDENTITY_TAG: job.identity,
        **scope_tag(cfg, len(rows.channels)),
        **({"mlflow.parentRunId": job.parent_run_id} if job.parent_run_id else {}),
        **job.tags,
    }
    with tracking.tracked_run(cfg.tracking, job.run_name, tags) as run_id:
        tracking.log_params(job.config)
        tracking.log_files(job.config_files, "config")
        parts = {"training": rows.train, "validation": rows.val, "testing": rows.test}
        tracking.log_datasets(parts, rows.channels, tags["data"], dataset_source(cfg.data))
        model, fit = train_model(cfg, rows.train, windows)
        if fit.stopped_by is not None:
            tracking.set_tags({"stopped_by": fit.stopped_by.value})
        raise_if_diverged(fit)
        scored = score_parts(model, cfg, rows, windows, injected)
        metrics = final_metrics(cfg, scored, rows, fit)
        if injected is not None:
            metrics["injected_auc_pr"] = auc_pr(scored.injected, injected.all_labels)
            metrics["injected_seconds"] = scored.injected_seconds
        warn_of_shift(cfg.scoring, metrics["flagged_share"])
        metrics.update(sparse_layer_metrics(cfg.model.kind, model, rows.test_channel_labels))
        tracking.log_metrics(metrics)
        log_outputs(cfg, model, rows, scored, fit.history, (tags["model"], tags["data"]))
        summary = RunSummary(run_id, metrics, tracking.artifact_uri())
        link = tracking.active_run_link(cfg.tracking)
    log.info("run %s finished: %s", run_id, format_figures(metrics))
    log.info("artifacts: %s", summary.artifact_uri)
    log.info("in the MLflow UI: %s", link)
    return summary


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


def fresh_tensorflow(threads: int) -> None:
    """A thread budget for TensorFlow: worker processes are reused between jobs.

    No `keras.backend.clear_session()`: in Keras 3 it holds no graph to clear, only name
    counters (our layers are named), and it clears TF's kernel caches, which re-instantiates
    the graphs a worker keeps for its next fit (graph_cache) at ~1 s a job.
    """
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TF already started in this process: the first job's limit holds
            log.debug("TensorFlow threads already fixed in this process")
