"""Hydra callbacks: work done once per invocation around the jobs, whatever the launcher.

Before any job: the config's values and the store are checked (one line and exit 2 on a
mistake), the store and experiment are created, and a multirun gets its parent run. As each
job ends, a progress line (cli/sweep_progress.py). After a multirun: the parent records how
many jobs finished, failed or were skipped, the comparison table is printed, and the exit
code is 1 if any job failed.
"""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import OBJECTIVE, TrackingConfig
from sparse_lstm_ad.config_checks import ConfigError, checked_config

log = logging.getLogger(__name__)
_OPEN: list[TrackingCallback] = []  # the multirun under way in this process, if any


def abandon_open_sweep(reason: str) -> str | None:
    """Close the parent run of the multirun under way KILLED; what became of it, or None."""
    if not _OPEN:
        return None
    return _OPEN.pop()._abandon(reason)


def _prepare(config: DictConfig) -> TrackingConfig:
    from sparse_lstm_ad import tracking

    try:
        checked = checked_config(config)
        tracking.prepare_store(checked.tracking)
    except (ConfigError, tracking.StoreError) as error:
        log.error("%s", error)
        sys.exit(2)  # a user's mistake: nothing ran, nothing was logged
    return checked.tracking


def _tag_best_run(cfg: Any, parent_id: str, runs: Any, best: Any) -> None:
    """`best.run_id`, the run that reached Optuna's best value (this sweep's or a skipped
    job's earlier one), and for a sparse form its `best.l1_effective`, the L1 it was fitted
    at: smaller than the trial's `best.model.l1` where a closed layer made it refit, and the
    objective Optuna saw is that L1's."""
    import pandas as pd

    from sparse_lstm_ad import tracking

    frames = [frame for frame in runs if not frame.empty]
    column = f"metrics.{OBJECTIVE}"
    runs = pd.concat(frames) if frames else pd.DataFrame()
    if column not in runs:
        return
    reached = runs[runs[column] == float(best.best_value)]
    if reached.empty:
        return
    run = reached.iloc[0]
    tags = {"best.run_id": str(run["run_id"])}
    effective = run.get("metrics.l1_effective")
    if effective is not None and not pd.isna(effective):
        tags["best.l1_effective"] = str(effective)
    tracking.tag_run(cfg, parent_id, tags)


class TrackingCallback(Callback):
    def __init__(self) -> None:
        self.parent_id: str | None = None
        self.tracking: TrackingConfig | None = None
        self.heartbeat: Any = None
        self.progress: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # The joblib launcher pickles the callbacks to its workers; the parent's heartbeat and
        # progress threads stay with the process that holds the parent run.
        return {**self.__dict__, "heartbeat": None, "progress": None}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _prepare(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sparse_lstm_ad import tracking

        self.tracking = _prepare(config)
        sweep = str(Path(config.hydra.sweep.dir))
        self.parent_id = tracking.start_sweep(self.tracking, sweep, f"sweep {sweep}")
        self.heartbeat = tracking.Heartbeat(self.parent_id).start()
        from sparse_lstm_ad.cli.sweep_progress import SweepProgress, total_jobs

        self.progress = SweepProgress(self.tracking, self.parent_id, total_jobs(config)).start()
        _OPEN.append(self)
        atexit.register(self._abandon)  # a crash between jobs: close the parent KILLED
        log.info("sweep %s: parent run %s", sweep, self.parent_id)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.progress is not None:  # the basic launcher: the job ended in this process
            self.progress.job_ended()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from sparse_lstm_ad import report, tracking

        assert self.tracking is not None and self.parent_id is not None
        if self.progress is not None:
            self.progress.stop()  # its last line counts every job
        tracking.close_dead(self.tracking)  # a job whose node died: KILLED, counted below
        runs = tracking.child_runs(self.tracking, self.parent_id)
        failed, skipped = (
            tracking.noted_jobs(self.tracking, self.parent_id, outcome)
            for outcome in ("failed", "skipped")
        )
        counts = report.job_counts(runs, {"failed": len(failed), "skipped": len(skipped)})
        # Skipped jobs are answered by earlier runs: the table shows those too.
        earlier = tracking.runs_by_id(self.tracking, list(skipped.values()))
        table = report.format_table(report.sweep_table(runs, earlier))
        # The Optuna sweeper leaves its best trial here before this callback runs.
        optuna_results = Path(config.hydra.sweep.dir) / "optimization_results.yaml"
        if optuna_results.exists():
            best = OmegaConf.load(optuna_results)
            tracking.log_best_trial(
                self.tracking, self.parent_id, float(best.best_value), dict(best.best_params)
            )
            _tag_best_run(self.tracking, self.parent_id, [runs, earlier], best)
        files = [optuna_results] if optuna_results.exists() else []
        selection = _select(config, self.tracking, self.parent_id)
        status = tracking.end_sweep(self.tracking, self.parent_id, counts, files)
        self._stop()
        print(table)
        if selection:
            print(f"\n{selection}")
        print(f"\nsweep {status}: " + ", ".join(f"{n} {key}" for key, n in counts.items()))
        print(_ui_hint(self.tracking))
        if status != "FINISHED":
            sys.exit(1)

    def _stop(self) -> None:
        atexit.unregister(self._abandon)
        if self in _OPEN:
            _OPEN.remove(self)
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.progress is not None:
            self.progress.halt()

    def _abandon(self, reason: str = "the multirun ended without its report") -> str | None:
        from sparse_lstm_ad import tracking

        self._stop()
        if self.tracking is None or self.parent_id is None:
            return None
        try:
            if tracking.abandon_sweep(self.tracking, self.parent_id, reason):
                return f"sweep parent run {self.parent_id} ended KILLED"
        except Exception as error:  # the store went away: its heartbeat stops, it is closed later
            first = (str(error).strip() or repr(error)).splitlines()[0]
            return f"sweep parent run {self.parent_id} not closed ({first}): the next command will"
        return None


def _select(config: DictConfig, cfg: TrackingConfig, parent_id: str) -> str:
    """A selection sweep's verdict recorded on its parent (sweep_selection.py); its table."""
    if not config.selection.enabled:
        return ""
    from sparse_lstm_ad.pipeline.sweep_selection import format_selection, select_in_sweep

    weights = OmegaConf.to_container(config.selection.weights)
    ranked = select_in_sweep(cfg, str(Path(config.hydra.sweep.dir)), parent_id, weights)
    return format_selection(ranked) if not ranked.empty else ""


def _ui_hint(cfg: TrackingConfig) -> str:
    """Where to see the runs: a server is its own UI; a local store needs `make ui` first."""
    from sparse_lstm_ad import tracking

    link = tracking.runs_link(cfg)
    if cfg.is_server:
        return f"The runs in the MLflow UI: {link}"
    return (
        f"Open the MLflow UI: make ui   (or: mlflow ui --backend-store-uri "
        f"{tracking.tracking_uri(cfg)} --host 127.0.0.1), then\n  {link}"
    )
