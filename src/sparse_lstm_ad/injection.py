"""Anomalies injected into a copy of normal rows: a label-free test a detector can be given.

Any series, not only the generated ones: each kind is made from the rows themselves (in
standardised units), never from a latent model of them. The six kinds of the generator
(data/correlated.py), in their observed-row form:

- spike: one row, `size` channel stds up or down;
- level_shift: `size` stds up or down over the segment;
- drift: a ramp to `size` stds at the segment's end;
- noise_burst: noise of `size` stds added;
- frequency_change: the segment replayed at twice the speed (every other row, from its start);
- correlation_break: the channels' values of another stretch of the same rows, each channel
  within its usual range, no longer in step with the others.

Each anomaly touches `channel_share` of the channels (at least one). Anomalies never overlap
and keep `gap` normal rows between them: a row's label says which rows were changed. A short
validation part holds few anomalies at `anomaly_share`, and an AUC-PR over two anomalies says
little: the rows are copied as often as it takes to hold `anomalies` of them, each copy with
anomalies of its own, each scored alone (no window spans two copies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparse_lstm_ad.config import ANOMALY_KINDS, SelectionConfig


@dataclass(frozen=True)
class Injected:
    copies: list[np.ndarray]  # (n, k) each: a copy of the rows, anomalies in
    labels: list[np.ndarray]  # (n,) int8 each, 1 = a changed row

    @property
    def all_labels(self) -> np.ndarray:
        return np.concatenate(self.labels)


@dataclass(frozen=True)
class _Segment:
    rows: np.ndarray  # indices into the series
    chans: np.ndarray
    size: float
    rng: np.random.Generator

    def signs(self) -> np.ndarray:
        return self.rng.choice(np.array([-1.0, 1.0]), len(self.chans))


_Injector = Callable[[np.ndarray, _Segment], np.ndarray]  # the segment's new values


def _offset(clean: np.ndarray, seg: _Segment, shift: np.ndarray) -> np.ndarray:
    return clean[np.ix_(seg.rows, seg.chans)] + shift


def _level(clean: np.ndarray, seg: _Segment) -> np.ndarray:
    return _offset(clean, seg, seg.size * seg.signs())


def _drift(clean: np.ndarray, seg: _Segment) -> np.ndarray:
    ramp = np.arange(1, len(seg.rows) + 1)[:, None] / len(seg.rows)
    return _offset(clean, seg, seg.size * ramp * seg.signs())


def _noise_burst(clean: np.ndarray, seg: _Segment) -> np.ndarray:
    return _offset(clean, seg, seg.size * seg.rng.standard_normal((len(seg.rows), len(seg.chans))))


def _frequency_change(clean: np.ndarray, seg: _Segment) -> np.ndarray:
    faster = seg.rows[0] + 2 * np.arange(len(seg.rows))
    return clean[np.ix_(np.minimum(faster, len(clean) - 1), seg.chans)]


def _correlation_break(clean: np.ndarray, seg: _Segment) -> np.ndarray:
    n = len(seg.rows)
    # Another stretch, at least a segment away: the channels' own values, out of step.
    starts = np.arange(len(clean) - n + 1)
    far = starts[np.abs(starts - seg.rows[0]) >= n]
    start = int(seg.rng.choice(far)) if len(far) else (seg.rows[0] + n // 2) % len(starts)
    return clean[np.ix_(start + np.arange(n), seg.chans)]


_INJECTORS: dict[str, _Injector] = {
    "spike": _level,
    "level_shift": _level,
    "frequency_change": _frequency_change,
    "noise_burst": _noise_burst,
    "drift": _drift,
    "correlation_break": _correlation_break,
}
assert set(_INJECTORS) == set(ANOMALY_KINDS)


def inject_anomalies(clean: np.ndarray, cfg: SelectionConfig, gap: int, seed: int) -> Injected:
    """Copies of `clean` (n, k), each with anomalies of every kind, in turn, in about
    `cfg.anomaly_share` of its rows and `gap` normal rows at least between them and at the
    ends; as many copies as hold `cfg.anomalies` anomalies in all.

    The same rows, config and seed give the same copies: every candidate of a selection is
    tested on the same anomalies.
    """
    rng = np.random.default_rng([seed, 0x1A])  # a stream of its own: no other draw moves
    copies: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    injected = 0
    if len(clean) < 3:
        raise ValueError(f"{len(clean)} validation rows hold no injected anomaly: at least 3")
    planned = 0  # anomalies planned so far: the next copy's kinds go on from there
    while injected < cfg.anomalies:
        values, marked, count = _one_copy(clean, cfg, gap, rng, planned)
        copies.append(values)
        labels.append(marked)
        injected += int((np.diff(np.r_[0, marked]) == 1).sum())
        planned += count
    return Injected(copies, labels)


def _one_copy(
    clean: np.ndarray, cfg: SelectionConfig, gap: int, rng: np.random.Generator, first: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """A copy with its anomalies, kinds in turn from the `first`-th; and how many it has."""
    values = np.array(clean, dtype=np.float64, copy=True)
    labels = np.zeros(len(values), dtype=np.int8)
    k = values.shape[1]
    width = max(1, round(cfg.channel_share * k))
    plan = _plan(len(values), cfg, gap, rng, first)
    for kind, start, length in plan:
        chans = np.sort(rng.choice(k, width, replace=False))
        segment = _Segment(start + np.arange(length), chans, cfg.size, rng)
        values[np.ix_(segment.rows, chans)] = _INJECTORS[kind](clean, segment)
        labels[segment.rows] = 1
    return values, labels, len(plan)


def _plan(
    n: int, cfg: SelectionConfig, gap: int, rng: np.random.Generator, first: int
) -> list[tuple[str, int, int]]:
    """(kind, first row, length) of each anomaly: kinds in turn from the `first`-th (a copy
    goes on where the one before it stopped: a short part holding one anomaly a copy had
    only ever spikes), at random free slots.

    A part shorter than twice the gap keeps a gap of a third of its rows: never no room."""
    gap = min(gap, n // 3)
    length = min(cfg.length, max(2, (n - 2 * gap) // 4))
    slot = length + gap  # an anomaly and the normal rows after it
    slots = max(1, (n - gap) // slot)
    wanted = max(1, min(slots, round(cfg.anomaly_share * n / length)))
    chosen = np.sort(rng.choice(slots, wanted, replace=False))
    turn = first + rng.permutation(wanted)
    kinds = [ANOMALY_KINDS[i % len(ANOMALY_KINDS)] for i in turn]
    plan = []
    for kind, index in zip(kinds, chosen, strict=True):
        rows = 1 if kind == "spike" else length
        plan.append((kind, int(gap + index * slot), min(rows, n - gap - index * slot)))
    return [p for p in plan if p[2] >= 1]
