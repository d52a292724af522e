"""Sliding windows over a multichannel series, as views rather than copies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _check_window(n_rows: int, length: int, stride: int) -> None:
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    if stride < 1:
        raise ValueError(f"window stride must be >= 1, got {stride}")
    if length > n_rows:
        raise ValueError(f"window length {length} is longer than the series ({n_rows} rows)")


def window_starts(n_rows: int, length: int, stride: int) -> np.ndarray:
    """Start row of each window; the last window ends exactly at or before the last row."""
    _check_window(n_rows, length, stride)
    return np.arange(0, n_rows - length + 1, stride, dtype=np.int64)


def make_windows(x: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """(n_rows, k) -> (n_windows, length, k), a read-only view of ``x``.

    Unlike the seed notebook (which stopped one window early), the window ending at the last
    row is included: ``n_windows = (n_rows - length) // stride + 1``.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a (n_rows, k) array, got shape {x.shape}")
    _check_window(x.shape[0], length, stride)
    # sliding_window_view puts the window axis last: (n, k, length) -> (n, length, k).
    view = sliding_window_view(x, length, axis=0).transpose(0, 2, 1)
    return view[::stride]


@dataclass(frozen=True, eq=False)
class Windows:
    """A series' sliding windows as one value: window i is rows[starts[i] : starts[i] + length].

    Built once per part of the series (by the pipeline, or by the logged model when it scores)
    and passed down whole: training hands `rows` and `starts` to its compiled epochs, scoring
    takes `view` batch by batch and gives each window's errors back to the rows under it
    through `starts`. No consumer has to take a window array apart again to find its rows.
    """

    rows: np.ndarray  # (n_rows, k)
    length: int
    stride: int = 1

    def __post_init__(self) -> None:
        if np.ndim(self.rows) != 2:
            raise ValueError(f"expected a (n_rows, k) array, got shape {np.shape(self.rows)}")
        _check_window(len(self.rows), self.length, self.stride)

    @property
    def starts(self) -> np.ndarray:
        return window_starts(len(self.rows), self.length, self.stride)

    @property
    def view(self) -> np.ndarray:
        """(n_windows, length, k), a read-only view of `rows`: no window is copied."""
        return make_windows(self.rows, self.length, self.stride)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def channels(self) -> int:
        return int(self.rows.shape[1])

    def __len__(self) -> int:
        return (len(self.rows) - self.length) // self.stride + 1
