"""Real series from CSV: a train and a test file, or one file and the row where test begins.

Every problem in the data stops the load with a ValueError that names the file, the column
and, where there is one, the line (1 = the header), so that it can be fixed at its source.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sparse_lstm_ad.config import ConstantPolicy, CsvDataConfig, NanPolicy
from sparse_lstm_ad.data.csv_files import read_csv_file as _read
from sparse_lstm_ad.data.csv_files import resolve as _resolve
from sparse_lstm_ad.data.scaling import constant_channels
from sparse_lstm_ad.data.series_split import SeriesSplit

log = logging.getLogger(__name__)

# A column of one of these names is the series' clock, not a channel, unless
# data.csv.time_column or data.csv.features say otherwise; `score` reads the same names. Taken
# as a channel, a clock that runs on into the test rows lies outside its training range on
# every one of them: a row's score then follows its place in time, not the process.
TIME_COLUMNS = ("t", "time", "timestamp")

# Which columns of a CSV become channels: raised when that rule changes, so that a sweep run
# again does not skip jobs that FINISHED under the old one (cli/train_job.run_identity).
# 2: a clock's t/time/timestamp column is the time, a column counting up past training is out.
CHANNEL_RULES = 2

_LABEL_LINE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*:\s*(\d+(?:\s*,\s*\d+)*)\s*$")


@dataclass(frozen=True)
class _Part:
    """Rows of one file (or of its train or test share), with where they came from."""

    frame: pd.DataFrame  # its index is the row's position in the file, 0 = first data row
    path: Path

    def line(self, row: int) -> int:
        return int(self.frame.index[row]) + 2  # line 1 is the header


def load_csv_split(cfg: CsvDataConfig, every: int = 1) -> SeriesSplit:
    """The train and test rows of `cfg`, with labels and per-channel labels where configured;
    every `every`-th row of each part (before the constant-column check, which must see the
    rows the model will)."""
    train, test = _read_parts(cfg)
    cfg = _with_time_column(cfg, train, test)
    names = _feature_columns(train, cfg)
    for part in (train, test):
        _require_columns(part, [*names, *_optional(cfg.time_column)], "a feature or time column")
    labels = _labels(test, cfg.label_column)
    channel_labels = _channel_labels(cfg, len(test.frame), names)
    split = SeriesSplit(
        train=_fill(_numeric(train, names), train, names, cfg.nan_policy),
        test=_fill(_numeric(test, names), test, names, cfg.nan_policy),
        test_labels=_reconcile(labels, channel_labels, test, cfg),
        channels=names,
        test_channel_labels=channel_labels,
        test_times=None if cfg.time_column is None else test.frame[cfg.time_column],
    ).every(every)
    if cfg.features is None:  # a list the user wrote is kept whole
        split = _drop_counters(split, train.path)
    return _drop_constant(split, train, cfg.constant)


def time_column_of(columns: Iterable[str], named: str | None = None) -> str | None:
    """`named`, else the first of TIME_COLUMNS among `columns`; None if there is none."""
    columns = set(columns)
    return named or next((name for name in TIME_COLUMNS if name in columns), None)


def _with_time_column(cfg: CsvDataConfig, train: _Part, test: _Part) -> CsvDataConfig:
    """`cfg` with the time column both files have, where it names no time column and no
    channels: a t, time or timestamp column whose values are a clock's (dates, or numbers
    that never decrease in either file). A temperature named `t` stays a channel."""
    if cfg.time_column is not None or cfg.features is not None:
        return cfg
    both = set(train.frame.columns) & set(test.frame.columns)
    found = time_column_of(both)
    if found is None or not all(_reads_as_time(part.frame[found]) for part in (train, test)):
        return cfg
    log.info(
        "%s: column %r taken as the time, not a channel (data.csv.time_column names the time "
        "column, data.csv.features the channels)",
        train.path,
        found,
    )
    return replace(cfg, time_column=found)


def _reads_as_time(column: pd.Series) -> bool:
    """Dates, or numbers that never decrease."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(float)
    if np.isfinite(values).all():
        return _never_down(values)
    with warnings.catch_warnings():  # "could not infer format": then they are no dates
        warnings.simplefilter("ignore", UserWarning)
        return bool(pd.to_datetime(column, errors="coerce").notna().all())


