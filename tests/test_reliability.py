"""Real processes: bad commands, interrupts, a killed sweep, concurrent fresh stores, a server
that goes away, a changed CSV. The battery of bad inputs runs in-process in
tests/test_reliability_inputs.py; a handful run here as the user runs them."""

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
    ProcessOutput,
    parent_and_children,
    run_concurrent_writers,
    seed_store,
    store_runs,
    train_command,
    train_in_process,
)

pytestmark = pytest.mark.slow

RunCli = Callable[..., subprocess.CompletedProcess[str]]
FAST = "+experiment=fast"
NO_TF = ("model=mahalanobis", "tracking.log_model=false")  # a whole run without TensorFlow


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epochs=many"], "error: train.epochs: Value 'many' of type 'str' could not be"),
        (["model=transformer"], "error: model=transformer: no such option in conf/model/"),
        (["+train.learning_rat=0.1"], "error: train.learning_rat is not a key of the config"),
        (["seed=-1"], "error: seed=-1 is not allowed"),
        (["-m", "train.batch_size=64,0"], "error: train.batch_size=0 is not allowed"),
    ],
    ids=["type", "option", "plus-key", "seed", "sweep"],
)
def test_a_bad_command_is_one_line_and_exit_2(
    overrides: list[str], message: str, run_cli: RunCli, tmp_path: Path
) -> None:
    flags = [o for o in overrides if o == "-m"]
    result = run_cli(*flags, FAST, *[o for o in overrides if o != "-m"])
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr.startswith(message), _output(result)
    assert result.stderr.count("\n") == 1, result.stderr
    assert store_runs(tmp_path / "mlruns") == []  # nothing ran, not even the sweep's parent


