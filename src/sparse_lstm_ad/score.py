"""Score a CSV with a logged model: no training data, no config, only the model's URI.

    sparse-lstm-ad score --model runs:/RUN_ID/model --input new.csv \\
        --output scores.csv [--plot scores.png] [--tracking-dir mlruns | --tracking-uri URI]

Input columns are matched to the training channels by name; other columns are ignored, and a
time column (`--time-column`, by default the first of t/time/timestamp present) is carried to
the output. Output: one row per input row with score, flag and the top channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sparse_lstm_ad.data.csv_files import read_csv_file
from sparse_lstm_ad.data.csv_source import time_column_of
from sparse_lstm_ad.detectors import family
from sparse_lstm_ad.detectors.protocol import ANOMALY_SCORE

if TYPE_CHECKING:
    from sparse_lstm_ad.config import TrackingConfig


def read_input(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a CSV file")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    # Training's reader: the same refusals (no data rows, a column name twice, a broken
    # compressed file) in the same words.
    return read_csv_file(path)


def scores_table(
    frame: pd.DataFrame, scored: pd.DataFrame, time_column: str | None, top: int
) -> pd.DataFrame:
    """score, flag and the `top` channels contributing most, per input row."""
    contributions = scored.filter(like="contribution_")
    channels = np.array([c.removeprefix("contribution_") for c in contributions.columns])
    values = contributions.to_numpy()
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), axis=1)[:, :top]
    # A detector that does not split its score by channel (iforest) names none.
    named = np.take_along_axis(~np.isnan(values), order, axis=1)
    table = pd.DataFrame({"score": scored["score"], "flag": scored["flag"].astype(np.int8)})
    table["top_channels"] = [
        " ".join(row[keep]) for row, keep in zip(channels[order], named, strict=True)
    ]
    table.loc[scored["score"].isna(), "top_channels"] = ""
    if time_column is not None:
        table.insert(0, time_column, frame[time_column].to_numpy())
    return table


def score_csv(
    cfg: TrackingConfig, model_uri: str, path: Path, time_column: str | None, top: int
) -> tuple[pd.DataFrame, float, str]:
    """The scores table of the CSV at `path`, the model's threshold and what its scores are."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.tracking.scoring_model import channel_values

    frame = read_input(path)
    model = tracking.load_scoring_model(cfg, model_uri)
    channels = model.metadata.get_input_schema().input_names()
    try:
        channel_values(frame, channels)  # our own clear errors before MLflow's schema checks
        # Whole numbers (a counter, a status code) read as int64, which MLflow's schema
        # refuses for its float64 columns ("can not safely convert"): floats are scored.
        scored = model.predict(frame[channels].astype(np.float64))
    except ValueError as error:  # a bad channel, a series shorter than a window
        raise ValueError(f"{path}: {error}") from error
    time_column = time_column_of(frame.columns, time_column)
    if time_column is not None and time_column not in frame.columns:
        raise ValueError(f"{path}: no time column {time_column!r}")
    state = model.unwrap_python_model().state
    threshold = state.threshold_for(scored["score"].to_numpy())
    label = family(state.kind).score_label if state.kind else ANOMALY_SCORE  # logged before kinds
    return scores_table(frame, scored, time_column, top), threshold, label
