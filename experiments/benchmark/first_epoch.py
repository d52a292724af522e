"""A fresh process's first epoch, graph by graph: what tracing and setting up each costs.

    .venv/bin/python experiments/benchmark/first_epoch.py   # again: loads from XLA's cache

The trainer of `graph_cache` (as a fit makes it) for the sparse gate on 10,000 x 5 training
and 2,500 x 5 validation rows, window 15, batch 128: its four graphs (the full batches'
training loop, the last partial batch's training step, the same two for validation), each
traced, then called twice (the first call sets the graph up: HLO, the executable compiled or
loaded, TensorFlow's kernels; the second is the work alone). The XLA cache is the one `train`
uses (`$SPARSE_LSTM_AD_CACHE`), so a second run reads what the first compiled.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from sparse_lstm_ad.cli.compile_cache import use_compile_cache
from sparse_lstm_ad.cli.quiet import quiet_tensorflow_import

use_compile_cache()  # before TensorFlow starts, as a job does
quiet_tensorflow_import()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from sparse_lstm_ad.config import ModelConfig, TrainConfig  # noqa: E402
from sparse_lstm_ad.data import Windows  # noqa: E402
from sparse_lstm_ad.graph_cache import WindowFeed, _new_trainer  # noqa: E402
from sparse_lstm_ad.models import build_model  # noqa: E402

NAMES = ("training, full batches", "training, last batch", "validation, full", "validation, last")


def main() -> None:
    cfg = TrainConfig()
    rng = np.random.default_rng(0)
    feeds = [WindowFeed.of(Windows(rng.standard_normal((n, 5)), 15, 1)) for n in (10_000, 2_500)]
    model = build_model(ModelConfig(kind="sparse_gate"), 15, 5)
    trainer = _new_trainer(model, cfg, *feeds, jit_compile=True)
    batches = (cfg.batch_size, cfg.batch_size, cfg.eval_batch_size, cfg.eval_batch_size)
    print("| graph | windows | trace | first call | second call |\n|---|---|---|---|---|")
    parts = (feeds[0], feeds[0], feeds[1], feeds[1])  # the graphs' order: training, validation
    for name, graph, feed, batch in zip(NAMES, trainer.graphs, parts, batches, strict=True):
        batch = min(batch, len(feed.starts))
        full = len(feed.starts) // batch * batch
        starts = feed.starts[:full] if "full" in name else feed.starts[full:]
        if not len(starts):
            print(f"| {name} | 0 | | | |")
            continue
        starts = tf.constant(starts, dtype=tf.int32)
        times = [time.perf_counter()]
        graph.get_concrete_function(feed.rows, starts)
        for _ in range(2):
            times.append(time.perf_counter())
            graph(feed.rows, starts)
        times.append(time.perf_counter())
        trace, first, second = np.diff(times)[[0, 1, 2]]
        print(f"| {name} | {len(starts)} | {trace:.2f} s | {first:.2f} s | {second:.3f} s |")


if __name__ == "__main__":
    main()
