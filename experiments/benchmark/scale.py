"""The scale case: k = 500 channels, 200,000 rows, and the same at 100,000 to see memory grow.

    .venv/bin/python experiments/benchmark/scale.py ROWS   # one case, one JSON line

Each case runs in a process of its own, so its peak RSS is its own.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from common import HERE, Row, child_json, peak_rss_mb

CHANNELS = 500
ROWS = (100_000, 200_000)
EPOCHS = 3


def scale_rows() -> tuple[list[Row], list[str]]:
    half, full = (child_json([sys.executable, str(HERE / "scale.py"), str(n)]) for n in ROWS)
    k, n = CHANNELS, f"{ROWS[1]:,}"
    rows = [
        Row(f"scale k={k}, {n} rows: time per epoch (median)", None, full["epoch"]),
        Row(f"scale k={k}, {n} rows: fit {full['epochs']} epochs", None, full["fit"]),
        Row("scale: predict + error model + scores (pipeline.score_parts)", None, full["score"]),
        Row("scale: peak RSS after fit", None, full["rss_fit"], "< 4000 MB", "MB"),
        Row("scale: peak RSS after scoring", None, full["rss_score"], "< 4000 MB", "MB"),
        Row(
            f"scale: peak RSS at {ROWS[0]:,} rows (memory linear in rows: the same slope)",
            None,
            half["rss_score"],
            unit="MB",
        ),
    ]
    slope = (full["rss_score"] - half["rss_score"]) / (ROWS[1] - ROWS[0]) * 1e6
    notes = [
        f"- scale case: {full['train_windows']} training windows, per-epoch seconds "
        f"{[round(s, 1) for s in full['epoch_seconds']]}; memory grows by {slope:.0f} MB per "
        f"million rows between {ROWS[0]:,} and {ROWS[1]:,} rows (the rows themselves, float64 "
        f"and standardised: {CHANNELS * 8 * 2:,} MB per million); AUC-ROC not meaningful "
        "(synthetic, no anomaly)."
    ]
    return rows, notes


def scale_case(n: int) -> None:
    """k = CHANNELS, n rows: fit EPOCHS epochs, score; prints one JSON line."""
    from sparse_lstm_ad.config import Config, DataConfig, TrainConfig
    from sparse_lstm_ad.data import Windows, fit_standardizer
    from sparse_lstm_ad.detectors.network import with_error_model
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.pipeline import Rows, score_parts
    from sparse_lstm_ad.training import fit_autoencoder, make_repeatable

    cfg = Config(data=DataConfig(name="scale"), train=TrainConfig(epochs=EPOCHS))
    make_repeatable(0, True)
    rng = np.random.default_rng(0)
    k, train_end, val_end = CHANNELS, int(n * 0.72), int(n * 0.8)
    t = np.arange(n)[:, None]
    series = np.sin(t / rng.uniform(200, 2000, k)) + rng.normal(0, 0.3, (n, k))
    channels = [f"c{i}" for i in range(k)]
    standardizer = fit_standardizer(series[:val_end], channels)
    scaled = standardizer.transform(series)
    del series
    parts = scaled[:train_end], scaled[train_end:val_end], scaled[val_end:]
    rows = Rows(*parts, None, channels, standardizer)
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    model = build_model(cfg.model, cfg.data.window, k)
    started = time.perf_counter()
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train)
    fit_seconds, rss_fit = time.perf_counter() - started, peak_rss_mb()
    started = time.perf_counter()
    score_parts(with_error_model(model, cfg, windows)[0], cfg, windows)
    figures = {
        "epochs": fit.epochs_run,
        "fit": fit_seconds,
        "epoch": float(np.median(fit.history["epoch_seconds"][1:])),
        "rss_fit": rss_fit,
        "score": time.perf_counter() - started,
        "rss_score": peak_rss_mb(),
        "train_windows": len(windows["train"]),
        "epoch_seconds": fit.history["epoch_seconds"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    scale_case(int(sys.argv[1]))
