"""The logged model: everything scoring needs, as an MLflow pyfunc model.

`mlflow.pyfunc.load_model(uri).predict(frame)` takes a DataFrame holding the training
channels (other columns are ignored) and returns one row per input row: the score, the flag
(score above the threshold) and each channel's contribution to the squared score. It carries
the Keras network, the standardisation, the window, the error model and the threshold, so no
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

from sparse_lstm_ad.data import Standardizer, make_windows, window_starts
from sparse_lstm_ad.scoring import ErrorModel, score_windows

MODEL_CODE = Path(__file__).with_name("pyfunc_model_code.py")


@dataclass(frozen=True)
class ScoringState:
    """What turns raw rows into scores besides the network; stored as JSON, never pickled."""

    channels: list[str]
    mean: list[float]
    std: list[float]
    window: int
    stride: int
    error_mean: list[float]
    inv_cov: list[list[float]]
    threshold: float

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: Path) -> ScoringState:
        return cls(**json.loads(Path(path).read_text()))


def score_frame(network: Any, state: ScoringState, frame: pd.DataFrame) -> pd.DataFrame:
    """Score the rows of `frame` (the training channels, by name) with a trained network.

    The same batched path as the training run's own scoring: the same scores to the bit.
    """
    from sparse_lstm_ad.training import reconstructor

    standardizer = Standardizer(np.asarray(state.mean), np.asarray(state.std))
    rows = standardizer.transform(channel_values(frame, state.channels))
    windows = make_windows(rows, state.window, state.stride)
    error_model = ErrorModel(np.asarray(state.error_mean), np.asarray(state.inv_cov))
    starts = window_starts(len(rows), state.window, state.stride)
    scored, _ = score_windows(windows, starts, len(rows), reconstructor(network), error_model)
    result = pd.DataFrame({"score": scored.scores, "flag": scored.scores > state.threshold})
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
        import keras

        import sparse_lstm_ad.models  # noqa: F401 - registers the custom layers with Keras

        self.network = keras.saving.load_model(context.artifacts["network"], safe_mode=True)
        self.state = ScoringState.load(context.artifacts["scoring"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return score_frame(self.network, self.state, pd.DataFrame(model_input))
