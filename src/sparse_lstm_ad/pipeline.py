"""`run_experiment`: one straight path from the data config to scores and MLflow metrics.

series -> standardise -> windows -> model -> fit -> reconstruction errors
       -> error model (mu, inverse covariance) -> per-row scores -> metrics -> MLflow
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sparse_lstm_ad import tracking
from sparse_lstm_ad.attribution import attribution_metrics
from sparse_lstm_ad.baselines import ForestScorer, WindowMahalanobis
from sparse_lstm_ad.config import (
    NETWORK_KINDS,
    Config,
    FitOn,
    ScoringConfig,
    ScoringScope,
)
from sparse_lstm_ad.config_checks import ConfigError
from sparse_lstm_ad.data import Standardizer, Windows, fit_standardizer
from sparse_lstm_ad.data.sources import (
    dataset_name,
    dataset_source,
    load_series,
    split_validation,
)
from sparse_lstm_ad.detectors import (
    WindowErrorScorer,
    fit_window_error_scorer,
    reconstructor_of,
    scope_tag,
    score_windows_with,
    scoring_scope,
    sparse_layer_metrics,
)
from sparse_lstm_ad.error_scores import ErrorModel, RowScores, error_moments
from sparse_lstm_ad.fit_detector import format_figures, train_model
from sparse_lstm_ad.fitting import raise_if_diverged
from sparse_lstm_ad.injection import Injected, inject_anomalies
from sparse_lstm_ad.metrics import auc_pr, evaluate, evaluate_ranges
from sparse_lstm_ad.run_outputs import has_contributions, log_outputs
from sparse_lstm_ad.thresholds import (
    alarm_shift,
    best_f1,
    choose_threshold,
    flagged_share,
    promised_share,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobInfo:
    """What the launcher knows about this job, handed down by the CLI."""

    run_name: str
    config: dict[str, Any]  # the resolved config, logged as params
    config_files: list[Path] = field(default_factory=list)  # composed config, overrides
    sweep: str = ""  # the multirun this job belongs to, "" for a single run
    choices: dict[str, str] = field(default_factory=dict)  # config group -> option chosen
    tags: dict[str, str] = field(default_factory=dict)  # any further tags for the run
    identity: str = ""  # config hash: what the run computes (see config.config_identity)
    parent_run_id: str | None = None  # the sweep's parent run


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    metrics: dict[str, float]
    artifact_uri: str


@dataclass(frozen=True)
class Rows:
    """The standardised series, split into the three parts a run uses."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray | None
    channels: list[str]
    standardizer: Standardizer
    test_channel_labels: np.ndarray | None = None  # (test rows, channels): who is to blame
    test_times: Any = None  # a pandas Series: the test rows' time column, if the data has one


@dataclass(frozen=True)
class Scored:
    val: np.ndarray  # per validation row
    test: np.ndarray  # per test row
    test_contributions: np.ndarray  # (test rows, channels): shares of the squared score
    threshold: float
    error_model: ErrorModel | None  # None: a detector that scores rows itself (iforest)
    reconstruction_mse: dict[str, float]
    window_errors: WindowMahalanobis | None = None  # the error model of scoring.scope=window
    injected: np.ndarray | None = None  # per row of the injected validation copies (selection)
    injected_seconds: float = 0.0  # spent scoring them


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


def injected_validation(cfg: Config, rows: Rows) -> Injected | None:
    """With `selection.enabled`: the validation rows with anomalies injected, the same for
    every candidate of a data set and seed; never the training rows, never a test label."""
    if not cfg.selection.enabled:
        return None
    return inject_anomalies(rows.val, cfg.selection, gap=cfg.data.window, seed=cfg.seed)


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


def prepare_rows(cfg: Config) -> Rows:
    series = load_series(cfg.data)
    standardizer = fit_standardizer(series.train, series.channels)
    train, val = split_validation(standardizer.transform(series.train), cfg.train.validation_split)
    test = standardizer.transform(series.test)
    shortest = min(len(train), len(val), len(test))
    if cfg.data.window > shortest:
        raise ConfigError(
            f"data.window={cfg.data.window} is longer than the shortest part of the series "
            f"({shortest} rows; train {len(train)}, validation {len(val)}, test {len(test)})"
        )
    return Rows(
        train,
        val,
        test,
        series.test_labels,
        series.channels,
        standardizer,
        series.test_channel_labels,
        series.test_times,
    )