def _drop_counters(split: SeriesSplit, path: Path) -> SeriesSplit:
    """Without the channels that count up through the training rows and on past them through
    the test rows (an epoch time, `timestamp_(min)`, a row number, a meter's running total):
    as a channel each lies outside its training range on every test row, and a row's score
    follows its place in time, not the process."""
    keep = ~np.array(
        [_counts_up(split.train[:, i], split.test[:, i]) for i in range(len(split.channels))]
    )
    if keep.all():
        return split
    dropped = [name for name, kept in zip(split.channels, keep, strict=True) if not kept]
    if not keep.any():
        raise ValueError(
            f"{path}: every channel counts up through the training rows and on through the "
            f"test rows (a clock or a counter): {dropped}; data.csv.features keeps them"
        )
    log.warning(
        "%s: columns %s count up through the training rows and on through the test rows "
        "(a clock or a counter): not used as channels; data.csv.features keeps them",
        path,
        dropped,
    )
    return _kept(split, keep)


def _counts_up(before: np.ndarray, after: np.ndarray) -> bool:
    never_down = _never_down(before) and _never_down(after)
    return bool(len(before) > 1 and len(after) and never_down and after[0] > before[-1])


def _never_down(values: np.ndarray) -> bool:
    return bool((np.diff(values) >= 0).all())


def _drop_constant(split: SeriesSplit, train: _Part, policy: ConstantPolicy) -> SeriesSplit:
    keep = _kept_channels(split.train, train, split.channels, policy)
    return split if keep.all() else _kept(split, keep)


def _kept(split: SeriesSplit, keep: np.ndarray) -> SeriesSplit:
    """The split with only the channels `keep` marks; the per-channel labels read before, so
    a dropped channel shifts no label onto its neighbour."""
    channel_labels = split.test_channel_labels
    if channel_labels is not None and channel_labels[:, ~keep].any():
        dropped = [name for name, kept in zip(split.channels, keep, strict=True) if not kept]
        log.warning("dropped columns %s are among the channels held responsible", dropped)
    return SeriesSplit(
        train=split.train[:, keep],
        test=split.test[:, keep],
        test_labels=split.test_labels,
        channels=[name for name, kept in zip(split.channels, keep, strict=True) if kept],
        test_channel_labels=None if channel_labels is None else channel_labels[:, keep],
        test_times=split.test_times,
    )


def _optional(name: str | None) -> list[str]:
    return [] if name is None else [name]


def _read_parts(cfg: CsvDataConfig) -> tuple[_Part, _Part]:
    train_path = _resolve(cfg, cfg.train, "train")
    frame = _read(train_path)
    if cfg.test is not None:
        test_path = _resolve(cfg, cfg.test, "test")
        return _Part(frame, train_path), _Part(_read(test_path), test_path)
    if cfg.test_from is None:
        raise ValueError("data.csv.test is null: set data.csv.test_from, the first test row")
    if not 0 < cfg.test_from < len(frame):
        raise ValueError(
            f"{train_path}: data.csv.test_from={cfg.test_from} must lie in [1, {len(frame) - 1}]"
            f" ({len(frame)} data rows)"
        )
    return (
        _Part(frame.iloc[: cfg.test_from], train_path),
        _Part(frame.iloc[cfg.test_from :], train_path),
    )


def _require_columns(part: _Part, names: list[str], what: str) -> None:
    """`what`: the columns' role, as the message's aside ("a feature or time column")."""
    missing = [name for name in names if name not in part.frame.columns]
    if missing:
        raise ValueError(
            f"{part.path}: column {missing[0]!r} ({what}) is missing; "
            f"the file has {list(part.frame.columns)}"
        )


def _non_numeric(column: pd.Series) -> pd.Series:
    """True where a value is present but is not a number ("n/a", "12,5", "high")."""
    if pd.api.types.is_numeric_dtype(column):
        return pd.Series(False, index=column.index)
    return pd.to_numeric(column, errors="coerce").isna() & column.notna()


def _is_text(column: pd.Series) -> bool:
    return bool(column.notna().any()) and not pd.to_numeric(column, errors="coerce").notna().any()


def _feature_columns(train: _Part, cfg: CsvDataConfig) -> list[str]:
    if cfg.features is not None:
        if not cfg.features:
            raise ValueError("data.csv.features is an empty list: name at least one column")
        return list(cfg.features)
    reserved = {cfg.time_column, cfg.label_column}
    names = [name for name in train.frame.columns if name not in reserved]
    # A column with no number at all is text (a host name, a note): not a channel.
    text = [name for name in names if _is_text(train.frame[name])]
    if text:
        log.warning("%s: columns %s hold no numbers: not used as channels", train.path, text)
    features = [name for name in names if name not in text]
    if not features:
        raise ValueError(f"{train.path}: no numeric column to use as a channel")
    return features


