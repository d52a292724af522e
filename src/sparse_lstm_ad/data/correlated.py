"""Groups of correlated channels, with labelled anomalies of six kinds in the test part.

Group g has a latent signal z_g(t) = periodic_g(t) + shared noise; channel c of group g is
x_c(t) = gain_c * z_g(t) + offset_c + own noise. A channel that stops following its group
while staying in its usual range (a correlation break) looks normal channel by channel: only a
model of the group sees it, which is what the sparse models are meant to be good at.

Channels have one of three roles, in this order: `redundant_share` of them are such
near-copies of the `groups` latent signals (named c07_g1: channel 7, group 1), `noise_share`
of them are pure noise (c07_n), and the rest each follow a latent signal of their own (c07_s,
"solo"). With the two shares summing to 1, any number of channels carries the same few
signals: the paper's premise of many redundant channels. Anomalies go into group channels.

The normal series and the anomalies draw from two independent streams of one seed, so the
same seed with every anomaly turned off gives the same series without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sparse_lstm_ad.config import ANOMALY_KINDS, AnomalyTypeConfig, CorrelatedDataConfig

_HARMONIC = 0.3  # amplitude of the second harmonic: a latent less trivial than one sine
_PERIOD_SPREAD = (0.7, 1.3)  # each group's period, as factors of the configured mean period
_GAIN = (0.5, 2.0)
_OFFSET = (-5.0, 5.0)


@dataclass(frozen=True)
class InjectedAnomaly:
    kind: str  # one of config.ANOMALY_KINDS
    start: int  # first test row
    length: int
    channels: tuple[int, ...]  # channel indices, all from one group


@dataclass(frozen=True)
class CorrelatedSeries:
    values: np.ndarray  # (rows, k) train rows, then test rows
    channels: list[str]
    group_of: np.ndarray  # (k,) each channel's group
    train_rows: int
    test_labels: np.ndarray  # (n_test,) int8, 1 = some channel anomalous
    test_channel_labels: np.ndarray  # (n_test, k) int8, 1 = this channel anomalous here
    anomalies: list[InjectedAnomaly]

    @property
    def train(self) -> np.ndarray:
        return self.values[: self.train_rows]

    @property
    def test(self) -> np.ndarray:
        return self.values[self.train_rows :]


@dataclass(frozen=True)
class _Latent:
    """What the channels are made of, kept so that an anomaly can remake a channel."""

    period: np.ndarray  # (g,) rows
    phase: np.ndarray  # (g,)
    harmonic_phase: np.ndarray  # (g,)
    shared_noise: np.ndarray  # (rows, g)
    gain: np.ndarray  # (k,)
    offset: np.ndarray  # (k,)
    own_noise: np.ndarray  # (rows, k)
    group_of: np.ndarray  # (k,) each channel's latent signal; -1: a pure-noise channel

    def channel_values(
        self, rows: np.ndarray, channels: np.ndarray, frequency: float = 1.0, lag: int = 0
    ) -> np.ndarray:
        """(len(rows), len(channels)): the channels as their group's signal `lag` rows earlier,
        its periodic part at `frequency` times its own; each channel keeps its own noise."""
        # The signal once per group, then spread to the channels: k can be hundreds.
        groups, column = np.unique(self.group_of[channels], return_inverse=True)
        carries = groups >= 0  # a pure-noise channel has no latent part
        groups = np.where(carries, groups, 0)
        source = rows - lag
        angle = 2 * np.pi * frequency * source[:, None] / self.period[groups]
        periodic = np.sin(angle + self.phase[groups]) + _HARMONIC * np.sin(
            2 * angle + self.harmonic_phase[groups]
        )
        latent = ((periodic + self.shared_noise[np.ix_(source, groups)]) * carries)[:, column]
        own = self.own_noise[np.ix_(rows, channels)]
        return latent * self.gain[channels] + self.offset[channels] + own


def _roles(cfg: CorrelatedDataConfig) -> np.ndarray:
    """(k,) each channel's latent: contiguous groups (sizes within one of each other) of the
    redundant channels, then one latent per solo channel, then -1 for the noise channels."""
    k, g = cfg.channels, cfg.groups
    noise = round(cfg.noise_share * k)
    redundant = round(cfg.redundant_share * k)
    if not 0 <= noise <= k or not g <= redundant <= k - noise:
        raise ValueError(
            f"data.correlated: redundant_share {cfg.redundant_share} and noise_share "
            f"{cfg.noise_share} of {k} channels must leave at least groups={g} redundant "
            "channels and sum to at most 1"
        )
    solo = k - redundant - noise
    return np.concatenate(
        [np.arange(redundant) * g // redundant, g + np.arange(solo), np.full(noise, -1)]
    )


def _draw_latent(cfg: CorrelatedDataConfig, rng: np.random.Generator) -> _Latent:
    group_of = _roles(cfg)
    k, n = cfg.channels, cfg.length
    g = int(group_of.max()) + 1  # the latent signals: the groups' and the solo channels'
    return _Latent(
        # Periods differ between groups so that groups are not correlated with each other.
        period=cfg.period * rng.uniform(*_PERIOD_SPREAD, g),
        phase=rng.uniform(0, 2 * np.pi, g),
        harmonic_phase=rng.uniform(0, 2 * np.pi, g),
        shared_noise=cfg.latent_noise * rng.standard_normal((n, g)),
        gain=rng.uniform(*_GAIN, k),
        offset=rng.uniform(*_OFFSET, k),
        own_noise=cfg.noise * rng.standard_normal((n, k)),
        group_of=group_of,
    )


def _check_shape(cfg: CorrelatedDataConfig) -> int:
    if not 1 <= cfg.groups <= cfg.channels:
        raise ValueError(f"groups ({cfg.groups}) must lie in [1, channels ({cfg.channels})]")
    train_rows = round(cfg.length * cfg.train_share)
    if not 0 < train_rows < cfg.length:
        raise ValueError(f"train_share {cfg.train_share} of {cfg.length} rows leaves a part empty")
    return train_rows


def _place(lengths: np.ndarray, n_test: int, gap: int, rng: np.random.Generator) -> np.ndarray:
    """Start rows of disjoint segments of `lengths`, in the given order, `gap` rows apart and
    from both ends; the free rows are spread at random (sorted uniform draws)."""
    slack = n_test - int(lengths.sum()) - gap * (len(lengths) + 1)
    if slack < 0:
        raise ValueError(
            f"{len(lengths)} anomalies of {int(lengths.sum())} rows with gaps of {gap} need "
            f"{n_test - slack} test rows; the test part has {n_test}: fewer or shorter anomalies, "
            "a smaller gap, or more rows"
        )
    extra = np.sort(rng.integers(0, slack + 1, len(lengths)))
    before = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return gap * (np.arange(len(lengths)) + 1) + before + extra


@dataclass(frozen=True)
class _Context:
    latent: _Latent
    values: np.ndarray  # (rows, k) the clean series
    std: np.ndarray  # (k,) of the clean training rows
    low: np.ndarray  # (k,) training minimum
    high: np.ndarray  # (k,) training maximum


@dataclass(frozen=True)
class _Segment:
    rows: np.ndarray  # absolute rows
    chans: np.ndarray
    size: float
    rng: np.random.Generator

    def signs(self) -> np.ndarray:
        return self.rng.choice(np.array([-1.0, 1.0]), len(self.chans))


# Each kind: the segment's new values, (len(rows), len(chans)).
_Injector = Callable[[_Context, _Segment], np.ndarray]


def _offset_by(ctx: _Context, seg: _Segment, shift: np.ndarray) -> np.ndarray:
    return ctx.values[np.ix_(seg.rows, seg.chans)] + shift * ctx.std[seg.chans]


def _spike_or_shift(ctx: _Context, seg: _Segment) -> np.ndarray:
    return _offset_by(ctx, seg, seg.size * seg.signs())


def _drift(ctx: _Context, seg: _Segment) -> np.ndarray:
    # Starts one step in (not at 0) so that every labelled row is changed.
    ramp = np.arange(1, len(seg.rows) + 1)[:, None] / len(seg.rows)
    return _offset_by(ctx, seg, seg.size * ramp * seg.signs())


def _noise_burst(ctx: _Context, seg: _Segment) -> np.ndarray:
    noise = seg.rng.standard_normal((len(seg.rows), len(seg.chans)))
    return _offset_by(ctx, seg, seg.size * noise)


def _frequency_change(ctx: _Context, seg: _Segment) -> np.ndarray:
    return ctx.latent.channel_values(seg.rows, seg.chans, frequency=seg.size)


def _correlation_break(ctx: _Context, seg: _Segment) -> np.ndarray:
    group = ctx.latent.group_of[seg.chans[0]]
    lag = max(1, round(seg.size * float(ctx.latent.period[group])))
    if lag > seg.rows[0]:
        raise ValueError(f"a correlation break's lag ({lag} rows) reaches before the series")
    shifted = ctx.latent.channel_values(seg.rows, seg.chans, lag=lag)
    # Clipping to the training range keeps the break a change of correlation only.
    return np.clip(shifted, ctx.low[seg.chans], ctx.high[seg.chans])


_INJECTORS: dict[str, _Injector] = {
    "spike": _spike_or_shift,
    "level_shift": _spike_or_shift,
    "frequency_change": _frequency_change,
    "noise_burst": _noise_burst,
    "drift": _drift,
    "correlation_break": _correlation_break,
}


def _pick_channels(
    group_of: np.ndarray, groups: int, wanted: int, rng: np.random.Generator
) -> np.ndarray:
    """`wanted` channels of one of the first `groups` latents: the redundant groups."""
    members = np.flatnonzero(group_of == rng.integers(groups))
    return np.sort(rng.choice(members, min(wanted, len(members)), replace=False))


def _plan(
    cfg: CorrelatedDataConfig, n_test: int, rng: np.random.Generator
) -> list[tuple[str, int, int]]:
    """(kind, start, length) of every anomaly, in a random order over the test part."""
    kinds: list[str] = []
    for kind in ANOMALY_KINDS:
        kinds += [kind] * getattr(cfg.anomalies, kind).count
    if not kinds:
        return []
    order = rng.permutation(len(kinds))
    kinds = [kinds[i] for i in order]
    lengths = np.array([getattr(cfg.anomalies, kind).length for kind in kinds])
    starts = _place(lengths, n_test, cfg.anomalies.gap, rng)
    return [(kind, int(s), int(n)) for kind, s, n in zip(kinds, starts, lengths, strict=True)]


def _inject(
    ctx: _Context, cfg: CorrelatedDataConfig, train_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[InjectedAnomaly]]:
    values = ctx.values.copy()
    n_test = len(values) - train_rows
    channel_labels = np.zeros((n_test, values.shape[1]), dtype=np.int8)
    injected = []
    for kind, start, length in _plan(cfg, n_test, rng):
        setting: AnomalyTypeConfig = getattr(cfg.anomalies, kind)
        chans = _pick_channels(ctx.latent.group_of, cfg.groups, setting.channels, rng)
        rows = train_rows + start + np.arange(length)
        segment = _Segment(rows, chans, setting.size, rng)
        values[np.ix_(rows, chans)] = _INJECTORS[kind](ctx, segment)
        channel_labels[np.ix_(rows - train_rows, chans)] = 1
        injected.append(InjectedAnomaly(kind, start, length, tuple(int(c) for c in chans)))
    return values, channel_labels, injected


def channel_names(group_of: np.ndarray, groups: int) -> list[str]:
    """c07_g1: channel 7, of group 1 (c07_s: a solo channel, c07_n: noise); zero-padded so
    that names sort in channel order."""
    width = len(str(len(group_of) - 1))
    roles = ["n" if g < 0 else f"g{g}" if g < groups else "s" for g in group_of]
    return [f"c{c:0{width}d}_{role}" for c, role in enumerate(roles)]


def correlated_series(cfg: CorrelatedDataConfig) -> CorrelatedSeries:
    """The series of `cfg`, anomalies injected into its test part (rows after the train share)."""
    train_rows = _check_shape(cfg)
    base_rng, anomaly_rng = np.random.default_rng(cfg.seed).spawn(2)
    latent = _draw_latent(cfg, base_rng)
    clean = latent.channel_values(np.arange(cfg.length), np.arange(cfg.channels))
    train = clean[:train_rows]
    ctx = _Context(latent, clean, train.std(axis=0), train.min(axis=0), train.max(axis=0))
    values, channel_labels, injected = _inject(ctx, cfg, train_rows, anomaly_rng)
    return CorrelatedSeries(
        values=values,
        channels=channel_names(latent.group_of, cfg.groups),
        group_of=latent.group_of,
        train_rows=train_rows,
        test_labels=channel_labels.any(axis=1).astype(np.int8),
        test_channel_labels=channel_labels,
        anomalies=injected,
    )
