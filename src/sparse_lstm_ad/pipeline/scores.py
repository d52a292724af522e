"""From a fitted detector to scores and metrics: the error model fitted on normal errors, every
part scored (the injected copies of a selection too), the threshold, and the run's metrics."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from sparse_lstm_ad.attribution import attribution_metrics
from sparse_lstm_ad.baselines import ForestScorer, WindowMahalanobis
from sparse_lstm_ad.config import Config, FitOn, ScoringConfig, ScoringScope
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors import (
    WindowErrorScorer,
    fit_window_error_scorer,
    reconstructor_of,
    score_windows_with,
    scoring_scope,
)
from sparse_lstm_ad.error_scores import ErrorModel, RowScores, error_moments
from sparse_lstm_ad.injection import Injected
from sparse_lstm_ad.metrics import evaluate, evaluate_ranges
from sparse_lstm_ad.pipeline.outputs import has_contributions
from sparse_lstm_ad.pipeline.values import Rows, Scored
from sparse_lstm_ad.thresholds import best_f1, choose_threshold, flagged_share


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
