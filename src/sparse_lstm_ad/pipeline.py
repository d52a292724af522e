"""`run_experiment`: one straight path from the data config to scores and MLflow metrics.

series -> standardise -> windows -> model -> fit -> reconstruction errors
       -> error model (mu, inverse covariance) -> per-row scores -> metrics -> MLflow
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_lstm_ad import plots, tracking
from sparse_lstm_ad.config import Config, ConfigError, FitOn, ModelKind
from sparse_lstm_ad.data import Standardizer, fit_standardizer, make_windows, window_starts
from sparse_lstm_ad.data.sources import load_series, split_validation
from sparse_lstm_ad.metrics import (
    attribution_metrics,
    evaluate,
    evaluate_ranges,
    quantile_threshold,
)
from sparse_lstm_ad.scoring import ErrorModel, error_moments, score_windows

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


@dataclass(frozen=True)
class Scored:
    val: np.ndarray  # per validation row
    test: np.ndarray  # per test row
    test_contributions: np.ndarray  # (test rows, channels): shares of the squared score
    threshold: float
    error_model: ErrorModel
    reconstruction_mse: dict[str, float]


def run_experiment(cfg: Config, job: JobInfo) -> RunSummary:
    rows = prepare_rows(cfg)  # before TensorFlow loads: a data mistake fails in a second
    from sparse_lstm_ad.training import make_repeatable  # TensorFlow loads here, not on --help

    fresh_tensorflow(cfg.threads)
    make_repeatable(cfg.seed, cfg.train.deterministic)
    windows = {
        part: make_windows(getattr(rows, part), cfg.data.window, cfg.data.stride)
        for part in ("train", "val", "test")
    }
    tags = {
        **tracking.git_tags(),
        tracking.SWEEP_TAG: job.sweep,
        "model": job.choices.get("model", cfg.model.kind.value),
        "data": job.choices.get("data", cfg.data.name),
        tracking.IDENTITY_TAG: job.identity,
        **({"mlflow.parentRunId": job.parent_run_id} if job.parent_run_id else {}),
        **job.tags,
    }
    with tracking.tracked_run(cfg.tracking, job.run_name, tags) as run_id:
        tracking.log_params(job.config)
        tracking.log_files(job.config_files, "config")
        model, fit = train_model(cfg, rows, windows)
        scored = score_parts(model, cfg, rows, windows)
        metrics = final_metrics(cfg, scored, rows, fit)
        tracking.log_metrics(metrics)
        log_outputs(cfg, model, rows, scored, fit.history)
        summary = RunSummary(run_id, metrics, tracking.artifact_uri())
    log.info("run %s finished: %s", run_id, _format(metrics))
    log.info("artifacts: %s", summary.artifact_uri)
    return summary


def fresh_tensorflow(threads: int) -> None:
    """A clean Keras state and a thread budget: worker processes are reused between jobs."""
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
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
    )


def train_model(cfg: Config, rows: Rows, windows: dict[str, np.ndarray]) -> tuple[Any, Any]:
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.training import fit_autoencoder

    model = build_model(cfg.model, cfg.data.window, len(rows.channels))
    fit = fit_autoencoder(
        model, windows["train"], windows["val"], cfg.train, on_epoch=_epoch_logger(model, cfg)
    )
    log.info("fit: %d epochs (best %d) in %.1f s", fit.epochs_run, fit.best_epoch, fit.seconds)
    return model, fit


def _epoch_logger(model: Any, cfg: Config):
    from sparse_lstm_ad.models import sparse_weights, weight_sparsity

    def on_epoch(epoch: int, figures: dict[str, float]) -> None:
        weights = sparse_weights(model)
        if weights is not None:
            sparsity = weight_sparsity(weights, cfg.model.sparsity_tolerance)
            figures = {**figures, "sparsity": sparsity.zero_share, "sparse_l1": sparsity.l1_norm}
        tracking.log_metrics(figures, step=epoch)
        log.info("epoch %d/%d %s", epoch, cfg.train.epochs, _format(figures))

    return on_epoch


def score_parts(model: Any, cfg: Config, rows: Rows, windows: dict[str, np.ndarray]) -> Scored:
    """Fit the error model on normal errors, then score validation and test rows.

    Batch by batch: no part's errors are ever held whole (see scoring.ErrorMoments).
    """
    from sparse_lstm_ad.training import reconstructor

    network = reconstructor(model)
    normal = "train" if cfg.scoring.fit_on == FitOn.train else "val"
    moments = {part: error_moments(windows[part], network) for part in {"train", normal}}
    error_model = moments[normal].error_model(cfg.scoring.inverse, cfg.scoring.shrinkage)
    scored, mse = {}, {"train": moments["train"].mse}
    for part in ("val", "test"):
        n_rows = len(getattr(rows, part))
        starts = window_starts(n_rows, cfg.data.window, cfg.data.stride)
        scored[part], mse[part] = score_windows(windows[part], starts, n_rows, network, error_model)
    return Scored(
        val=scored["val"].scores,
        test=scored["test"].scores,
        test_contributions=scored["test"].contributions,
        threshold=quantile_threshold(scored["val"].scores, cfg.scoring.threshold_quantile),
        error_model=error_model,
        reconstruction_mse=mse,
    )


def final_metrics(cfg: Config, scored: Scored, rows: Rows, fit: Any) -> dict[str, float]:
    metrics = {f"{part}_reconstruction_mse": mse for part, mse in scored.reconstruction_mse.items()}
    metrics.update(
        epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch,
        fit_seconds=fit.seconds,
        threshold=scored.threshold,
    )
    if rows.test_labels is not None:
        metrics.update(evaluate(scored.test, rows.test_labels, scored.threshold).as_dict())
        # VUS and point-adjusted F1, always beside the point-wise F1 above, never alone.
        ranges = evaluate_ranges(
            scored.test, rows.test_labels, scored.threshold, max_buffer=cfg.scoring.vus_max_buffer
        )
        metrics.update(ranges.as_dict())
    if rows.test_channel_labels is not None:
        metrics.update(attribution_metrics(scored.test_contributions, rows.test_channel_labels))
    return metrics


def log_outputs(
    cfg: Config,
    model: Any,
    rows: Rows,
    scored: Scored,
    history: dict[str, list[float]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures = [
            plots.learning_curves(history, folder / "learning_curves.png"),
            plots.score_series(
                scored.test, rows.test_labels, scored.threshold, folder / "test_scores.png"
            ),
            plots.error_histogram(
                scored.val, scored.test, scored.threshold, folder / "score_histogram.png"
            ),
        ]
        figures.append(
            plots.attribution_heatmap(
                scored.test_contributions,
                rows.channels,
                rows.test_channel_labels,
                folder / "attribution.png",
            )
        )
        figures += _sparse_layer_plots(cfg, model, rows.channels, folder)
        tracking.log_files(figures, "plots")
        tracking.log_files([_scores_table(scored, rows, folder / "test_scores.csv")], "scores")
    if cfg.tracking.log_model:
        log_scoring_model(cfg, model, rows, scored)
        if cfg.tracking.register_as:
            tracking.register_model(
                cfg.tracking, tracking.active_run_id(), cfg.tracking.register_as
            )


def log_scoring_model(cfg: Config, network: Any, rows: Rows, scored: Scored) -> None:
    from sparse_lstm_ad import serving
    from sparse_lstm_ad.serving import ScoringState, score_frame

    state = ScoringState(
        channels=rows.channels,
        mean=rows.standardizer.mean.tolist(),
        std=rows.standardizer.std.tolist(),
        window=cfg.data.window,
        stride=cfg.data.stride,
        error_mean=scored.error_model.mean.tolist(),
        inv_cov=scored.error_model.inv_cov.tolist(),
        threshold=scored.threshold,
    )
    # An example in raw units: the first validation rows, un-standardised.
    example = pd.DataFrame(
        rows.val[: 2 * cfg.data.window] * rows.standardizer.std + rows.standardizer.mean,
        columns=rows.channels,
    )
    with tempfile.TemporaryDirectory() as tmp:
        network_path = Path(tmp) / "autoencoder.keras"
        network.save(network_path)
        artifacts = {"network": network_path, "scoring": state.save(Path(tmp) / "scoring.json")}
        tracking.log_pyfunc_model(
            serving.MODEL_CODE, artifacts, example, score_frame(network, state, example)
        )


def _sparse_layer_plots(cfg: Config, model: Any, channels: list[str], folder: Path) -> list[Path]:
    """The sparse layer's weights, and which input channels it keeps."""
    from sparse_lstm_ad.models import channel_mass, sparse_weights

    weights = sparse_weights(model)
    if weights is None:
        return []
    gate = cfg.model.kind == ModelKind.sparse_gate
    rows_label, cols_label = ("time step", "channel") if gate else ("channel", "unit")
    mass = channel_mass(weights, cfg.model.kind)
    return [
        plots.sparse_weights_heatmap(
            weights, rows_label, cols_label, channels, folder / "sparse_weights.png"
        ),
        plots.channel_mass_bars(mass, channels, folder / "sparse_channel_mass.png"),
    ]


def _scores_table(scored: Scored, rows: Rows, path: Path) -> Path:
    import pandas as pd

    table = pd.DataFrame(
        {
            "row": np.arange(len(scored.test)),
            "score": scored.test,
            "flag": (scored.test > scored.threshold).astype(np.int8),
        }
    )
    if rows.test_labels is not None:
        table["label"] = rows.test_labels
    table.to_csv(path, index=False)
    return path


def _format(figures: dict[str, float]) -> str:
    return " ".join(f"{key} {value:.4g}" for key, value in figures.items())
