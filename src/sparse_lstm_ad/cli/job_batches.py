"""Joblib batches of jobs that share compiled graphs, so that each worker compiles them once.

A worker keeps the compiled training and scoring graphs of its last fits
(sparse_lstm_ad.graph_cache), keyed by what they depend on: the model's architecture and the
data's shapes. Jobs that differ only in the keys below load new values into those graphs.
Joblib's default hands jobs out one at a time in sweep order, so two workers take turns on
the seeds of one (model, data) cell and each compiles every cell: as many compiles as the
serial launcher, on each worker. Batches of whole cells halve them on two workers.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from sparse_lstm_ad.cli.override_keys import override_key
from sparse_lstm_ad.cli.sweep_jobs import launched_jobs

log = logging.getLogger(__name__)

# What a fit loads into kept graphs (graph_cache.Trainer.load: weights from the seed, learning
# rate, L1) or what no graph reads. Any other key may change a graph and starts a new cell.
GRAPH_NEUTRAL = ("seed", "model.l1", "train.learning_rate", "rerun", "threads", "tracking.")


def cell(job: list[str]) -> tuple[str, ...]:
    """A job's overrides less the graph-neutral ones: jobs of one cell share graphs."""
    return tuple(o for o in job if not override_key(o).startswith(GRAPH_NEUTRAL))


def batch_size(jobs: list[list[str]], workers: int) -> int:
    """Jobs per batch: the largest whole number of consecutive jobs of one cell that still
    keeps every worker busy (batches a multiple of the workers, or at least three each)."""
    cells = [cell(job) for job in jobs]
    run = next((i for i, c in enumerate(cells) if c != cells[0]), len(cells))
    for size in range(run, 1, -1):
        batches = math.ceil(len(jobs) / size)
        if run % size == 0 and (batches % workers == 0 or batches >= 3 * workers):
            return size
    return 1


class JobBatches(Callback):
    """Sets the joblib launcher's batches to whole cells when the user left them to joblib."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from joblib import effective_n_jobs  # joblib's reading of n_jobs: -2 all cores but one

        launcher = config.hydra.launcher
        if "Joblib" not in str(launcher.get("_target_")) or launcher.batch_size != "auto":
            return
        jobs = launched_jobs(config)
        workers = effective_n_jobs(int(launcher.n_jobs))
        if jobs is None or workers < 2 or (size := batch_size(jobs, workers)) == 1:
            return
        with read_write(config.hydra), open_dict(launcher):
            launcher.batch_size = size
            # Joblib splits a pre-dispatched slice shorter than its batches into smaller ones.
            launcher.pre_dispatch = "all"
        log.info("joblib: batches of %d jobs, one (model, data) cell each", size)
