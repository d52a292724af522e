"""A multirun's progress: the line's text, and the lines and metrics of real sweeps."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.cli.sweep_progress import (
    Progress,
    duration,
    progress_line,
    progress_metrics,
    seconds_left,
)
from tests.conftest import parent_and_children

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_progress_line_by_hand() -> None:
    # 37 of 216 done, 26 of them skipped: 11 ran in 412.5 s of the sweep, 37.5 s each
    # (41 s a job on two workers, set-up included); 179 left x 37.5 s = 6712.5 s.
    left = seconds_left(216, 37, 11, 412.5)
    assert left == 6712.5
    line = progress_line(Progress(37, 216, failed=2, skipped=26, job_seconds=41, seconds_left=left))
    assert line == "37/216 done (2 failed, 26 skipped), 41 s a job, about 1 h 52 min left"
    killed = Progress(5, 8, failed=1, killed=1, job_seconds=3.4, seconds_left=30)
    assert progress_line(killed) == (
        "5/8 done (1 failed, 1 killed, 0 skipped), 3.4 s a job, about 30 s left"
    )
    # Only skipped jobs so far: no time yet. The last job: nothing left to estimate.
    assert progress_line(Progress(3, 8, skipped=3)) == "3/8 done (0 failed, 3 skipped)"
    assert seconds_left(8, 3, 0, 2.0) is None
    assert seconds_left(8, 8, 8, 100.0) is None
    assert (
        progress_line(Progress(8, 8, job_seconds=41))
        == "8/8 done (0 failed, 0 skipped), 41 s a job"
    )
    # A sweeper that does not say how many jobs (not basic, not Optuna): no total, no estimate.
    assert seconds_left(None, 2, 2, 150.0) is None
    assert progress_line(Progress(2, None, job_seconds=75)) == (
        "2 done (0 failed, 0 skipped), 1 min 15 s a job"
    )
    assert [duration(s) for s in (0.42, 9.96, 59.4, 120, 3599, 7200)] == [
        "0.4 s",
        "10 s",
        "59 s",
        "2 min",
        "1 h",
        "2 h",
    ]
    assert progress_metrics(Progress(37, 216, 2, 1, 26, 41.0, left)) == {
        "jobs_done": 37,
        "jobs_finished": 8,
        "jobs_failed": 2,
        "jobs_killed": 1,
        "jobs_skipped": 26,
        "jobs_total": 216,
        "job_seconds": 41.0,
        "seconds_left": 6712.5,
    }
    # The last job: nothing left, where the chart of the time left ends.
    assert progress_metrics(Progress(8, 8, job_seconds=41))["seconds_left"] == 0


def _progress_lines(output: str) -> list[str]:
    return [
        line.removeprefix("[sweep] ") for line in output.splitlines() if line.startswith("[sweep] ")
    ]


def _newest_parent(store: Path) -> tuple[object, MlflowClient]:
    parents, _ = parent_and_children(store)
    return parents[-1], MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")


@pytest.mark.slow
def test_a_sweep_prints_a_line_per_job_and_a_resumed_one_counts_its_skipped_jobs(
    run_cli: RunCli, tmp_path: Path
) -> None:
    sweep = ("-m", "+experiment=fast", "model=mahalanobis", "tracking.log_model=false")
    first = run_cli(*sweep, "seed=0,1,2")
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    lines = _progress_lines(first.stdout)
    assert [line.split(",")[0] for line in lines] == [
        "1/3 done (0 failed",
        "2/3 done (0 failed",
        "3/3 done (0 failed",
    ]
    assert all(" skipped), " in line and " s a job" in line for line in lines)
    assert all(" left" in line for line in lines[:-1]) and lines[-1].endswith(" s a job")
    parent, client = _newest_parent(tmp_path / "mlruns")
    metrics = parent.data.metrics  # type: ignore[attr-defined]
    assert metrics["jobs_done"] == 3 and metrics["jobs_total"] == 3
    assert (
        metrics["jobs_failed"] == 0 and metrics["jobs_skipped"] == 0 and metrics["job_seconds"] > 0
    )
    assert metrics["jobs_finished"] == 3 and metrics["seconds_left"] == 0
    assert parent.data.tags["progress"] == lines[-1]  # type: ignore[attr-defined]
    history = client.get_metric_history(parent.info.run_id, "jobs_done")  # type: ignore[attr-defined]
    steps = [point.step for point in history]
    assert steps == sorted(steps) and steps[-1] == 3
    assert all(point.value == point.step for point in history)

    # Again with one seed more: the three jobs done are skipped, the fourth runs.
    resumed = run_cli(*sweep, "seed=0,1,2,3")
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    lines = _progress_lines(resumed.stdout)
    assert lines[:3] == [f"{n}/4 done (0 failed, {n} skipped)" for n in (1, 2, 3)]
    assert len(lines) == 4 and lines[3].startswith("4/4 done (0 failed, 3 skipped), ")
    assert lines[3].endswith(" s a job")
    parent, _ = _newest_parent(tmp_path / "mlruns")
    metrics = parent.data.metrics  # type: ignore[attr-defined]
    assert (metrics["jobs_done"], metrics["jobs_skipped"], metrics["jobs_finished"]) == (4, 3, 1)
