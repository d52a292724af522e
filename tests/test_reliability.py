"""Bad input fails fast and clearly; interrupted, failing and concurrent runs lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import (
    ROOT,
    parent_and_children,
    run_concurrent_writers,
    store_runs,
    train_command,
)

pytestmark = pytest.mark.slow

RunCli = Callable[..., subprocess.CompletedProcess[str]]
FAST = "+experiment=fast"

# (override, text the one error line must hold). Value checks print one line of ours;
# compose-time errors are Hydra's message, which names the key (`full_key`) or the option.
BAD_INPUTS = [
    ("model.l1=-1", "model.l1=-1.0 is not allowed: must be >= 0"),
    ("data.window=0", "data.window=0 is not allowed: must be >= 1"),
    ("data.stride=0", "data.stride=0 is not allowed"),
    ("data.every=0", "data.every=0 is not allowed"),
    ("train.validation_split=0", "train.validation_split=0.0 is not allowed: must be in (0, 1)"),
    ("train.validation_split=1.5", "train.validation_split=1.5 is not allowed"),
    ("train.batch_size=0", "train.batch_size=0 is not allowed: must be >= 1"),
    ("train.epochs=0", "train.epochs=0 is not allowed: must be >= 1"),
    ("train.learning_rate=0", "train.learning_rate=0.0 is not allowed: must be > 0"),
    ("train.patience=-1", "train.patience=-1 is not allowed"),
    ("model.hidden=0", "model.hidden=0 is not allowed: must be >= 1"),
    ("model.layers=0", "model.layers=0 is not allowed"),
    ("model.projection_units=0", "model.projection_units=0 is not allowed"),
    ("scoring.threshold_quantile=1", "scoring.threshold_quantile=1.0 is not allowed"),
    ("scoring.shrinkage=2", "scoring.shrinkage=2.0 is not allowed: must be in [0, 1]"),
    ("threads=-1", "threads=-1 is not allowed"),
    ("data.window=400", "data.window=400 is longer than the shortest part of the series"),
    ("model.hiden=5", "Key 'hiden' not in 'ModelConfig'"),
    ("train.epochs=many", "full_key: train.epochs"),
    ("model.gate_activation=softmax", "full_key: model.gate_activation"),
    ("scoring.inverse=cholesky", "full_key: scoring.inverse"),
    ("tracking.log_model=maybe", "full_key: tracking.log_model"),
    ("model=transformer", "Could not find 'model/transformer'"),
    ("data=nope", "Could not find 'data/nope'"),
    ("train=slow", "Could not find 'train/slow'"),
    ("tracking.uri=http://127.0.0.1:9", "tracking.uri=http://127.0.0.1:9 is not reachable"),
    ("tracking.uri=bogus://nowhere", "tracking store bogus://nowhere cannot be used"),
]


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_fails_with_one_clear_line(
    override: str, message: str, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli(FAST, override)
    output = _output(result)
    assert result.returncode != 0
    assert sum(message in line for line in output.splitlines()) == 1, output[-2000:]
    assert "Traceback" not in output
    assert "oneDNN" not in output  # TensorFlow announces itself so: it was never loaded
    assert store_runs(tmp_path / "mlruns") == []  # no run was started, none left RUNNING


def test_a_store_folder_that_cannot_be_made_is_named(run_cli: RunCli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli(FAST, f"tracking.dir={blocker / 'mlruns'}", store=False)
    assert result.returncode == 2
    assert f"tracking.dir={blocker / 'mlruns'} cannot hold the store" in _output(result)


def _csv_cases(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Bad CSV inputs: (overrides, the text the one error line must hold)."""
    rows = np.arange(120, dtype=float)
    good = pd.DataFrame({"t": rows, "a": np.sin(rows), "b": np.cos(rows), "label": 0})
    files = {
        "good": good,
        "text": good.assign(a=["x", *list(good["a"].iloc[1:])]),
        "nan": good.assign(b=[np.nan, *list(good["b"].iloc[1:])]),
        "constant": good.assign(b=1.0),
    }
    for name, frame in files.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    split = [
        "data=csv",
        f"data.csv.dir={folder}",
        "data.csv.test_from=80",
        "data.csv.time_column=t",
        "data.window=5",
    ]
    return {
        "missing file": (
            ["data=csv", f"data.csv.train={folder / 'absent.csv'}", "data.csv.test_from=5"],
            f"{folder / 'absent.csv'}: no such file",
        ),
        "missing label column": (
            [*split, "data.csv.train=good.csv", "data.csv.label_column=y"],
            "column 'y' (the label (data.csv.label_column) column) is missing",
        ),
        "non-numeric channel": (
            [*split, "data.csv.train=text.csv", "data.csv.features=[a,b]"],
            "column 'a' is not numeric: 'x' at line 2",
        ),
        "NaN": ([*split, "data.csv.train=nan.csv"], "column 'b' has NaN or inf at line 2"),
        "constant channel": ([*split, "data.csv.train=constant.csv"], "'b'"),
        "no train file": (["data=csv"], "data.csv.train is not set"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "missing label column",
        "non-numeric channel",
        "NaN",
        "constant channel",
        "no train file",
    ],
)
def test_bad_csv_fails_with_one_clear_line(case: str, run_cli: RunCli, tmp_path: Path) -> None:
    overrides, message = _csv_cases(tmp_path)[case]
    result = run_cli(FAST, *overrides)
    output = _output(result)
    assert result.returncode == 2, output[-2000:]
    assert sum(message in line for line in output.splitlines()) == 1, output[-2000:]
    assert "Traceback" not in output and "oneDNN" not in output
    assert store_runs(tmp_path / "mlruns") == []


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        train_command(tmp_path, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )


