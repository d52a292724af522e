"""A fresh process's first epoch, graph by graph: what tracing and setting up each costs.

    .venv/bin/python experiments/benchmark/first_epoch.py   # again: loads from XLA's cache

The trainer of `graph_cache` (as a fit makes it) for the sparse gate on 10,000 x 5 training
and 2,500 x 5 validation rows, window 15, batch 128: its two graphs (the training epoch and
the validation epoch, each one loop over same-sized batches, the last padded: epoch_graph),
each traced, then called twice (the first call sets the graph up: HLO, the executable compiled or
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

from sparse_lstm_ad.config import ModelConfig, TrainConfig  # noqa: E402
from sparse_lstm_ad.data import Windows  # noqa: E402
from sparse_lstm_ad.epoch_graph import batching, padded  # noqa: E402
from sparse_lstm_ad.graph_cache import WindowFeed, _new_trainer  # noqa: E402
from sparse_lstm_ad.models import build_model  # noqa: E402

NAMES = ("training", "validation")


def main() -> None:
    cfg = TrainConfig()
    rng = np.random.default_rng(0)
    feeds = [WindowFeed.of(Windows(rng.standard_normal((n, 5)), 15, 1)) for n in (10_000, 2_500)]
    model = build_model(ModelConfig(kind="sparse_gate"), 15, 5)
    trainer = _new_trainer(model, cfg, *feeds, jit_compile=True)
    print("| graph | windows | batches | trace | first call | second call |")
    print("|---|---|---|---|---|---|")
    for name, graph, feed, batch in zip(
        NAMES, trainer.graphs, feeds, (cfg.batch_size, cfg.eval_batch_size), strict=True
    ):
        batches, batch = batching(len(feed.starts), batch, training=name == "training")
        args = (feed.rows, *padded(feed.starts, batches * batch))
        times = [time.perf_counter()]
        graph.get_concrete_function(*args)
        for _ in range(2):
            times.append(time.perf_counter())
            graph(*args)
        times.append(time.perf_counter())
        trace, first, second = np.diff(times)
        print(
            f"| {name} | {len(feed.starts)} | {batches} | {trace:.2f} s | {first:.2f} s "
            f"| {second:.3f} s |"
        )


if __name__ == "__main__":
    main()
