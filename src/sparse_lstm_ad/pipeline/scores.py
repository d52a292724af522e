"""From a fitted detector to scores and metrics: every part scored (the injected copies of a
selection too), the threshold, and the run's metrics."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from sparse_lstm_ad.attribution import attribution_metrics
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors import Detector, Fitted
from sparse_lstm_ad.injection import Injected
from sparse_lstm_ad.metrics import evaluate, evaluate_ranges
from sparse_lstm_ad.pipeline.values import Rows, Scored
from sparse_lstm_ad.thresholds import (
    best_f1,
    calibrated_threshold,
    fit_on_validation,
    flagged_share,
)


def score_parts(
    detector: Detector,
    cfg: Config,
    windows: dict[str, Windows],
    injected: Injected | None = None,
) -> Scored:
    """Score validation and test rows (and the injected copies of a selection, each alone: no
    window spans two), and fit the threshold on the validation scores."""
    scored = {part: detector.score(windows[part]) for part in ("val", "test")}
    val, test = scored["val"][0], scored["test"][0]
    mse = {part: error for part, (_, error) in scored.items() if not np.isnan(error)}
    validation = fit_on_validation(val.scores, cfg.scoring)  # no label is read
    result = Scored(
        val=val.scores,
        test=test.scores,
        test_contributions=test.contributions,
        threshold=calibrated_threshold(validation, test.scores, cfg.scoring),
        validation=validation,
        reconstruction_mse=mse,
    )
    if injected is None:
        return result
    started = time.perf_counter()
    copies = [Windows(c, cfg.data.window, cfg.data.stride) for c in injected.copies]
    parts = [detector.score(w)[0].scores for w in copies]
    seconds = time.perf_counter() - started  # what the selection adds to a run
    return replace(result, injected=np.concatenate(parts), injected_seconds=seconds)


def final_metrics(cfg: Config, scored: Scored, rows: Rows, fitted: Fitted) -> dict[str, float]:
    """The run's metrics: of the fit, of the scores, and of the test labels where there are."""
    fit = fitted.fit
    metrics = {f"{part}_reconstruction_mse": mse for part, mse in scored.reconstruction_mse.items()}
    metrics.update(fitted.figures)
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
    if rows.test_channel_labels is not None and scored.has_contributions:
        metrics.update(attribution_metrics(scored.test_contributions, rows.test_channel_labels))
    metrics.update(fitted.detector.figures(rows.test_channel_labels))
    return metrics
