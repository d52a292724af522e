"""Score a CSV with a logged model: no training data, no config, only the model's URI.

    python -m sparse_lstm_ad.score --model runs:/RUN_ID/model --input new.csv \\
        --output scores.csv [--plot scores.png] [--tracking-dir mlruns | --tracking-uri URI]

Input columns are matched to the training channels by name; other columns are ignored, and a
time column (`--time-column`, by default the first of t/time/timestamp present) is carried to
the output. Output: one row per input row with score, flag and the top channels.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sparse_lstm_ad.store_options import add_store_options, store_config

TIME_COLUMNS = ("t", "time", "timestamp")


def read_input(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from error


def scores_table(
    frame: pd.DataFrame, scored: pd.DataFrame, time_column: str | None, top: int
) -> pd.DataFrame:
    """score, flag and the `top` channels contributing most, per input row."""
    contributions = scored.filter(like="contribution_")
    channels = np.array([c.removeprefix("contribution_") for c in contributions.columns])
    order = np.argsort(-np.nan_to_num(contributions.to_numpy(), nan=-np.inf), axis=1)[:, :top]
    table = pd.DataFrame({"score": scored["score"], "flag": scored["flag"].astype(np.int8)})
    table["top_channels"] = [" ".join(row) for row in channels[order]]
    table.loc[scored["score"].isna(), "top_channels"] = ""
    if time_column is not None:
        table.insert(0, time_column, frame[time_column].to_numpy())
    return table


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write to a temporary name beside the target, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def score_csv(args: argparse.Namespace) -> tuple[pd.DataFrame, float]:
    """The scores table, and the model's threshold."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.serving import channel_values

    frame = read_input(args.input)
    model = tracking.load_scoring_model(store_config(args), args.model)
    channels = model.metadata.get_input_schema().input_names()
    channel_values(frame, channels)  # our own clear errors before MLflow's schema checks
    scored = model.predict(frame[channels])
    time_column = args.time_column or next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if time_column is not None and time_column not in frame.columns:
        raise ValueError(f"{args.input}: no time column {time_column!r}")
    threshold = model.unwrap_python_model().state.threshold
    return scores_table(frame, scored, time_column, args.top), threshold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_lstm_ad.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="runs:/RUN_ID/model or models:/NAME/VERSION")
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--plot", type=Path, default=None, help="also draw the scores to this PNG")
    parser.add_argument("--time-column", default=None)
    parser.add_argument("--top", type=int, default=3, help="channels named per row (default 3)")
    add_store_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from sparse_lstm_ad.tracking_store import StoreError

    try:
        table, threshold = score_csv(args)
    except (ValueError, LookupError, OSError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_atomically(table, args.output)
    if args.plot is not None:
        from sparse_lstm_ad import plots

        plots.score_series(table["score"].to_numpy(), None, threshold, args.plot)
    flagged = int(table["flag"].sum())
    print(f"scored {len(table)} rows, {flagged} flagged: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