def test_full_error_shows_hydras_own_story(tmp_path: Path) -> None:
    # Outputs and store in tmp_path: had the command composed, nothing lands in /tmp or ./mlruns.
    command = train_command(tmp_path, FAST, "model=transformer")
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "MissingConfigException" in result.stderr


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ProcessOutput:
    """`train.py ARGS` in a process of its own session, its output read as it comes."""
    process = subprocess.Popen(
        train_command(tmp_path, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,
        env=env,
    )
    return ProcessOutput(process)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_sweep_ends_killed_in_one_line(
    signum: int, tmp_path: Path, store_template: Path
) -> None:
    seed_store(store_template, tmp_path / "mlruns")
    output = _start(tmp_path, "-m", FAST, "seed=0", "train.epochs=500", "train.patience=500")
    output.wait_for("epoch 3/500")
    output.process.send_signal(signum)
    rest = output.rest(timeout=120)
    assert output.process.returncode == 128 + signum, rest[-3000:]  # a crash: faulthandler's
    (parent,), (run,) = parent_and_children(tmp_path / "mlruns")
    name = signal.Signals(signum).name
    line = (
        f"interrupted by {name}: run {run.info.run_id} ended KILLED; "
        f"sweep parent run {parent.info.run_id} ended KILLED"
    )
    assert rest.strip().splitlines()[-1] == line, rest[-3000:]
    assert "Traceback" not in rest
    assert run.info.status == "KILLED" and "interrupted" in run.data.tags["error"]
    assert parent.info.status == "KILLED" and name in parent.data.tags["error"]


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


def test_eight_writers_on_a_fresh_store_lose_nothing(tmp_path: Path) -> None:
    """Started together on a store that does not exist yet: one creates it, none breaks it."""
    store = tmp_path / "mlruns"
    run_concurrent_writers(f"dir={str(store)!r}", tmp_path / "barrier", prepare=False)
    runs = store_runs(store)
    assert [r.info.status for r in runs] == ["FINISHED"] * 8
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    points = sum(len(client.get_metric_history(r.info.run_id, "value")) for r in runs)
    assert points == 8 * 50
    client.create_experiment("still usable")


def test_a_sweep_killed_with_sigkill_is_closed_and_resumed(
    tmp_path: Path, store_template: Path
) -> None:
    seed_store(store_template, tmp_path / "mlruns")
    sweep = ("-m", FAST, "seed=0,1,2", "tracking.log_model=false", "train.epochs=3")
    output = _start(tmp_path, *sweep)
    output.wait_for("#1 : ")  # job 0 is done, job 1 has started
    output.wait_for("epoch 1/3")
    os.killpg(output.process.pid, signal.SIGKILL)
    output.rest(timeout=60)

    (parent,), children = parent_and_children(tmp_path / "mlruns")
    assert parent.info.status == "RUNNING"
    assert sorted(r.info.status for r in children) == ["FINISHED", "RUNNING"]
    finished_before = {r.info.run_id for r in children if r.info.status == "FINISHED"}

    # A fresh process, as a user's rerun is: the dead run's warning goes to its stderr.
    result = subprocess.run(
        train_command(tmp_path, *sweep), capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    output = _output(result)
    assert result.returncode == 0, output[-3000:]
    assert "skipping +experiment=fast seed=0" in output and "Traceback" not in output
    assert f"sweep parent run {parent.info.run_id} was left RUNNING by a dead process" in output
    parents, children = parent_and_children(tmp_path / "mlruns")
    assert [p.info.status for p in parents] == ["KILLED", "FINISHED"]
    statuses: dict[str, list[str]] = {r.data.params["seed"]: [] for r in children}
    for run in children:
        statuses[run.data.params["seed"]].append(run.info.status)
    assert statuses == {"0": ["FINISHED"], "1": ["KILLED", "FINISHED"], "2": ["FINISHED"]}
    assert finished_before <= {r.info.run_id for r in children if r.info.status == "FINISHED"}


def test_a_changed_csv_runs_its_job_again(tmp_path: Path, store_template: Path) -> None:
    seed_store(store_template, tmp_path / "mlruns")
    rows = np.arange(200, dtype=float)
    data = tmp_path / "series.csv"
    pd.DataFrame({"a": np.sin(rows), "b": np.cos(rows / 3)}).to_csv(data, index=False)
    sweep = ("-m", FAST, *NO_TF, "data=csv", f"data.csv.train={data}", "data.csv.test_from=150")
    sweep += ("data.every=1", "data.window=5")

    def run() -> str:
        result = train_in_process(train_command(tmp_path, *sweep))
        assert result.returncode == 0, _output(result)[-3000:]
        return _output(result)

    run()
    assert "skipping" in run()  # unchanged: the job counts as done
    pd.DataFrame({"a": np.cos(rows), "b": np.sin(rows / 3)}).to_csv(data, index=False)
    assert "skipping" not in run()
    _, children = parent_and_children(tmp_path / "mlruns")
    assert [r.info.status for r in children] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["config_hash"] for r in children}) == 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_tracking_server_that_goes_away(tmp_path: Path, store_template: Path) -> None:
    """Two jobs log to a server that stops. One retries (MLflow's HTTP client: 1, 2, 4 ... 64 s)
    and finishes once the server is back; one gives up at once and stops in one line, and the
    first command once the server is back closes the run it left RUNNING."""
    from sparse_lstm_ad import server

    state, port = tmp_path / "server", _free_port()
    seed_store(store_template, state, served=True)  # its schema migrations are not tested
    url = server.start(state, port, "sqlite", 0)
    fit = (FAST, f"tracking.uri={url}", "tracking.log_model=false", "train.patience=1000")
    retries = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"}
    retries["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    patient = _start(tmp_path / "patient", *fit, "train.epochs=6", env=retries)
    gives_up = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    impatient = _start(tmp_path / "impatient", *fit, "train.epochs=1000", env=gives_up)
    try:
        patient.wait_for("epoch 3/6")
        patient.process.send_signal(signal.SIGSTOP)  # held mid-fit until the server has gone
        impatient.wait_for("epoch 3/1000")
        server.stop(state)
        patient.process.send_signal(signal.SIGCONT)
        rest = impatient.rest(timeout=300)
        assert impatient.process.returncode == 2, rest[-3000:]
        assert f"tracking store {url} cannot be used" in rest and "Traceback" not in rest

        time.sleep(1)
        server.start(state, port, "sqlite", 0)
        patient.rest(timeout=300)
        assert patient.process.returncode == 0, "".join(patient.seen)[-3000:]
        result = train_in_process(
            train_command(tmp_path, FAST, *NO_TF, f"tracking.uri={url}", store=False)
        )
        assert result.returncode == 0, _output(result)[-3000:]
        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("sparse-lstm-ad").experiment_id
        runs = {r.data.params["train.epochs"]: r for r in client.search_runs([experiment])}
        statuses = {epochs: run.info.status for epochs, run in runs.items()}
        assert statuses == {"6": "FINISHED", "1000": "KILLED", "2": "FINISHED"}
        history = client.get_metric_history(runs["6"].info.run_id, "loss")
        assert len(history) == runs["6"].data.metrics["epochs_run"] == 6  # no epoch lost in the gap
    finally:
        for job in (patient, impatient):  # a failed assertion above leaves no job behind
            if job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGKILL)
        server.stop(state)
