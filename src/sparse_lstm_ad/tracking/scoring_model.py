"""The logged model: everything scoring needs, as an MLflow pyfunc model.

`mlflow.pyfunc.load_model(uri).predict(frame)` takes a DataFrame holding the training
channels (other columns are ignored) and returns one row per input row: the score, the flag
(score above the threshold) and each channel's contribution to the squared score. It carries
the detector (the Keras network, a baseline's linear reconstruction, or an isolation forest's
trees as arrays), the standardisation, the window, the error model and the threshold, so no
training data or config is needed to score.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from sparse_lstm_ad.baselines import ForestScorer, LinearReconstruction, WindowMahalanobis
from sparse_lstm_ad.config import Calibration, ScoringConfig, Threshold
from sparse_lstm_ad.data import Standardizer, Windows
from sparse_lstm_ad.detectors import WindowErrorScorer, reconstructor_of, score_windows_with
from sparse_lstm_ad.error_scores import ErrorModel
from sparse_lstm_ad.thresholds import ValidationFit, calibrated_threshold

MODEL_CODE = Path(__file__).with_name("pyfunc_model_code.py")


@dataclass(frozen=True)
class ScoringState:
    """What turns raw rows into scores besides the network; stored as JSON, never pickled."""

    channels: list[str]
    mean: list[float]
    std: list[float]
    window: int
    stride: int
    error_mean: list[float] | None  # None with a row detector (iforest): no error model
    inv_cov: list[list[float]] | None
    threshold: float
    # A baseline's linear reconstruction (pca, mahalanobis); None for a network or a forest.
    linear_mean: list[float] | None = None
    linear_basis: list[list[float]] | None = None
    # The run's threshold rule (ScoringConfig's threshold keys) and what the validation scores
    # gave it; with calibrate_rows > 0 the threshold follows the start of every frame scored,
    # and `threshold` (the run's, on its test series) is not used.
    threshold_rule: dict[str, Any] | None = None
    validation_threshold: float | None = None
    validation_median: float | None = None

    def threshold_for(self, scores: np.ndarray) -> float:
        """The threshold for this frame's scores: the run's, or calibrated on their start."""
        rule = self.threshold_rule
        if not rule or not rule.get("calibrate_rows"):
            return self.threshold
        cfg = ScoringConfig(
            **{
                **rule,
                "threshold": Threshold(rule["threshold"]),
                "calibration": Calibration(rule["calibration"]),
            }
        )
        fit = ValidationFit(self.validation_threshold, self.validation_median)  # type: ignore[arg-type]
        return calibrated_threshold(fit, scores, cfg)

    def error_model(self) -> ErrorModel | None:
        if self.error_mean is None or self.inv_cov is None:
            return None
        return ErrorModel(np.asarray(self.error_mean), np.asarray(self.inv_cov))

    def linear_reconstruction(self) -> LinearReconstruction | None:
        if self.linear_mean is None or self.linear_basis is None:
            return None
        k = len(self.channels)
        basis = np.asarray(self.linear_basis, dtype=np.float64).reshape(k, -1)
        return LinearReconstruction(np.asarray(self.linear_mean), basis)

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: Path) -> ScoringState:
        return cls(**json.loads(Path(path).read_text()))


def score_frame(detector: Any, state: ScoringState, frame: pd.DataFrame) -> pd.DataFrame:
    """Score the rows of `frame` (the training channels, by name) with a trained detector.

    The same batched path as the training run's own scoring: the same scores to the bit.
    """
    standardizer = Standardizer(np.asarray(state.mean), np.asarray(state.std))
    rows = standardizer.transform(channel_values(frame, state.channels))
    windows = Windows(rows, state.window, state.stride)
    scored, _ = score_windows_with(detector, windows, state.error_model())
    threshold = state.threshold_for(scored.scores)
    result = pd.DataFrame({"score": scored.scores, "flag": scored.scores > threshold})
    for i, channel in enumerate(state.channels):
        result[f"contribution_{channel}"] = scored.contributions[:, i]
    return result


def channel_values(frame: pd.DataFrame, channels: list[str]) -> np.ndarray:
    """The channels' values in training order; a clear error for a missing or bad column."""
    missing = [c for c in channels if c not in frame.columns]
    if missing:
        raise ValueError(f"input lacks the training channel(s) {missing}")
    values = frame[channels]
    not_numeric = [c for c in channels if not pd.api.types.is_numeric_dtype(values[c])]
    if not_numeric:
        raise ValueError(f"channel(s) {not_numeric} are not numeric")
    array = values.to_numpy(dtype=np.float64)
    bad = [c for c, ok in zip(channels, np.isfinite(array).all(axis=0), strict=True) if not ok]
    if bad:
        raise ValueError(f"channel(s) {bad} hold NaN or infinite values")
    return array


class AnomalyScorer(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper; the network loads in Keras safe mode, the state from JSON."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.state = ScoringState.load(context.artifacts["scoring"])
        self.detector = load_detector(self.state, context.artifacts)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return score_frame(self.detector, self.state, pd.DataFrame(model_input))


def load_detector(state: ScoringState, artifacts: dict[str, str]) -> Any:
    """The detector the artifacts hold, scored by window if they hold that error model."""
    base = _load_base(state, artifacts)
    if "window_errors" not in artifacts:
        return base
    errors = WindowMahalanobis.load(Path(artifacts["window_errors"]))
    return WindowErrorScorer(reconstructor_of(base), errors)


def _load_base(state: ScoringState, artifacts: dict[str, str]) -> Any:
    """The detector itself; TensorFlow loads only for a network."""
    if "forest" in artifacts:
        return ForestScorer.load(Path(artifacts["forest"]))
    if "window_mahalanobis" in artifacts:
        return WindowMahalanobis.load(Path(artifacts["window_mahalanobis"]))
    linear = state.linear_reconstruction()
    if linear is not None:
        return linear
    import keras

    import sparse_lstm_ad.models  # noqa: F401 - registers the custom layers with Keras

    # Scoring needs no optimizer: compile=False keeps its state out of the load.
    return keras.saving.load_model(artifacts["network"], safe_mode=True, compile=False)
