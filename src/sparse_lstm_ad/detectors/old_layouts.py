"""Detectors from the files of a model logged before its kind was stored (state `kind` null):
then a step error model and a baseline's linear reconstruction lived in the scoring state, and
the artifacts' names said the rest. Registered models of that time score as they did."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sparse_lstm_ad.detectors import forest, mahalanobis, network, pca
from sparse_lstm_ad.detectors.protocol import Detector
from sparse_lstm_ad.detectors.reconstruction import (
    ErrorGaussian,
    ReconstructionScores,
    StepGaussian,
    WindowGaussian,
    load_errors,
)
from sparse_lstm_ad.error_scores import ErrorModel


def detector_of_old_layout(
    artifacts: Mapping[str, Path],
    error_mean: list[float] | None,
    inv_cov: list[list[float]] | None,
    linear: tuple[np.ndarray, np.ndarray] | None,
) -> Detector:
    if "forest" in artifacts:
        return forest.load(artifacts)
    if "window_mahalanobis" in artifacts:
        return mahalanobis.load(artifacts)
    errors = _errors(artifacts, error_mean, inv_cov)
    if linear is not None:
        reconstruction = pca.LinearReconstruction(*linear)
        return pca.LinearDetector(reconstruction, ReconstructionScores(reconstruction, errors))
    return network.network_detector(network.load_network(Path(artifacts["network"])), errors)


def _errors(
    artifacts: Mapping[str, Path], error_mean: list[float] | None, inv_cov: list[list[float]] | None
) -> ErrorGaussian:
    if WindowGaussian.artifact in artifacts:  # the window scope's file, as it is today
        return load_errors(artifacts)
    if error_mean is None or inv_cov is None:
        raise ValueError("the logged model holds no error model")
    return StepGaussian(ErrorModel(np.asarray(error_mean), np.asarray(inv_cov)))
