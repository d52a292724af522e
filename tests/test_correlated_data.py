"""The generated correlated groups: where the anomalies go, what they change, and nothing else."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sparse_lstm_ad.config import (
    ANOMALY_KINDS,
    AnomalyTypeConfig,
    CorrelatedAnomaliesConfig,
    CorrelatedDataConfig,
)
from sparse_lstm_ad.config_checks import ConfigError
from sparse_lstm_ad.data.correlated import CorrelatedSeries, correlated_series
from sparse_lstm_ad.data.sources import load_series
from tests.conftest import compose_config

_SMALL = CorrelatedDataConfig(seed=3, channels=12, groups=3, length=4000, train_share=0.5)


def _only(kind: str | None, count: int = 3, **changes: float) -> CorrelatedDataConfig:
    """`_SMALL` with `count` anomalies of `kind` and none of the other kinds."""
    off = {name: AnomalyTypeConfig(count=0) for name in ANOMALY_KINDS}
    anomalies = CorrelatedAnomaliesConfig(**off, gap=20)
    if kind is not None:
        setting = dataclasses.replace(getattr(_SMALL.anomalies, kind), count=count, **changes)
        anomalies = dataclasses.replace(anomalies, **{kind: setting})
    return dataclasses.replace(_SMALL, anomalies=anomalies)


def _clean() -> CorrelatedSeries:
    return correlated_series(_only(None))


def test_channels_follow_their_group() -> None:
    series = _clean()
    corr = np.corrcoef(series.train.T)
    same = series.group_of[:, None] == series.group_of[None, :]
    assert corr[same].min() > 0.9
    assert np.abs(corr[~same]).max() < 0.2
    assert series.channels[:2] == ["c00_g0", "c01_g0"] and series.channels[-1] == "c11_g2"
    assert not series.test_labels.any() and series.anomalies == []


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_changes_only_what_its_labels_say(kind: str) -> None:
    clean, series = _clean(), correlated_series(_only(kind))
    assert len(series.anomalies) == 3 and {a.kind for a in series.anomalies} == {kind}
    np.testing.assert_array_equal(series.train, clean.train)  # train stays normal
    changed = series.test != clean.test
    labelled = series.test_channel_labels == 1
    assert not (changed & ~labelled).any()
    # Additive kinds change every labelled value; the remade ones all but chance coincidences.
    assert changed[labelled].mean() > (0.95 if kind == "correlation_break" else 0.999)
    np.testing.assert_array_equal(series.test_labels, labelled.any(axis=1))
    for anomaly in series.anomalies:
        rows = slice(anomaly.start, anomaly.start + anomaly.length)
        assert labelled[rows][:, list(anomaly.channels)].all()
        assert len(set(series.group_of[list(anomaly.channels)])) == 1


def test_anomalies_are_disjoint_and_apart() -> None:
    cfg = compose_config("data=correlated").data.correlated
    series = correlated_series(cfg)
    spans = sorted((a.start, a.start + a.length) for a in series.anomalies)
    gap, n_test = cfg.anomalies.gap, len(series.test)
    assert spans[0][0] >= gap and spans[-1][1] <= n_test - gap
    assert all(b[0] - a[1] >= gap for a, b in itertools.pairwise(spans))
    expected = sum(getattr(cfg.anomalies, kind).count for kind in ANOMALY_KINDS)
    assert len(series.anomalies) == expected


def test_correlation_break_stays_in_range_but_leaves_its_group() -> None:
    series = correlated_series(_only("correlation_break", count=4, length=100))
    low, high = series.train.min(axis=0), series.train.max(axis=0)
    for anomaly in series.anomalies:
        rows = slice(anomaly.start, anomaly.start + anomaly.length)
        (broken,) = anomaly.channels
        values = series.test[rows, broken]
        assert low[broken] <= values.min() and values.max() <= high[broken]
        mates = np.flatnonzero(series.group_of == series.group_of[broken])
        mate = next(int(c) for c in mates if c != broken)
        assert np.corrcoef(values, series.test[rows, mate])[0, 1] < 0.0  # half a period off
        assert np.corrcoef(series.train[:, broken], series.train[:, mate])[0, 1] > 0.9


def test_seeded_and_sized() -> None:
    a, b = correlated_series(_SMALL), correlated_series(_SMALL)
    np.testing.assert_array_equal(a.values, b.values)
    other = correlated_series(dataclasses.replace(_SMALL, seed=4))
    assert not np.array_equal(a.values, other.values)
    wide = correlated_series(CorrelatedDataConfig(channels=300, groups=12, length=5000))
    assert wide.values.shape == (5000, 300) and wide.test_channel_labels.shape == (2000, 300)


def test_too_many_anomalies_are_refused() -> None:
    with pytest.raises(ValueError, match="test rows"):
        correlated_series(_only("level_shift", count=30, length=100))


def test_composes_and_loads_through_the_config() -> None:
    cfg = compose_config("data=correlated", "data.every=2")
    assert cfg.data.name == "correlated" and cfg.data.correlated.channels == 32
    split = load_series(cfg.data)
    assert split.train.shape == (3000, 32) and split.test.shape == (2000, 32)
    assert split.test_channel_labels is not None and split.test_channel_labels.shape == (2000, 32)
    np.testing.assert_array_equal(split.test_labels, split.test_channel_labels.any(axis=1))


@pytest.mark.parametrize(
    "override",
    [
        "data.correlated.groups=64",
        "data.correlated.train_share=1",
        "data.correlated.anomalies.correlation_break.size=1.5",
        "data.correlated.anomalies.frequency_change.size=1",
        "data.correlated.anomalies.spike.count=-1",
        "data.seed.n_f2=0",
    ],
)
def test_bad_values_name_the_key(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config("data=correlated", override)


def _premise(channels: int) -> CorrelatedSeries:
    """The paper's premise: 4 signals in 80 % redundant copies, 20 % pure noise, any k."""
    cfg = dataclasses.replace(
        _only("correlation_break"),
        channels=channels,
        groups=4,
        redundant_share=0.8,
        noise_share=0.2,
    )
    return correlated_series(cfg)


