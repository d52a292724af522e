"""VUS equals its authors' own code: TSB-AD's `basic_metricor().RangeAUC_volume_opt`.

The reference is installed without its dependencies (requirements-reference.lock): its
evaluation module needs only NumPy and scikit-learn. Each case runs it and ours on the same
scores and labels, with `windowSize` = our `max_buffer` and `thre` = our `n_thresholds`.
"""

from __future__ import annotations

import numpy as np
import pytest
from TSB_AD.evaluation.basic_metrics import basic_metricor

from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.metrics import vus
from sparse_lstm_ad.pipeline import prepare_rows, score_parts, train_model
from tests.conftest import ROOT, compose_config

ASD = ROOT.parent / "shared" / "data" / "asd"
# 0 and 1 add no buffer row; 7 an odd one; 100 the default (each also sums all below it).
BUFFERS = (0, 1, 7, 100)


def _reference(scores: np.ndarray, labels: np.ndarray, buffer: int) -> tuple[float, float]:
    *_, roc, pr = basic_metricor().RangeAUC_volume_opt(labels.astype(int), scores, buffer, 250)
    return roc, pr


def _assert_equal_to_reference(scores: np.ndarray, labels: np.ndarray, buffer: int) -> None:
    ours = vus(scores, labels, max_buffer=buffer)
    expected = _reference(scores, labels, buffer)
    assert ours.roc == pytest.approx(expected[0], abs=1e-6)
    assert ours.pr == pytest.approx(expected[1], abs=1e-6)


def _ranges(n: int, spans: list[tuple[int, int]]) -> np.ndarray:
    labels = np.zeros(n, dtype=int)
    for start, length in spans:
        labels[start : start + length] = 1
    return labels


def _structured_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    noise = rng.normal(size=1500)
    long_one = _ranges(1500, [(600, 200)])
    short_many = _ranges(1500, [(s, 3) for s in range(100, 1400, 250)])
    edges = _ranges(1500, [(0, 30), (1450, 50)])
    # Buffers of 100 meet (gap 40) and merely touch (gap 2 * 50 + 1 rows apart is apart).
    close = _ranges(1500, [(500, 20), (560, 20), (1000, 10), (1111, 10)])
    point = _ranges(1500, [(750, 1)])
    return {
        "one long anomaly": (noise + 2 * long_one, long_one),
        "many short anomalies": (noise + 1.5 * short_many, short_many),
        "anomalies at both edges": (noise + edges, edges),
        "buffers that meet and touch": (noise + close, close),
        "a single anomalous row": (noise + 3 * point, point),
        "integer scores, many ties": (rng.integers(0, 5, 1500) + 2.0 * short_many, short_many),
        "constant score": (np.ones(1500), long_one),
        "perfect point score": (long_one * 1.0, long_one),
        "flags near, not on, the anomaly": (np.roll(long_one, 30) + 0.1 * noise, long_one),
        "inverted score": (-noise - long_one, long_one),
        "all-normal stretch, then dense": (
            noise + _ranges(1500, [(1200, 300)]),
            _ranges(1500, [(1200, 300)]),
        ),
        "short series": (noise[:60] + short_many[100:160], short_many[100:160]),
    }


@pytest.mark.parametrize("name", list(_structured_cases()))
def test_vus_equals_the_reference_on_structured_cases(name: str) -> None:
    scores, labels = _structured_cases()[name]
    for buffer in BUFFERS:
        _assert_equal_to_reference(scores, labels, buffer)


@pytest.mark.parametrize("seed", range(10))
def test_vus_equals_the_reference_on_random_cases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # The reference loops over ranges per threshold and buffer: many ranges cost seconds.
    n = int(rng.integers(50, 1000))
    labels = (rng.random(n) < rng.choice([0.003, 0.01, 0.02])).astype(int)
    for start in rng.integers(0, n - 1, 3):
        labels[start : start + rng.integers(1, 80)] = 1
    ties = seed % 2 == 0
    scores = (rng.integers(0, 10, n) if ties else rng.normal(size=n)) + 2.0 * labels
    for buffer in (0, 7, 100):
        _assert_equal_to_reference(scores, labels, buffer)


@pytest.mark.skipif(not ASD.is_dir(), reason=f"ASD is not at {ASD}")
@pytest.mark.parametrize("model", ["mahalanobis", "pca"])
def test_vus_equals_the_reference_on_real_run_scores(model: str) -> None:
    """The test scores a run computes on ASD omi-2 (baselines: no TensorFlow, seconds)."""
    cfg = compose_config(f"model={model}", "data=asd_omi2")
    rows = prepare_rows(cfg)
    windows = {
        part: Windows(getattr(rows, part), cfg.data.window, cfg.data.stride)
        for part in ("train", "val", "test")
    }
    fitted = train_model(cfg, rows.train, windows)
    scores = score_parts(fitted.detector, cfg, windows).test
    scored = np.isfinite(scores)
    assert rows.test_labels is not None and scored.sum() > 4000
    for buffer in (0, 20, 100):
        _assert_equal_to_reference(scores[scored], rows.test_labels[scored], buffer)


def test_a_wider_buffer_credits_rows_flagged_near_an_anomaly() -> None:
    """The direction the reference takes: a score that flags just beside a range gains as
    the buffer widens (the project's earlier variant fell)."""
    labels = _ranges(2000, [(800, 50)])
    scores = np.roll(labels, 10) + 0.01 * np.random.default_rng(0).normal(size=2000)
    pr = [vus(scores, labels, max_buffer=b).pr for b in (0, 20, 100)]
    assert pr[0] < pr[1] < pr[2]