def _wait_for(process: subprocess.Popen[str], text: str, timeout: float = 300) -> str:
    """Read the process's output until `text` appears; return what was read."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared:\n{''.join(seen)[-3000:]}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_fit_ends_killed(signum: int, tmp_path: Path) -> None:
    process = _start(tmp_path, FAST, "train.epochs=500", "train.patience=500")
    _wait_for(process, "epoch 3/500")
    process.send_signal(signum)
    process.communicate(timeout=120)
    assert process.returncode != 0
    (run,) = store_runs(tmp_path / "mlruns")
    assert run.info.status == "KILLED"
    assert "interrupted" in run.data.tags["error"]


def test_a_non_finite_loss_ends_failed_with_the_reason(run_cli: RunCli, tmp_path: Path) -> None:
    # A step this large overflows the reconstruction: the loss becomes infinite or NaN.
    result = run_cli(FAST, "train.learning_rate=1e30", "tracking.log_model=false")
    assert result.returncode == 2
    assert "loss is not finite at epoch" in _output(result)
    (run,) = store_runs(tmp_path / "mlruns")
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("TrainingDiverged: loss is not finite")


def test_one_failing_job_does_not_stop_the_sweep(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "-m", FAST, "train.learning_rate=0.01,0.02,1e30,0.03", "tracking.log_model=false"
    )
    assert result.returncode == 1, _output(result)[-3000:]
    (parent,), children = parent_and_children(tmp_path / "mlruns")
    assert sorted(r.info.status for r in children) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["jobs_failed"] == 1 and parent.data.metrics["jobs_finished"] == 3
    assert "sweep FAILED: 3 finished, 1 failed" in result.stdout


def test_eight_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = tmp_path / "mlruns"
    run_concurrent_writers(f"dir={str(store)!r}")

    runs = store_runs(store)
    assert [r.info.status for r in runs] == ["FINISHED"] * 8
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    points = sum(len(client.get_metric_history(r.info.run_id, "value")) for r in runs)
    assert points == 1600


def test_a_sweep_killed_with_sigkill_resumes_without_redoing_finished_jobs(
    tmp_path: Path,
) -> None:
    sweep = ("-m", FAST, "seed=0,1,2", "tracking.log_model=false", "train.epochs=3")
    process = _start(tmp_path, *sweep)
    _wait_for(process, "#1 : ")  # job 0 is done, job 1 has started
    _wait_for(process, "epoch 1/3")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)

    _, children = parent_and_children(tmp_path / "mlruns")
    assert sorted(r.info.status for r in children) == ["FINISHED", "RUNNING"]
    finished_before = {r.info.run_id for r in children if r.info.status == "FINISHED"}

    result = subprocess.run(
        train_command(tmp_path, *sweep), capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, _output(result)[-3000:]
    assert "skipping +experiment=fast seed=0" in result.stdout
    assert "left RUNNING by a dead process: KILLED" in result.stdout
    _, children = parent_and_children(tmp_path / "mlruns")
    statuses = {r.data.params["seed"]: [] for r in children}
    for run in children:
        statuses[run.data.params["seed"]].append(run.info.status)
    assert statuses == {"0": ["FINISHED"], "1": ["KILLED", "FINISHED"], "2": ["FINISHED"]}
    assert finished_before <= {r.info.run_id for r in children if r.info.status == "FINISHED"}
