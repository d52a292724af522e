"""A distributed sweep: a real Ray head and an MLflow tracking server, both on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import server
from tests.conftest import ROOT, train_command

pytestmark = pytest.mark.slow
# The launcher is an optional extra (pip install -e .[ray]); `make test` installs it.
pytest.importorskip("hydra_plugins.hydra_ray_launcher")

LOOPBACK = ("127.0.0.1:", "[::ffff:127.0.0.1]:")
HEAD_START_TIMEOUT = 60  # seconds; the head starts in about 4
SWEEP_TIMEOUT = 240  # seconds; the four jobs take about 30
STOP_TIMEOUT = 60  # seconds a stopped head or server has to end before it is SIGKILLed
# Every port option of `ray start`. Left out, each takes a fixed default (GCS 6379, ray client
# server 10001, dashboard 8265, dashboard agent 52365, ...) that another Ray head on this machine
# may hold; this head then fails (GCS), shares the port with it (the client server's gRPC
# SO_REUSEPORT) or gives up that server after retries (dashboard agent). Workers: `ray_head`.
HEAD_PORT_OPTIONS = (
    "port",
    "object-manager-port",
    "node-manager-port",
    "ray-client-server-port",
    "dashboard-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)
# Ports with no option, read from the environment: the autoscaler's and the dashboard's
# metrics servers (44217 and 44227 by default; on a collision Ray only logs an exception).
HEAD_PORT_VARIABLES = ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT")
MARK = "SPARSE_LSTM_AD_TEST_RAY_HEAD"  # in the environment of a head's processes: its temp dir


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different: held open together while the kernel picks."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as error:
        return f"({error})"


def _ray_env(token_file: Path) -> dict[str, str]:
    """What the head and every driver need: without the first, Ray swaps 127.0.0.1 for the
    machine's external address; the second makes the head accept only holders of the token."""
    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    return {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_file),
    }


class _Process(NamedTuple):
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process even if pids are reused


