"""Any detector, network or baseline, from standardised rows to per-row scores.

A reconstruction detector (a Keras autoencoder, or a baseline's `LinearReconstruction`) goes
through its reconstruction errors and the error model; a row detector (`ForestScorer`) scores
rows itself. Both end in the same window-to-row alignment, so their scores compare row by row.
The training run and the logged scoring model both score through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparse_lstm_ad.attribution import mass_attribution_metrics
from sparse_lstm_ad.baselines import ForestScorer, WindowMahalanobis
from sparse_lstm_ad.config import (
    SPARSE_KINDS,
    WINDOW_SCOPE_MAX_VALUES,
    Config,
    ModelKind,
    ScoringScope,
)
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.error_scores import (
    ErrorModel,
    Reconstruct,
    RowScores,
    batch_errors,
    fit_error_model,
    score_row_detector,
    score_windows,
    time_step_scores,
)

WINDOW_BATCH = 2048  # windows scored at once by a window detector
log = logging.getLogger(__name__)


def sparse_layer_metrics(
    kind: ModelKind, detector: Any, channel_labels: np.ndarray | None
) -> dict[str, float]:
    """Whether the sparse layer closed (every weight zero: the reconstruction is a constant,
    the detector the Mahalanobis baseline's), and how well its channel mass names the
    labelled channels; {} for a kind without a sparse layer."""
    if kind not in SPARSE_KINDS:
        return {}
    from sparse_lstm_ad.models import channel_mass, layer_rank, sparse_weights

    weights = sparse_weights(detector)
    mass = channel_mass(weights, kind)
    figures = {"sparse_layer_closed": float(not mass.any())}
    if kind == ModelKind.sparse_projection:
        figures["sparse_rank"] = float(layer_rank(weights))
    if not mass.any():
        log.warning("the sparse layer closed: every weight is 0; a smaller model.l1 keeps some")
    if channel_labels is not None:
        figures.update(mass_attribution_metrics(mass, channel_labels))
    return figures


def reconstructor_of(detector: Any) -> Reconstruct:
    """windows -> reconstructions: a baseline's is itself; a Keras network's is traced once."""
    if not hasattr(detector, "layers"):
        return detector
    from sparse_lstm_ad.training import reconstructor  # TensorFlow: networks only

    return reconstructor(detector)


def score_windows_with(
    detector: Any, windows: Windows, error_model: ErrorModel | None
) -> tuple[RowScores, float]:
    """Per-row scores and contributions of the rows under `windows`, and the reconstruction
    MSE (NaN for a detector that reconstructs nothing).

    `detector` is a ForestScorer, or anything `reconstructor_of` takes (pass what it returned
    to trace a network only once).
    """
    if isinstance(detector, ForestScorer):
        return score_row_detector(detector(windows.rows), windows), float("nan")
    if isinstance(detector, WindowMahalanobis | WindowErrorScorer):
        return score_window_detector(detector, windows), float("nan")
    assert error_model is not None, "a reconstruction detector needs its error model"
    return score_windows(windows, reconstructor_of(detector), error_model)


@dataclass(frozen=True)
class WindowErrorScorer:
    """A reconstruction detector scored by window (`scoring.scope=window`): each window's
    errors, flattened, go to a Gaussian fitted on the flattened errors of normal windows."""

    reconstruct: Reconstruct
    errors: WindowMahalanobis

    @property
    def window(self) -> int:
        return self.errors.window

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        errors = np.asarray(self.reconstruct(windows), dtype=np.float64) - windows
        return self.errors(errors)


def window_errors(windows: np.ndarray, reconstruct: Reconstruct) -> np.ndarray:
    """(n, window x k) reconstruction errors of every window, flattened."""
    parts = [errors.reshape(len(errors), -1) for _, errors in batch_errors(windows, reconstruct)]
    return np.concatenate(parts)


def score_window_detector(
    detector: WindowMahalanobis | WindowErrorScorer, windows: Windows
) -> RowScores:
    """Each window's score and channel shares, given to its rows; a row takes their mean."""
    if detector.window != windows.length:
        raise ValueError(f"a detector of {detector.window}-row windows got {windows.length}")
    view, starts, n_rows, length = windows.view, windows.starts, windows.n_rows, windows.length
    batches = [detector(view[i : i + WINDOW_BATCH]) for i in range(0, len(view), WINDOW_BATCH)]
    scores = np.concatenate([b[0] for b in batches])
    shares = np.concatenate([b[1] for b in batches])
    return RowScores(
        scores=time_step_scores(np.repeat(scores[:, None], length, axis=1), starts, n_rows),
        contributions=time_step_scores(
            np.repeat(shares[:, None, :], length, axis=1), starts, n_rows
        ),
    )


def scope_tag(cfg: Config, n_channels: int) -> dict[str, str]:
    """The scope the error model uses, for the detectors that have one of their errors."""
    if cfg.model.kind in (ModelKind.iforest, ModelKind.mahalanobis):
        return {}
    return {"scoring_scope": scoring_scope(cfg, n_channels).value}


def scoring_scope(cfg: Config, n_channels: int) -> ScoringScope:
    """`scoring.scope`, with `auto` resolved by the size of a flattened window.

    The mahalanobis baseline has a scope of its own (`model.mahalanobis_scope`): its rows
    form step error vectors.
    """
    if cfg.model.kind == ModelKind.mahalanobis:
        return ScoringScope.step
    if cfg.scoring.scope != ScoringScope.auto:
        return cfg.scoring.scope
    small = cfg.data.window * n_channels <= WINDOW_SCOPE_MAX_VALUES
    return ScoringScope.window if small else ScoringScope.step


def fit_window_error_scorer(model: Any, cfg: Config, normal: Windows) -> WindowErrorScorer:
    network = reconstructor_of(model)
    errors = window_errors(normal.view, network)
    fitted = fit_error_model(errors, cfg.scoring.inverse, cfg.scoring.shrinkage)
    return WindowErrorScorer(network, WindowMahalanobis(cfg.data.window, fitted))
