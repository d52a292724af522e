"""Sliding windows over a multichannel series, as views rather than copies."""

from __future__ import annotations

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
