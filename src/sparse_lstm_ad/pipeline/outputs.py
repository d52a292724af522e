"""What a run leaves beside its metrics: plots, the test scores table, the scoring model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import Config, ScoringConfig
from sparse_lstm_ad.detectors import Detector, family
from sparse_lstm_ad.pipeline.values import Rows, Scored

log = logging.getLogger("sparse_lstm_ad.pipeline")  # the run's log: one stream of lines


def log_outputs(
    cfg: Config,
    detector: Detector,
    rows: Rows,
    scored: Scored,
    history: dict[str, list[float]],
    names: tuple[str, str],
) -> None:
    """Plots, the scores tables and the scoring model; `names` are the run's model and data."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        label = family(cfg.model.kind).score_label
        tracking.log_files(_figures(detector, rows, scored, history, folder, label), "plots")
        tracking.log_files(_score_tables(rows, scored, folder), "scores")
    if cfg.tracking.log_model:
        log_scoring_model(cfg, detector, rows, scored, tracking.model_name(*names))
        if name := cfg.tracking.register_as:
            version = tracking.register_model(cfg.tracking, tracking.active_run_id(), name)
            log.info("registered as models:/%s/%s", name, version)


def _figures(
    detector: Detector,
    rows: Rows,
    scored: Scored,
    history: dict[str, list[float]],
    folder: Path,
    score_label: str,
) -> list[Path]:
    """The run's figures (and the detector's own, with their tables), written in `folder`."""
    # matplotlib (0.3 s) loads with the first run that plots, not with the pipeline: a sweep's
    # parent imports the pipeline to check its inputs and plots nothing.
    from sparse_lstm_ad import plots

    figures = (
        [] if not history else [plots.learning_curves(history, folder / "learning_curves.png")]
    )
    figures += [
        plots.score_series(
            scored.test,
            rows.test_labels,
            scored.threshold,
            folder / "test_scores.png",
            score_label,
            times=rows.test_times,
        ),
        plots.error_histogram(
            scored.val, scored.test, scored.threshold, folder / "score_histogram.png", score_label
        ),
    ]
    if scored.has_contributions:
        figures.append(
            plots.attribution_heatmap(
                scored.test_contributions,
                rows.channels,
                rows.test_channel_labels,
                folder / "attribution.png",
            )
        )
    return figures + detector.plots(rows.channels, folder)


def _score_tables(rows: Rows, scored: Scored, folder: Path) -> list[Path]:
    """Each test row's score, flag (and label); and the normal validation scores the threshold
    came from, so that thresholds can be compared afterwards."""
    test = pd.DataFrame(
        {
            "row": np.arange(len(scored.test)),
            "score": scored.test,
            "flag": (scored.test > scored.threshold).astype(np.int8),
        }
    )
    if rows.test_labels is not None:
        test["label"] = rows.test_labels
    val = pd.DataFrame({"row": np.arange(len(scored.val)), "score": scored.val})
    paths = [folder / "test_scores.csv", folder / "val_scores.csv"]
    for table, path in zip((test, val), paths, strict=True):
        table.to_csv(path, index=False)
    return paths


def log_scoring_model(
    cfg: Config, detector: Detector, rows: Rows, scored: Scored, name: str
) -> None:
    from sparse_lstm_ad.tracking import scoring_model
    from sparse_lstm_ad.tracking.scoring_model import ScoringState, score_frame

    state = ScoringState(
        channels=rows.channels,
        mean=rows.standardizer.mean.tolist(),
        std=rows.standardizer.std.tolist(),
        window=cfg.data.window,
        stride=cfg.data.stride,
        threshold=scored.threshold,
        kind=cfg.model.kind,
        threshold_rule=threshold_rule(cfg.scoring),
        validation_threshold=scored.validation.threshold,
        validation_median=scored.validation.median,
    )
    # An example in raw units: the first validation rows, un-standardised.
    example = pd.DataFrame(
        rows.val[: 2 * cfg.data.window] * rows.standardizer.std + rows.standardizer.mean,
        columns=rows.channels,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        artifacts = {"scoring": state.save(folder / "scoring.json"), **detector.save(folder)}
        tracking.log_pyfunc_model(
            scoring_model.MODEL_CODE,
            artifacts,
            example,
            score_frame(detector, state, example),
            name,
        )


def threshold_rule(cfg: ScoringConfig) -> dict[str, Any]:
    """The keys that fit a threshold, as JSON values, for the logged model."""
    return {
        "threshold": cfg.threshold.value,
        "threshold_quantile": cfg.threshold_quantile,
        "pot_level": cfg.pot_level,
        "pot_risk": cfg.pot_risk,
        "calibrate_rows": cfg.calibrate_rows,
        "calibration": cfg.calibration.value,
    }