@pytest.mark.parametrize("channels", [20, 100, 200])
def test_redundant_and_noise_channels_carry_the_same_few_signals(channels: int) -> None:
    series = _premise(channels)
    names = series.channels
    noise = [i for i, name in enumerate(names) if name.endswith("_n")]
    assert len(noise) == channels // 5 and noise == list(range(channels - len(noise), channels))
    assert sum("_g" in name for name in names) == channels - len(noise)
    train = series.train
    z = (train - train.mean(axis=0)) / train.std(axis=0)
    # The noise channels are uncorrelated with everything; the rest live on 4 latents, each a
    # sine plus a harmonic: the signal channels' covariance is nearly of rank 8 at any k.
    signal = np.linalg.eigvalsh(np.cov(z[:, : channels - len(noise)].T))[::-1]
    assert signal[:8].sum() / signal.sum() > 0.9
    assert np.abs(np.corrcoef(z[:, noise].T) - np.eye(len(noise))).max() < 0.2
    # Anomalies break group channels only: the labels never touch a noise channel.
    assert series.test_channel_labels[:, noise].sum() == 0
    assert series.test_channel_labels.sum() > 0


def test_solo_channels_follow_latents_of_their_own() -> None:
    cfg = dataclasses.replace(_SMALL, channels=12, groups=2, redundant_share=0.5, noise_share=0.25)
    series = correlated_series(cfg)
    assert [name[-2:] for name in series.channels] == ["g0"] * 3 + ["g1"] * 3 + ["_s"] * 3 + [
        "_n"
    ] * 3
    assert list(series.group_of) == [0, 0, 0, 1, 1, 1, 2, 3, 4, -1, -1, -1]


def test_shares_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="redundant_share"):
        correlated_series(dataclasses.replace(_SMALL, redundant_share=0.9, noise_share=0.5))
    with pytest.raises(ValueError, match="groups=3"):
        correlated_series(dataclasses.replace(_SMALL, redundant_share=0.1, noise_share=0.0))
