"""Sweeps through the CLI: joblib workers under one parent run, and the comparison report."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.plugins.sweeper import Sweeper

from sparse_lstm_ad.cli.main import main, run
from tests.conftest import CONF, parent_and_children

pytestmark = pytest.mark.slow

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def test_joblib_sweep_lands_four_children_under_one_parent(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "-m",
        "+experiment=fast",
        "model=standard,sparse",
        "seed=0,1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "tracking.log_model=false",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (parent,), children = parent_and_children(tmp_path / "mlruns")
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    assert [r.info.status for r in children] == ["FINISHED"] * 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    combos = {(r.data.params["model.kind"], r.data.params["seed"]) for r in children}
    assert combos == {
        ("standard", "0"),
        ("standard", "1"),
        ("sparse_gate", "0"),
        ("sparse_gate", "1"),
    }
    # Each worker ran TensorFlow on one thread: two workers share the two cores.
    assert {r.data.params["threads"] for r in children} == {"1"}
    # One worker took both standard jobs, the other both sparse ones (cli/job_batches.py).
    pids = {
        kind: {r.data.tags["pid"] for r in children if r.data.params["model.kind"] == kind}
        for kind in ("standard", "sparse_gate")
    }
    assert [len(p) for p in pids.values()] == [1, 1] and pids["standard"] != pids["sparse_gate"]
    assert "joblib: batches of 2 jobs" in result.stdout + result.stderr
    # The workers ended the jobs; the launcher's process printed one progress line each.
    progress = [line for line in result.stdout.splitlines() if line.startswith("[sweep] ")]
    assert [line.split(" (")[0] for line in progress] == [
        f"[sweep] {n}/4 done" for n in range(1, 5)
    ]
    assert parent.data.metrics["jobs_done"] == 4 and parent.data.metrics["jobs_total"] == 4
    # The workers import TensorFlow as quietly as the main process does (cli/quiet.py).
    assert "InitializeLog" not in result.stderr and "oneDNN" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("sweep", "workers", "size"),
    [
        (["model=standard,sparse", "data=case1,case2", "seed=0,1"], 2, 2),
        (["model=standard,sparse", "data=case1,case2", "seed=0,1,2,3,4"], 2, 5),
        (["model=standard,sparse", "model.l1=1e-3,1e-2", "seed=0,1"], 2, 4),
        (["seed=0,1", "model=standard,sparse"], 2, 1),  # seeds vary slowest: no cell is whole
        (["data=case1,case2,premise", "seed=0,1,2,3,4"], 2, 1),  # 3 batches of 5: one idles
        (["data=case1,case2,premise", "seed=0,1,2,3,4,5"], 2, 3),
    ],
)
def test_joblib_batches_are_whole_cells_that_keep_workers_busy(
    sweep: list[str], workers: int, size: int
) -> None:
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sparse_lstm_ad.cli.job_batches import batch_size

    (jobs,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(sweep), None)
    assert batch_size(jobs, workers) == size


@pytest.mark.parametrize("n_jobs", [-2, -1, 2])
def test_joblib_batches_count_the_workers_as_joblib_does(n_jobs: int) -> None:
    """n_jobs=-2 is all cores but one (one worker on 2 cores: no batches), not all cores."""
    from hydra import compose, initialize_config_dir
    from joblib import effective_n_jobs
    from omegaconf import open_dict, read_write

    from sparse_lstm_ad.cli.job_batches import JobBatches

    sweep = ["model=standard,sparse", "data=case1,case2", "seed=0,1"]
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("config", overrides=launcher, return_hydra_config=True)
    with read_write(config), open_dict(config):
        config.hydra.overrides.task = sweep  # as Hydra records a multirun's
    JobBatches().on_multirun_start(config)
    expected = "2" if effective_n_jobs(n_jobs) >= 2 else "auto"  # a string field: "auto" or N
    assert config.hydra.launcher.batch_size == expected


def test_report_of_a_real_sweep_matches_its_runs(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = tmp_path / "multirun"
    # What the sweeper composed again before launching (Hydra's validation, defined on the
    # base class: Hydra's plugin scan re-imports BasicSweeper, never Sweeper).
    validated: list = []
    original = Sweeper.validate_batch_is_legal
    monkeypatch.setattr(
        Sweeper,
        "validate_batch_is_legal",
        lambda self, batch: validated.append(batch) or original(self, batch),
    )
    result = run_cli(
        "-m",
        "+experiment=fast",
        "model=standard,sparse",
        "model.l1=1e-3,1e-2",
        "seed=0,1",
        "tracking.log_model=false",
        "tracking.experiment=study",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # The standard model ignores L1: its second L1 value is the same config, skipped.
    assert "6 finished, 0 failed, 0 killed, 2 skipped" in result.stdout
    # train composed and checked the 8 jobs: the sweeper it chose composes none again.
    assert "CheckedBasicSweeper" in (sweep / "multirun.yaml").read_text() and validated == []
    # The comparison table printed at the end names both models.
    assert "AUC-ROC" in result.stdout
    assert "standard" in result.stdout and "sparse" in result.stdout

    store = tmp_path / "mlruns"
    # The sweep logged to experiment `study`: the default experiment does not hold it.
    assert run(main, ["report", str(sweep), "--tracking-dir", str(store)]) == 2
    argv = [str(sweep), "--experiment", "study", "--tracking-dir", str(store)]
    assert run(main, ["report", *argv]) == 0
    text = (sweep / "report" / "report.md").read_text()
    assert (sweep / "report" / "auc_pr_vs_l1.png").stat().st_size > 0

    _, children = parent_and_children(store)
    link = f"http://127.0.0.1:5000/#/experiments/{children[0].info.experiment_id}/runs"
    assert f"make ui   (or: mlflow ui --backend-store-uri sqlite:///{store}" in result.stdout
    assert f"then\n  {link}?workflowType=machine_learning\n" in result.stdout
    # One run per job that ran, all under the sweep's one tag.
    assert [r.info.status for r in children] == ["FINISHED"] * 6
    assert {r.data.tags["model"] for r in children} == {"standard", "sparse"}
    assert len({r.data.tags["sweep"] for r in children} - {""}) == 1
    sparse_001 = [
        r.data.metrics["auc_pr"]
        for r in children
        if r.data.params["model.kind"] == "sparse_gate" and float(r.data.params["model.l1"]) == 1e-2
    ]
    mean = sum(sparse_001) / 2
    std = (sum((v - mean) ** 2 for v in sparse_001)) ** 0.5  # n-1 = 1
    row = next(line for line in text.splitlines() if line.startswith("| sparse | case2 | 0.01 |"))
    assert f"{mean:.4f} ± {std:.4f}" in row and row.endswith("| 2 |")
    assert sum(line.startswith("| standard | case2 | - |") for line in text.splitlines()) == 1


def test_optuna_searches_l1_and_hidden_and_logs_the_best(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "-m",
        "+experiment=fast",
        "model=sparse",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.seed=0",
        "model.l1=tag(log, interval(1e-4, 1e-1))",
        "model.hidden=range(3, 8)",
        "tracking.log_model=false",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (parent,), trials = parent_and_children(tmp_path / "mlruns")
    assert [r.info.status for r in trials] == ["FINISHED"] * 3
    # The objective is the validation reconstruction MSE: no test label reaches the search.
    objectives = [r.data.metrics["val_reconstruction_mse"] for r in trials]
    assert parent.data.metrics["best_value"] == pytest.approx(min(objectives))
    best = min(trials, key=lambda r: r.data.metrics["val_reconstruction_mse"])
    assert parent.data.tags["best.model.hidden"] == best.data.params["model.hidden"]
    assert float(parent.data.tags["best.model.l1"]) == pytest.approx(
        float(best.data.params["model.l1"])
    )
    # The run that reached it, and the L1 it was fitted at (a closed layer refits at a tenth).
    assert parent.data.tags["best.run_id"] == best.info.run_id
    assert float(parent.data.tags["best.l1_effective"]) == best.data.metrics["l1_effective"]


def test_jobs_of_one_identity_run_one_at_a_time(tmp_path: Path) -> None:
    """Under joblib a standard model swept over model.l1 (which it ignores) trained twice,
    side by side, and neither job skipped: the second now waits for the first's lock."""
    import threading
    import time
    from types import SimpleNamespace

    from sparse_lstm_ad.cli.train_job import one_at_a_time

    job = SimpleNamespace(sweep=str(tmp_path), identity="abc123")
    order: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with one_at_a_time(job):
            first_holds.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_holds.wait(5)
    with one_at_a_time(job):
        order.append("second runs")
    thread.join()
    assert order == ["first done", "second runs"]
    with one_at_a_time(SimpleNamespace(sweep="", identity="abc123")):  # a single run: no lock
        pass
    other = SimpleNamespace(sweep=str(tmp_path), identity="def456")
    with one_at_a_time(job), one_at_a_time(other):  # another identity does not wait
        pass
