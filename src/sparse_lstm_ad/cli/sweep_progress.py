"""A multirun's progress: one line as each job ends, and the same on the sweep's parent run.

    [sweep] 37/216 done (2 failed, 26 skipped), 41 s a job, about 1 h 52 min left

Jobs end in the launcher's process (basic) or in its workers (joblib, Ray: on other
machines, with job folders of their own), so the one place that hears of every job's end is
the store they all log to: a thread of the launcher's process, which holds the parent run,
reads how the jobs ended there, as the sweep's report at the end does (the child runs'
statuses, the jobs noted "failed" or "skipped" on the parent). Where a job ends in this
process, its end wakes the thread at once; elsewhere the thread looks every POLL_S seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.cli.sweep_jobs import launched_jobs
from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking import sweeps

log = logging.getLogger(__name__)

POLL_S = 2.0
# Runs are read from the last end seen less this margin: ends written late (a busy store's
# retries, another machine's clock) are still read; each run counts once.
LATE_MS = 120_000


@dataclass(frozen=True)
class Progress:
    done: int  # every job that ended: finished, failed, killed or skipped
    total: int | None  # None where the sweeper does not say up front
    failed: int = 0
    killed: int = 0
    skipped: int = 0
    job_seconds: float | None = None  # mean wall time of the jobs' runs that ended
    seconds_left: float | None = None


def seconds_left(total: int | None, done: int, ran: int, elapsed: float) -> float | None:
    """The measured throughput's estimate: jobs left x seconds of the sweep per job that ran.

    Whatever the launcher, `elapsed / ran` is the sweep's own pace (a worker count, idle
    workers and each job's set-up included); skipped jobs, near free, are left out of `ran`.
    """
    if total is None or ran <= 0 or done >= total:
        return None
    return (total - done) * elapsed / ran


def duration(seconds: float) -> str:
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def progress_line(progress: Progress) -> str:
    """`37/216 done (2 failed, 26 skipped), 41 s a job, about 1 h 52 min left`."""
    p = progress
    done = f"{p.done}/{p.total}" if p.total is not None else str(p.done)
    ended = [f"{p.failed} failed"] + [f"{p.killed} killed"] * bool(p.killed)
    text = f"{done} done ({', '.join([*ended, f'{p.skipped} skipped'])})"
    if p.job_seconds is not None:
        text += f", {duration(p.job_seconds)} a job"
    if p.seconds_left is not None:
        text += f", about {duration(p.seconds_left)} left"
    return text


def progress_metrics(progress: Progress) -> dict[str, float]:
    """The line's numbers as the parent run's metrics (logged at step = jobs done)."""
    p = progress
    finished = p.done - p.failed - p.killed - p.skipped
    metrics = {"jobs_done": p.done, "jobs_finished": finished, "jobs_failed": p.failed}
    metrics |= {"jobs_killed": p.killed, "jobs_skipped": p.skipped}
    left = 0.0 if p.total is not None and p.done >= p.total else p.seconds_left
    optional = {"jobs_total": p.total, "job_seconds": p.job_seconds, "seconds_left": left}
    return metrics | {key: value for key, value in optional.items() if value is not None}


def total_jobs(config: DictConfig) -> int | None:
    """How many jobs the multirun launches: the basic sweeper's, or Optuna's trials."""
    jobs = launched_jobs(config)
    if jobs is not None:
        return len(jobs)
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
    return int(trials) if trials is not None else None


class SweepProgress:
    """Prints a progress line per job that ended and logs it to the parent, from a thread."""

    def __init__(self, cfg: TrackingConfig, parent_id: str, total: int | None) -> None:
        self.cfg, self.parent_id, self.total = cfg, parent_id, total
        self._started = time.monotonic()
        self._seconds: dict[str, float] = {}  # run id -> wall time, of the jobs' runs that ended
        self._noted: dict[str, set[str]] = {"failed": set(), "skipped": set()}
        self._counts = {"finished": 0, "failed": 0, "killed": 0, "skipped": 0}
        self._since_ms = 0
        self._wake, self._stopped = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="sweep-progress", daemon=True)

    def start(self) -> SweepProgress:
        self._thread.start()
        return self

    def job_ended(self) -> None:
        """A job ended in this process (the basic launcher): look now."""
        self._wake.set()

    def halt(self, wait_s: float = 5) -> None:
        """Stop the thread; a look under way may finish first (no line after the last one)."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=wait_s)

    def stop(self) -> None:
        """Stop the thread, then read every run once more: the last line counts every job."""
        self.halt(wait_s=60)
        self._since_ms = 0
        try:
            self.update()
        except Exception as error:  # the sweep's report, next, says what became of the store
            log.warning("sweep progress not read: %s", error)

    def _watch(self) -> None:
        while True:
            self._wake.wait(POLL_S)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.update()
            except Exception as error:  # a busy or absent store: the next look tries again
                log.debug("sweep progress not read: %s", error)

    def update(self) -> list[str]:
        """Read how jobs ended since the last look; one line per newly ended job, printed."""
        with self._lock:
            ended = self._newly_ended()
            if not ended:
                return []
            elapsed = time.monotonic() - self._started
            seconds = self._seconds.values()
            mean = sum(seconds) / len(seconds) if seconds else None
            lines = []
            for outcome in ended:
                self._counts[outcome] += 1
                progress = self._progress(mean, elapsed)
                lines.append(progress_line(progress))
                print(f"[sweep] {lines[-1]}", flush=True)
            sweeps.progress_to(
                self.cfg, self.parent_id, progress_metrics(progress), progress.done, lines[-1]
            )
            return lines

    def _newly_ended(self) -> list[str]:
        """Outcomes of the jobs that ended since the last look, skipped and failed first."""
        noted = {
            outcome: set(sweeps.noted_jobs(self.cfg, self.parent_id, outcome))
            for outcome in self._noted
        }
        runs = sweeps.ended_job_runs(self.cfg, self.parent_id, self._since_ms)
        # Read whole before anything is counted: a look that fails counts nothing twice or never.
        outcomes = []
        for outcome, jobs in noted.items():
            outcomes += [outcome] * len(jobs - self._noted[outcome])
            self._noted[outcome] |= jobs
        for run in sorted(runs, key=lambda r: r.end_ms):
            if run.run_id in self._seconds:
                continue
            self._seconds[run.run_id] = max(0, run.end_ms - run.start_ms) / 1000
            if run.status != "FAILED":  # a failed job counts once, by its note on the parent
                outcomes.append("killed" if run.status == "KILLED" else "finished")
            self._since_ms = max(self._since_ms, run.end_ms - LATE_MS)
        return outcomes

    def _progress(self, mean: float | None, elapsed: float) -> Progress:
        counts = self._counts
        done = sum(counts.values())
        ran = done - counts["skipped"]
        return Progress(
            done,
            self.total,
            counts["failed"],
            counts["killed"],
            counts["skipped"],
            mean,
            seconds_left(self.total, done, ran, elapsed),
        )