def _numeric(part: _Part, names: list[str]) -> np.ndarray:
    for name in names:
        bad = _non_numeric(part.frame[name]).to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            value = _plain(part.frame[name].iloc[row])
            raise ValueError(
                f"{part.path}: column {name!r} is not numeric: {value!r} "
                f"at line {part.line(row)} ({int(bad.sum())} such values)"
            )
    frame = part.frame[names].apply(pd.to_numeric, errors="coerce")
    return frame.to_numpy(dtype=np.float64)


def _fill(values: np.ndarray, part: _Part, names: list[str], policy: NanPolicy) -> np.ndarray:
    missing = ~np.isfinite(values)
    if not missing.any():
        return values
    if policy == NanPolicy.error:
        row, col = np.argwhere(missing)[0]
        raise ValueError(
            f"{part.path}: column {names[col]!r} has NaN or inf at line {part.line(row)} "
            f"({int(missing.sum())} such values); data.csv.nan_policy=ffill or zero fills them"
        )
    empty = missing.all(axis=0)
    if empty.any():
        raise ValueError(f"{part.path}: column {names[int(np.argmax(empty))]!r} has no value")
    log.warning("%s: %d NaN or inf values filled (%s)", part.path, missing.sum(), policy.value)
    if policy == NanPolicy.zero:
        return np.where(missing, 0.0, values)
    # Each gap takes the last finite value above it; a leading gap the first one below it.
    frame = pd.DataFrame(np.where(missing, np.nan, values))
    return frame.ffill().bfill().to_numpy()


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value it holds, so that messages show `2`, not `np.int64(2)`."""
    return value.item() if isinstance(value, np.generic) else value


def _labels(test: _Part, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    _require_columns(test, [column], "data.csv.label_column")
    values = pd.to_numeric(test.frame[column], errors="coerce").to_numpy()
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{test.path}: column {column!r} (labels) must hold 0 or 1: "
            f"{_plain(test.frame[column].iloc[row])!r} at line {test.line(row)}"
        )
    return values.astype(np.int8)


def _channel_labels(cfg: CsvDataConfig, n_test: int, names: list[str]) -> np.ndarray | None:
    """(n_test, k) from `start-end:c1,c2` lines: test rows 0-based inclusive, channels 1-based
    in the order of the feature columns (ASD's interpretation.txt)."""
    if cfg.channel_labels is None:
        return None
    path = _resolve(cfg, cfg.channel_labels, "channel_labels")
    labels = np.zeros((n_test, len(names)), dtype=np.int8)
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if text.strip():
            start, end, channels = _parse_label_line(text, path, number, n_test, len(names))
            labels[start : end + 1, channels] = 1
    return labels


def _parse_label_line(
    text: str, path: Path, number: int, n_test: int, k: int
) -> tuple[int, int, np.ndarray]:
    match = _LABEL_LINE.match(text)
    if match is None:
        raise ValueError(f"{path}: line {number} {text!r} is not `start-end:channel,channel`")
    start, end = int(match[1]), int(match[2])
    channels = np.array([int(c) for c in match[3].split(",")])
    if not 0 <= start <= end < n_test:
        raise ValueError(
            f"{path}: line {number}: rows {start}-{end} outside the {n_test} test rows"
        )
    if channels.min() < 1 or channels.max() > k:
        raise ValueError(f"{path}: line {number}: channels must lie in 1..{k} (the features)")
    return start, end, channels - 1


def _reconcile(
    labels: np.ndarray | None, channel_labels: np.ndarray | None, test: _Part, cfg: CsvDataConfig
) -> np.ndarray | None:
    if channel_labels is None:
        return labels
    marked = channel_labels.any(axis=1)
    if labels is None:
        return marked.astype(np.int8)
    normal_but_marked = marked & (labels == 0)
    if normal_but_marked.any():
        row = int(np.argmax(normal_but_marked))
        raise ValueError(
            f"{Path(cfg.dir) / str(cfg.channel_labels)}: marks test row {row} anomalous, which "
            f"column {cfg.label_column!r} of {test.path} calls normal: are both counted from the "
            "first test row?"
        )
    return labels


def _kept_channels(
    train_values: np.ndarray, train: _Part, names: list[str], policy: ConstantPolicy
) -> np.ndarray:
    constant = constant_channels(train_values)
    if not constant.any():
        return np.ones(len(names), dtype=bool)
    dropped = [name for name, c in zip(names, constant, strict=True) if c]
    if policy == ConstantPolicy.error:
        raise ValueError(
            f"{train.path}: column {dropped[0]!r} is constant on the training rows "
            f"(constant: {dropped}); data.csv.constant=drop drops such columns"
        )
    if constant.all():
        raise ValueError(f"{train.path}: every feature column is constant on the training rows")
    log.warning("%s: dropped columns constant on the training rows: %s", train.path, dropped)
    return ~constant
