"""A joblib sweep's workers, started while the command's inputs are still being checked.

A joblib worker spends seconds importing what a job needs (Hydra, MLflow, pandas,
scikit-learn, matplotlib, and what its detector fits with: TensorFlow and Keras for a
network) before its first job starts,
and the parent spends as long loading the data and opening the store before it launches:
one after the other, the sweep waited for both. Here the workers start as soon as the jobs
are composed, and import while the parent checks. Joblib keeps one executor per process and
hands it to the next `Parallel` made with the same arguments: the launcher's own `Parallel`,
made from the same launcher config, finds these workers ready (tests/test_warm_workers.py).
No job runs here and nothing a job computes changes: the same modules load, earlier.

A command that fails its checks ends the workers at once (`Warmup.cancel`).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Loky restarts a worker whose memory grows 300 MB past its size after its first task. After
# this warm-up, that size is the imports' alone (~0.7 GB), and one job's data and compiled
# graphs add ~0.4 GB (seed cases): every worker would be restarted, and import everything
# again, after its first job. The check still catches a worker that keeps growing.
WORKER_GROWTH_BYTES = int(2e9)


def _import_what_a_job_imports(fit_imports: tuple[str, ...]) -> int:
    """In a worker: the modules a job of this sweep loads, `fit_imports` those its detector
    fits with (detectors.protocol.Family); the worker's pid."""
    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_GROWTH_BYTES  # read after each task
    import_job_modules(fit_imports)
    return os.getpid()


def import_job_modules(fit_imports: tuple[str, ...]) -> None:
    """What a job imports, `fit_imports` those its detector fits with, XLA's cache set as a
    job sets it: for a process that runs jobs later (a joblib worker, the train daemon)."""
    from sparse_lstm_ad.cli.compile_cache import use_compile_cache

    importlib.import_module("sparse_lstm_ad.cli.train")  # the task; quiets TensorFlow's import
    use_compile_cache()  # read when TensorFlow starts: set before it, as a job does
    importlib.import_module("sparse_lstm_ad.pipeline")  # MLflow, pandas
    # What a job loads when it scores and plots, not with the pipeline (metrics, outputs).
    for name in ("sklearn.metrics", "sparse_lstm_ad.plots"):
        importlib.import_module(name)
    for name in fit_imports:  # TensorFlow and Keras load, no op runs: the job sets threads
        importlib.import_module(name)


class Warmup:
    """The workers' imports, under way in this process's background."""

    def __init__(self, joblib_args: dict[str, Any], fit_imports: tuple[str, ...]) -> None:
        from joblib import Parallel

        self.pids: list[int] = []
        self._parallel = Parallel(**joblib_args)
        self._parallel.__enter__()  # the executor exists from here on: cancel finds it
        self._thread = threading.Thread(
            target=self._run, args=(fit_imports,), name="warm-workers", daemon=True
        )
        self._thread.start()

    def _run(self, fit_imports: tuple[str, ...]) -> None:
        from joblib import delayed, effective_n_jobs

        task = delayed(_import_what_a_job_imports)
        workers = effective_n_jobs(self._parallel.n_jobs)  # -1 all cores, -2 all but one...
        try:
            self.pids = list(self._parallel(task(fit_imports) for _ in range(workers)))
        except Exception as error:  # the launcher starts its workers afresh: only time is lost
            log.debug("joblib workers not warmed: %s", error)
        finally:
            self._parallel.__exit__(None, None, None)  # the workers stay, for the launcher

    def wait(self, seconds: float | None = None) -> list[int]:
        """The warmed workers' pids, once their imports are done."""
        self._thread.join(seconds)
        return self.pids

    def cancel(self) -> None:
        """End the workers now, their imports cut short: the command stops here."""
        from joblib.externals.loky import get_reusable_executor

        # reuse=True: the executor there is, whatever its arguments; it is this one.
        get_reusable_executor(reuse=True).shutdown(wait=False, kill_workers=True)


def joblib_args(launcher: DictConfig) -> dict[str, Any] | None:
    """The arguments Hydra's joblib launcher gives `Parallel`; None for another launcher."""
    if "Joblib" not in str(launcher.get("_target_")):
        return None
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    args = OmegaConf.to_container(launcher, resolve=True)
    assert isinstance(args, dict)
    args.pop("_target_")
    args["backend"] = "loky"  # as the launcher sets it
    process_joblib_cfg(args)
    return args


def start_warmup(launcher: DictConfig | None, fit_imports: tuple[str, ...]) -> Warmup | None:
    """Start a joblib sweep's workers in the background; None for any other command."""
    args = joblib_args(launcher) if launcher is not None else None
    return Warmup(args, fit_imports) if args is not None else None