def score_parts(
    model: Any,
    cfg: Config,
    rows: Rows,
    windows: dict[str, Windows],
    injected: Injected | None = None,
) -> Scored:
    """Fit the error model on normal errors, then score validation and test rows (and the
    injected copies of a selection, each alone: no window spans two).

    Per step, batch by batch: no part's errors are ever held whole (error_scores.ErrorMoments).
    By window, the normal windows' flattened errors are held once (at most 2,048 values each).
    """
    detector, error_model, mse = model, None, {}
    normal = "train" if cfg.scoring.fit_on == FitOn.train else "val"
    reconstructs = not isinstance(model, ForestScorer | WindowMahalanobis)
    if reconstructs and scoring_scope(cfg, len(rows.channels)) == ScoringScope.window:
        detector = fit_window_error_scorer(model, cfg, windows[normal])
        parts = ("train", "val", "test")
        mse = {p: error_moments(windows[p].view, detector.reconstruct).mse for p in parts}
    elif reconstructs:  # fit the error model of its step errors
        detector = reconstructor_of(model)
        moments = {p: error_moments(windows[p].view, detector) for p in {"train", normal}}
        error_model = moments[normal].error_model(cfg.scoring.inverse, cfg.scoring.shrinkage)
        mse["train"] = moments["train"].mse
    scored = {}
    for part in ("val", "test"):
        scored[part], part_mse = score_windows_with(detector, windows[part], error_model)
        mse.setdefault(part, part_mse)
    if not reconstructs:
        mse = {}
    result = _scored(scored, cfg.scoring, error_model, mse)
    if injected is not None:
        started = time.perf_counter()
        copies = [Windows(c, cfg.data.window, cfg.data.stride) for c in injected.copies]
        parts = [score_windows_with(detector, w, error_model)[0].scores for w in copies]
        seconds = time.perf_counter() - started  # what the selection adds to a run
        result = replace(result, injected=np.concatenate(parts), injected_seconds=seconds)
    if isinstance(detector, WindowErrorScorer):
        result = replace(result, window_errors=detector.errors)
    return result


def _scored(
    scored: dict[str, RowScores],
    cfg: ScoringConfig,
    error_model: ErrorModel | None,
    mse: dict[str, float],
) -> Scored:
    return Scored(
        val=scored["val"].scores,
        test=scored["test"].scores,
        test_contributions=scored["test"].contributions,
        threshold=choose_threshold(scored["val"].scores, scored["test"].scores, cfg),
        error_model=error_model,
        reconstruction_mse=mse,
    )


def final_metrics(cfg: Config, scored: Scored, rows: Rows, fit: Any) -> dict[str, float]:
    metrics = {f"{part}_reconstruction_mse": mse for part, mse in scored.reconstruction_mse.items()}
    metrics.update(fit_seconds=fit.seconds, threshold=scored.threshold)
    metrics["flagged_share"] = flagged_share(scored.test, scored.threshold)
    if fit.stopped_by is not None:
        metrics.update(epochs_run=fit.epochs_run, best_epoch=fit.best_epoch)
    if rows.test_labels is not None:
        metrics.update(evaluate(scored.test, rows.test_labels, scored.threshold).as_dict())
        # Sees the test labels: an upper bound for any threshold, never a result.
        metrics["f1_best_oracle"] = best_f1(scored.test, rows.test_labels)
        # VUS and point-adjusted F1, always beside the point-wise F1 above, never alone.
        ranges = evaluate_ranges(
            scored.test, rows.test_labels, scored.threshold, max_buffer=cfg.scoring.vus_max_buffer
        )
        metrics.update(ranges.as_dict())
    if rows.test_channel_labels is not None and has_contributions(scored):
        metrics.update(attribution_metrics(scored.test_contributions, rows.test_channel_labels))
    return metrics
