"""The synthetic series of the seed notebook (takanyanta's Sparse LSTM autoencoder).

The generators reproduce the notebook's numbers bit for bit: same legacy seeds, same order of
random draws, same arithmetic order. They use a private ``RandomState`` instead of
``np.random.seed`` so that calling them never changes the caller's global random state
(the legacy global generator and ``RandomState(seed)`` produce the same stream).
"""

from __future__ import annotations

import numpy as np

SEED_ROWS = 15_000
SEED_TRAIN_ROWS = 10_000
SEED_ANOMALY_FROM = 3_000  # test row from which labels are 1

F1_SEED = 100
F2_SEED = 1

# Piece lengths of both series: long normal regime, 500-row transition, new regime.
_NORMAL_ROWS = 13_000
_RAMP_ROWS = 500
_SHIFTED_ROWS = 1_500


def seed_f1() -> np.ndarray:
    """F1: noisy slow sine at level 50, a 500-row ramp towards 55, then a sine at level 55."""
    rng = np.random.RandomState(F1_SEED)
    i_normal = np.arange(_NORMAL_ROWS)
    normal = np.sin(i_normal / 1000) + rng.normal(0, 1, _NORMAL_ROWS) + 50

    # The notebook blends the two levels with weights (1 - t, t), t = i/500, so the ramp
    # stops one step short of 55; kept as is for bit-exact reproduction.
    i_ramp = np.arange(_RAMP_ROWS)
    t = i_ramp / _RAMP_ROWS
    ramp = (np.sin(i_ramp / 2000) + rng.normal(0, 2, _RAMP_ROWS)) + 50 * (1 - t) + 55 * t

    i_shifted = np.arange(_SHIFTED_ROWS)
    shifted = 1.5 * np.sin(i_shifted / 1500) + rng.normal(0, 1, _SHIFTED_ROWS) + 55
    return np.concatenate([normal, ramp, shifted])


def seed_f2() -> np.ndarray:
    """F2: N(50, 2), then a ramp 50 -> 60 plus N(0, 2), then N(60, 2)."""
    rng = np.random.RandomState(F2_SEED)
    normal = rng.normal(50, 2, _NORMAL_ROWS)
    # arange with step 10/500 (not linspace): the notebook's ramp, ending at 59.98.
    ramp = np.arange(50, 60, 10 / _RAMP_ROWS) + rng.normal(0, 2, _RAMP_ROWS)
    shifted = rng.normal(60, 2, _SHIFTED_ROWS)
    return np.concatenate([normal, ramp, shifted])


def seed_series(n_f2: int) -> tuple[np.ndarray, list[str]]:
    """[F1, F2, F2, ...] with ``n_f2`` exact copies of F2, as in the notebook's cases 1 and 2.

    The copies are identical because the notebook regenerates F2 with the same seed for each;
    names get a suffix so that every channel name stays unique.
    """
    if n_f2 < 0:
        raise ValueError(f"n_f2 must be >= 0, got {n_f2}")
    f2 = seed_f2()
    values = np.column_stack([seed_f1(), *([f2] * n_f2)])
    names = ["F1"] + ["F2" if j == 1 else f"F2_{j}" for j in range(1, n_f2 + 1)]
    return values, names


def seed_labels(
    train_rows: int = SEED_TRAIN_ROWS,
    anomaly_from: int = SEED_ANOMALY_FROM,
    n_rows: int = SEED_ROWS,
) -> np.ndarray:
    """Point labels of the test rows: 1 from the regime shift (test row ``anomaly_from``) on."""
    n_test = n_rows - train_rows
    if n_test < 1:
        raise ValueError(f"train_rows ({train_rows}) leaves no test rows out of {n_rows}")
    if not 0 <= anomaly_from <= n_test:
        raise ValueError(f"anomaly_from ({anomaly_from}) must lie in [0, {n_test}]")
    labels = np.zeros(n_test, dtype=np.int8)
    labels[anomaly_from:] = 1
    return labels