def _processes() -> dict[int, _Process]:
    """pid -> parent, group, session and start time of every live process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces: split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue  # ended while being read
        if fields[0] != "Z":  # a zombie has ended; only its parent's wait() is missing
            ppid, pgid, sid = (int(field) for field in fields[1:4])
            table[int(stat.parent.name)] = _Process(ppid, pgid, sid, int(fields[19]))
    return table


def _group_and_descendants(group: int) -> set[int]:
    """A process group and every descendant (Ray workers run in groups of their own)."""
    table = _processes()
    found = {pid for pid, process in table.items() if process.pgid == group}
    while more := {pid for pid, process in table.items() if process.ppid in found} - found:
        found |= more
    return found


def _snapshot(leader: int) -> dict[int, int]:
    """pid -> start time of what a session leader started: its group, its descendants, and
    what is left in its session after a parent died (Ray workers keep the head's session)."""
    found = _group_and_descendants(leader)
    table = _processes()
    found |= {pid for pid, process in table.items() if process.sid == leader}
    return {pid: table[pid].start for pid in found if pid in table}


def _marked(mark: str) -> dict[int, int]:
    """pid -> start time of the processes whose environment holds mark (NAME=value): all that
    a head started, even what double-forked out of its session and its process tree."""
    table = _processes()
    found = {}
    for pid, process in table.items():
        try:
            if mark.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found[pid] = process.start
        except OSError:
            continue  # ended, or another user's
    return found


def _end(snapshot: dict[int, int], timeout: float = STOP_TIMEOUT) -> set[int]:
    """Wait for these processes to end; SIGKILL those still alive after timeout; return them."""
    deadline = time.monotonic() + timeout
    while True:
        table = _processes()
        alive = {
            pid for pid, start in snapshot.items() if pid in table and table[pid].start == start
        }
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for pid in alive:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


def _wait_gone(pids: set[int], timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := pids & set(_processes())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


@dataclass
class Head:
    pid: int
    port: int  # the GCS's: the cluster's address is 127.0.0.1:port
    log: Path  # what `ray start` printed
    temp_dir: Path  # Ray's sockets and session logs

    def logs(self) -> str:
        """The tails of `ray start`'s output and of the raylet's log, for a failure message."""
        raylet = self.temp_dir / "session_latest" / "logs" / "raylet.out"
        return f"--- {self.log} ---\n{_tail(self.log)}\n--- {raylet} ---\n{_tail(raylet, 2000)}"


@contextmanager
def ray_head(folder: Path, env: dict[str, str], killed: set[int]) -> Iterator[Head]:
    """`ray start --head --block` in a session of its own, on free ports only; SIGTERMed after.

    Not `ray stop`: that ends every Ray process on the machine, not only this head's. Whatever
    the head started and outlives the SIGTERM by STOP_TIMEOUT is SIGKILLed and added to
    `killed`, even when the test fails: Ray workers run in groups of their own and what they
    start may leave the head's session, out of reach of a SIGKILL of the head's group.
    """
    folder.mkdir()
    # A short temp dir of its own: Ray's sockets live there, under a path length limit.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
    log = folder / "ray.log"
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    command += ["--node-ip-address=127.0.0.1", "--num-cpus=2"]
    command += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    ports = _free_ports(len(HEAD_PORT_OPTIONS) + len(HEAD_PORT_VARIABLES))
    options, variables = ports[: len(HEAD_PORT_OPTIONS)], ports[len(HEAD_PORT_OPTIONS) :]
    command += [f"--{name}={port}" for name, port in zip(HEAD_PORT_OPTIONS, options, strict=True)]
    env = {**env, **dict(zip(HEAD_PORT_VARIABLES, map(str, variables), strict=True))}
    env[MARK] = str(temp_dir)  # inherited by all that the head starts, to find it at the end
    # 0 and 0: each worker binds a port the kernel picks, none of the default 10002-19999.
    command += ["--min-worker-port=0", "--max-worker-port=0"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
    head = Head(process.pid, ports[0], log, temp_dir)
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT
        while b"Ray runtime started" not in log.read_bytes():
            if process.poll() is not None:
                pytest.fail(f"`ray start --head` exited ({process.returncode})\n{head.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start in {HEAD_START_TIMEOUT} s\n{head.logs()}")
            time.sleep(0.5)
        yield head
    finally:
        mark = f"{MARK}={temp_dir}"
        started = _snapshot(process.pid) | _marked(mark)  # before it ends: then orphans
        process.terminate()  # its handler stops the raylet, its workers, then the GCS
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        killed |= _end(started | _snapshot(process.pid) | _marked(mark))
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def tracking_server(store: Path, port: int, killed: set[int]) -> Iterator[str]:
    """`sparse_lstm_ad.server` with SQLite; yields its URL, stops it after, failure or not.

    Whatever of it outlives `server.stop` by STOP_TIMEOUT is SIGKILLed and added to `killed`.
    """
    pid_file = store / "mlflow.pid"
    try:
        yield server.start(store, port, "sqlite", 0)
    finally:
        started = _snapshot(int(pid_file.read_text())) if pid_file.exists() else {}
        server.stop(store)
        killed |= _end(started)


def _listening(pids: set[int]) -> list[str]:
    """`ss` lines of the TCP sockets these processes listen on."""
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [line for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]


def _sweep_command(tmp_path: Path, port: int, url: str) -> list[str]:
    """Four jobs through the README's command, in the smallest settings."""
    return train_command(
        tmp_path,
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
        # The head sets it: ray.init refuses it when joining a running cluster.
        "+hydra.launcher.ray.init.object_store_memory=null",
        "+experiment=fast",
        "train.epochs=1",
        "model=standard,sparse",
        "seed=0,1",
        f"tracking.uri={url}",
        "tracking.experiment=ray-sweep",
        "tracking.log_model=false",
        store=False,
    )


def _run_sweep(command: list[str], env: dict[str, str], head: Head) -> tuple[int, str]:
    """The sweep's exit status and output; past SWEEP_TIMEOUT, a failure with the logs' tails."""
    sweep = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    timed_out = False
    try:
        output, _ = sweep.communicate(timeout=SWEEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if sweep.poll() is None:  # timed out or interrupted: end it and whatever it started
            os.killpg(sweep.pid, signal.SIGKILL)
    if timed_out:
        output, _ = sweep.communicate()
        pytest.fail(
            f"the sweep did not end in {SWEEP_TIMEOUT} s\n"
            f"--- the sweep's output ---\n{output[-3000:]}\n{head.logs()}"
        )
    return sweep.returncode, output


def _failure(output: str, multirun: Path) -> str:
    """A failed job's own error lines (from the output and the jobs' logs), then the end of
    the output: Ray's logs fill the rest of it."""
    logs = [output] + [log.read_text() for log in sorted(multirun.glob("*/train.log"))]
    errors = [line for text in logs for line in text.splitlines() if "ERROR" in line]
    return "\n".join(errors[-20:]) + "\n--- the end of the output ---\n" + output[-3000:]


def test_ray_sweep_logs_four_children_under_one_parent(tmp_path: Path) -> None:
    env = _ray_env(tmp_path / "auth_token")
    (tracking_port,) = _free_ports(1)
    store = tmp_path / "server"
    killed: set[int] = set()  # processes that outlived their stop and had to be SIGKILLed
    with (
        tracking_server(store, tracking_port, killed) as url,
        ray_head(tmp_path / "head", env, killed) as head,  # after the server: other ports
    ):
        returncode, output = _run_sweep(_sweep_command(tmp_path, head.port, url), env, head)
        assert returncode == 0, _failure(output, tmp_path / "multirun")
        mlflow_server = int((store / "mlflow.pid").read_text())
        ours = _group_and_descendants(head.pid) | _group_and_descendants(mlflow_server)
        if shutil.which("ss") is None:
            warnings.warn(
                "`ss` (iproute2) is not installed: the check that the Ray head and the tracking "
                "server listen on 127.0.0.1 only was skipped",
                stacklevel=1,
            )
        else:
            lines = _listening(ours)
            assert any(f":{head.port} " in line for line in lines), lines  # the GCS is among them
            assert all(line.split()[3].startswith(LOOPBACK) for line in lines), lines
        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("ray-sweep")
        runs = client.search_runs([experiment.experiment_id])
    assert _wait_gone(ours) == set()
    assert killed == set(), f"these outlived their SIGTERM by {STOP_TIMEOUT} s and were SIGKILLed"

    (parent,) = [r for r in runs if "sweep_parent" in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    assert [r.info.status for r in children] == ["FINISHED"] * 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    combos = {(r.data.params["model.kind"], r.data.params["seed"]) for r in children}
    assert combos == {(kind, seed) for kind in ("standard", "sparse_gate") for seed in "01"}
    # The jobs ran in Ray workers, not in the driver, each on the one CPU its task reserved.
    assert parent.data.tags["pid"] not in {r.data.tags["pid"] for r in children}
    assert {r.data.params["threads"] for r in children} == {"1"}
    # hydra.sweep.dir is absolute: the job folders land there, not where `ray start` ran.
    assert sorted(p.name for p in (tmp_path / "multirun").iterdir() if p.is_dir()) == list("0123")
