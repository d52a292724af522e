"""The logged model: everything scoring needs, as an MLflow pyfunc model.

`mlflow.pyfunc.load_model(uri).predict(frame)` takes a DataFrame holding the training
channels (other columns are ignored) and returns one row per input row: the score, the flag
(score above the threshold) and each channel's contribution to the squared score. It carries
the detector's own files (detectors/: the Keras network and its error model, a baseline's
arrays), the standardisation, the window and the threshold, so no training data or config is
needed to score.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from sparse_lstm_ad.config import Calibration, ScoringConfig, Threshold
from sparse_lstm_ad.data import Standardizer, Windows
from sparse_lstm_ad.detectors import Detector, family
from sparse_lstm_ad.detectors.old_layouts import detector_of_old_layout
from sparse_lstm_ad.thresholds import ValidationFit, calibrated_threshold

MODEL_CODE = Path(__file__).with_name("pyfunc_model_code.py")


@dataclass(frozen=True)
class ScoringState:
    """What turns raw rows into scores besides the detector's own files (a network, a forest's
    trees, a Gaussian): stored as JSON, never pickled."""

    channels: list[str]
    mean: list[float]
    std: list[float]
    window: int
    stride: int
    threshold: float
    kind: str | None = None  # model.kind, whose family loads the detector's files
    # The run's threshold rule (ScoringConfig's threshold keys) and what the validation scores
    # gave it; with calibrate_rows > 0 the threshold follows the start of every frame scored,
    # and `threshold` (the run's, on its test series) is not used.
    threshold_rule: dict[str, Any] | None = None
    validation_threshold: float | None = None
    validation_median: float | None = None
    # Models logged before the kind was stored (kind None) kept a step error model and a
    # baseline's linear reconstruction here: they still load (detectors/old_layouts.py).
    error_mean: list[float] | None = None
    inv_cov: list[list[float]] | None = None
    linear_mean: list[float] | None = None
    linear_basis: list[list[float]] | None = None

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

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: Path) -> ScoringState:
        return cls(**json.loads(Path(path).read_text()))


def score_frame(detector: Detector, state: ScoringState, frame: pd.DataFrame) -> pd.DataFrame:
    """Score the rows of `frame` (the training channels, by name) with a trained detector.

    The same batched path as the training run's own scoring: the same scores to the bit.
    """
    standardizer = Standardizer(np.asarray(state.mean), np.asarray(state.std))
    rows = standardizer.transform(channel_values(frame, state.channels))
    windows = Windows(rows, state.window, state.stride)
    scored, _ = detector.score(windows)
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
    """The pyfunc wrapper: the state from JSON, the detector by its kind's family (a network
    in Keras safe mode)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.state = ScoringState.load(context.artifacts["scoring"])
        self.detector = load_detector(self.state, context.artifacts)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return score_frame(self.detector, self.state, pd.DataFrame(model_input))


def load_detector(state: ScoringState, artifacts: dict[str, str]) -> Detector:
    """The detector the artifacts hold, loaded by its kind's family."""
    files = {name: Path(path) for name, path in artifacts.items()}
    if state.kind is None:
        return detector_of_old_layout(files, state.error_mean, state.inv_cov, _linear(state))
    return family(state.kind).load(files)


def _linear(state: ScoringState) -> tuple[np.ndarray, np.ndarray] | None:
    if state.linear_mean is None or state.linear_basis is None:
        return None
    basis = np.asarray(state.linear_basis, dtype=np.float64).reshape(len(state.channels), -1)
    return np.asarray(state.linear_mean), basis
