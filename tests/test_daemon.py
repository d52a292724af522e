"""The train daemon (cli/daemon_server.py): a served run is the run the client's own process
would have made, mistakes and interrupts come back as they would, and whatever the daemon
cannot run alike (busy, stale code, other import-time variables) runs in the client."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparse_lstm_ad.cli import daemon_client, daemon_job, daemon_wire
from sparse_lstm_ad.cli.daemon_server import BUSY, Daemon
from tests.conftest import ROOT, ProcessOutput, store_runs, train_command

FAST = ("+experiment=fast", "model=sparse")
# What a run measures of itself in seconds differs between any two runs.
TIMINGS = ("fit_seconds", "epoch_seconds", "system/")


def test_the_code_fingerprint_follows_the_package_files(tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(daemon_wire.PACKAGE / "cli", package)
    before = daemon_wire.code_fingerprint(package)
    assert daemon_wire.code_fingerprint(package) == before
    (package / "train.py").write_text((package / "train.py").read_text() + "\n# edited\n")
    assert daemon_wire.code_fingerprint(package) != before


def test_only_variables_read_at_import_must_match() -> None:
    differences = daemon_wire.env_differences
    assert differences({}, {"TF_CPP_MIN_LOG_LEVEL": "3"}) == []  # train.py's default
    assert differences({"TF_CPP_MIN_LOG_LEVEL": "0"}, {}) == ["TF_CPP_MIN_LOG_LEVEL"]
    assert differences({"CUDA_VISIBLE_DEVICES": "1", "PYTHONHASHSEED": "0"}, {}) == [
        "CUDA_VISIBLE_DEVICES",
        "PYTHONHASHSEED",
    ]
    read_later = {"MLFLOW_TRACKING_URI": "x", "HYDRA_FULL_ERROR": "1", "PWD": "/", "TERM": "x"}
    assert differences(read_later, {}) == []
    assert differences({daemon_wire.SWITCH: "/tmp/a.sock"}, {}) == []


def test_sweeps_and_thread_counts_are_not_served() -> None:
    servable = daemon_client._servable
    assert servable(["model=sparse", "train.epochs=3"])
    assert not servable(["-m", "model=sparse,standard"])
    assert not servable(["hydra.mode=MULTIRUN", "model=sparse"])
    assert not servable(["threads=1"]) and not servable(["+threads=1"])


def test_a_daemon_refuses_what_it_cannot_run_alike(tmp_path: Path) -> None:
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    daemon = Daemon(tmp_path / "d.sock", 60, code="now", env=env)
    request = {"code": "now", "env": env}
    assert daemon._refusal({**request, "env": {"TF_XLA_FLAGS": "x"}}, [1, 2]) == (
        "the daemon started with another TF_XLA_FLAGS"
    )
    assert daemon._refusal(request, [1, 2]) is None and daemon.busy
    assert daemon._refusal(request, [1, 2]) == BUSY
    daemon.busy = False
    assert "older" in str(daemon._refusal({**request, "code": "edited"}, [1, 2]))
    assert daemon.stopping and daemon.jobs.get_nowait() is None  # it stops, its code stale
    assert daemon._refusal(request, [1, 2]) == BUSY


def test_a_command_runs_in_its_clients_state_and_leaves_the_daemons_as_it_was(
    tmp_path: Path,
) -> None:
    request = {"argv": ["src/train.py", "x=1"], "cwd": str(tmp_path), "env": {"A": "client"}}
    argv, folder, environ = list(sys.argv), os.getcwd(), dict(os.environ)
    root = logging.getLogger()
    handlers = list(root.handlers)
    log_file = logging.FileHandler(tmp_path / "train.log")
    with daemon_job._process_state({**request, "umask": 0o077}, {"B": "own", "A": "own"}):
        assert (sys.argv, os.getcwd()) == (request["argv"], str(tmp_path))
        assert dict(os.environ) == {"A": "client", "B": "own"}
        Path("made").touch()
        assert Path("made").stat().st_mode & 0o777 == 0o600  # the client's umask, 077
        with daemon_job._own_logging():
            root.addHandler(log_file)  # as Hydra's job logging does
            logging.getLogger("matplotlib").setLevel(logging.DEBUG)  # as hydra.verbose does
            logging.getLogger("made.by.the.command").setLevel(logging.DEBUG)
    assert (list(sys.argv), os.getcwd(), dict(os.environ)) == (argv, folder, environ)
    assert root.handlers == handlers and log_file.stream is None  # removed and closed
    assert logging.getLogger("matplotlib").level != logging.DEBUG
    assert logging.getLogger("made.by.the.command").level == logging.NOTSET


def test_a_daemon_older_than_the_code_is_passed_by_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.sock"
    daemon = Daemon(path, 60, code="before the edit", env=dict(os.environ))
    serving = threading.Thread(target=daemon.serve)
    serving.start()
    deadline = time.monotonic() + 10
    while daemon_client.control(path, "status") is None:
        assert time.monotonic() < deadline, "the daemon never answered"
        time.sleep(0.05)
    monkeypatch.setenv(daemon_wire.SWITCH, str(path))
    assert daemon_client.served(["src/train.py", "model=sparse"]) is None  # runs here
    assert capsys.readouterr().err == (
        "note: the daemon's code is older than this checkout's: it stops; running in this process\n"
    )
    serving.join(timeout=10)
    assert not serving.is_alive() and not path.exists()


def test_an_idle_daemon_stops_and_removes_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    Daemon(path, 0.2, code="now", env={}).serve()
    assert not path.exists()


@pytest.fixture(scope="module")
def started_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A daemon started as a user starts one; the environment whose commands go to it."""
    socket = tmp_path_factory.mktemp("daemon") / "d.sock"
    env = {**os.environ, daemon_wire.SWITCH: str(socket)}
    command = [sys.executable, "-m", "sparse_lstm_ad", "daemon"]
    started = subprocess.run([*command, "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0 and "daemon ready" in started.stdout, started.stderr
    yield env
    stopped = subprocess.run([*command, "stop"], env=env, capture_output=True, text=True)
    assert stopped.stdout.strip() == "stopped" and not socket.exists(), stopped.stderr


@pytest.fixture
def daemon_env(started_daemon: dict[str, str]) -> dict[str, str]:
    """The started daemon, once it is free. A command an earlier test left running fails the
    next test's set-up here, after 120 s, with the daemon's log: its cause, where a test that
    found the daemon busy would fail on something else."""
    path = Path(started_daemon[daemon_wire.SWITCH])
    deadline = time.monotonic() + 120
    while (status := daemon_client.control(path, "status")) is not None and status["busy"]:
        if time.monotonic() > deadline:
            log = Path(f"{path}.log").read_text()[-3000:]
            pytest.fail(f"the daemon is still running an earlier test's command:\n{log}")
        time.sleep(0.1)
    return started_daemon


def served_count(env: dict[str, str]) -> int:
    status = daemon_client.control(Path(env[daemon_wire.SWITCH]), "status")
    assert status is not None, "the daemon stopped"
    return int(status["served"])


def wait_until_served(env: dict[str, str], before: int, deadline: float) -> None:
    """Until the daemon has ended one more command than `before` (by `deadline`, monotonic)."""
    while served_count(env) == before:
        assert time.monotonic() < deadline, "the daemon never ended the command"
        time.sleep(0.1)


def hand_over(
    env: dict[str, str], tmp_path: Path, connection: socket.socket, output: int
) -> daemon_wire.Channel:
    """The fast command handed over on `connection` as a client would, `output` its stdout
    and stderr (the caller closes its copy)."""
    request = {"argv": train_command(tmp_path, *FAST)[1:], "cwd": str(ROOT), "env": env}
    request |= {"umask": 0o022, "code": daemon_wire.code_fingerprint()}
    connection.connect(env[daemon_wire.SWITCH])
    return daemon_wire.send_request(connection, request, [output, output])


def client(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = train_command(tmp_path, *args)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_served_run_is_the_run_of_its_own_process(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    served_before = served_count(daemon_env)
    served = client(daemon_env, tmp_path / "served", *FAST)
    assert served.returncode == 0, served.stderr
    assert "epoch 2/2" in served.stdout + served.stderr  # the run's log, in the client's output
    assert served_count(daemon_env) == served_before + 1
    own = client({**daemon_env, daemon_wire.SWITCH: "off"}, tmp_path / "own", *FAST)
    assert own.returncode == 0, own.stderr
    assert served_count(daemon_env) == served_before + 1
    [mine] = store_runs(tmp_path / "served" / "mlruns")
    [theirs] = store_runs(tmp_path / "own" / "mlruns")
    assert mine.info.status == "FINISHED"
    metrics = {k: v for k, v in mine.data.metrics.items() if not k.startswith(TIMINGS)}
    assert metrics and metrics == pytest.approx(
        {k: theirs.data.metrics[k] for k in metrics}, rel=1e-6
    )
    where = ("tracking.",)  # each run's own store
    params = {k: v for k, v in mine.data.params.items() if not k.startswith(where)}
    assert params == {k: v for k, v in theirs.data.params.items() if not k.startswith(where)}


def test_a_mistake_comes_back_as_one_line_and_exit_2(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    served_before = served_count(daemon_env)
    result = client(
        daemon_env, tmp_path, *FAST, "data=csv", f"data.csv.train={tmp_path}/missing.csv"
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "missing.csv" in result.stderr
    assert served_count(daemon_env) == served_before + 1
    assert store_runs(tmp_path / "mlruns") == []


def test_ctrl_c_ends_a_served_run_killed_and_a_busy_daemon_is_passed_by(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    long_run = [*FAST, "train.epochs=2000", "train.patience=2000"]
    command = train_command(tmp_path / "long", *long_run)
    process = subprocess.Popen(
        command, env=daemon_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = ProcessOutput(process)
    output.wait_for(" - epoch 1/2000")
    served_before = served_count(daemon_env)
    # While it runs, another command runs in its own process: here a mistake, found there.
    other = client(
        daemon_env, tmp_path / "other", *FAST, "data=csv", f"data.csv.train={tmp_path}/no.csv"
    )
    assert other.returncode == 2 and "no.csv" in other.stderr and "note:" not in other.stderr
    assert served_count(daemon_env) == served_before
    process.send_signal(signal.SIGINT)
    rest = output.rest(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, rest
    [run] = store_runs(tmp_path / "long" / "mlruns")
    assert f"interrupted by SIGINT: run {run.info.run_id} ended KILLED" in rest
    assert run.info.status == "KILLED"
    assert served_count(daemon_env) == served_before + 1  # alive, and free for the next


def test_a_signal_before_the_command_runs_ends_it_before_any_run(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    """Ctrl-C as the command is handed over: passed on, and the command ends at once."""
    read, write = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        channel = hand_over(daemon_env, tmp_path, connection, write)
        os.close(write)
        channel.send({"signal": signal.SIGINT})
        assert "accepted" in (channel.receive() or {})
        assert channel.receive() == {"exit": 128 + signal.SIGINT}
        channel.close()
    with os.fdopen(read) as output:
        assert output.read() == "interrupted by SIGINT: no run had started\n"
    assert store_runs(tmp_path / "mlruns") == []


def test_clients_that_hang_up_early_leave_the_daemon_answering(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    path = daemon_env[daemon_wire.SWITCH]
    for hang_up in ("at once", "after the request"):
        for _ in range(5):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(path)
                if hang_up == "after the request":
                    daemon_wire.send_request(connection, {"control": "status"}, [])
    served_count(daemon_env)  # it still answers
    # A command handed over by a client that hangs up at once: ended, and the daemon free.
    served_before = served_count(daemon_env)
    read, write = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        hand_over(daemon_env, tmp_path, connection, write)
    os.close(write)
    with os.fdopen(read) as output:
        assert "no run had started" in output.read()  # SIGTERM, as for a client killed
    wait_until_served(daemon_env, served_before, time.monotonic() + 60)


def test_a_client_killed_mid_run_ends_its_run_killed(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    served_before = served_count(daemon_env)
    command = train_command(tmp_path, *FAST, "train.epochs=2000", "train.patience=2000")
    process = subprocess.Popen(
        command, env=daemon_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ProcessOutput(process).wait_for(" - epoch 1/2000")
    process.kill()  # no signal passed on: the daemon sees the connection close
    process.wait()
    deadline = time.monotonic() + 120
    while (status := store_runs(tmp_path / "mlruns")[0].info.status) == "RUNNING":
        assert time.monotonic() < deadline, "the run was never ended"
        time.sleep(0.2)
    assert status == "KILLED"
    wait_until_served(daemon_env, served_before, deadline)  # the command's end, after its run's


def test_another_import_time_variable_runs_in_the_clients_process(
    daemon_env: dict[str, str], tmp_path: Path
) -> None:
    served_before = served_count(daemon_env)
    env = {**daemon_env, "TF_ENABLE_ONEDNN_OPTS": "0"}
    result = client(env, tmp_path, *FAST, "data=csv", f"data.csv.train={tmp_path}/no.csv")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "note: the daemon started with another TF_ENABLE_ONEDNN_OPTS; running in this process\n"
    )
    assert served_count(daemon_env) == served_before


def test_without_a_daemon_the_client_runs_the_command_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = tmp_path / "d.sock"
    left.touch()  # a socket file left by a daemon that was killed: nobody listens
    for switch in (str(left), str(tmp_path / "none.sock"), "off"):
        monkeypatch.setenv(daemon_wire.SWITCH, switch)
        assert daemon_client.served(["src/train.py", "model=sparse"]) is None


def test_the_client_loads_nothing_a_served_run_does_not_need() -> None:
    heavy = ("hydra", "omegaconf", "mlflow", "numpy", "pandas", "tensorflow", "click")
    code = "import sys, sparse_lstm_ad.cli.daemon_client; "
    code += f"print([m for m in {heavy} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
