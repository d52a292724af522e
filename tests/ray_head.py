"""A Ray head and a tracking server for a test, on 127.0.0.1 and free ports only, and the
process-table reading that proves nothing of either outlives it."""

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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from sparse_lstm_ad import server

HEAD_START_TIMEOUT = 60  # seconds; the head starts in about 4
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


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, all different: held open together while the kernel picks."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as error:
        return f"({error})"


def ray_env(token_file: Path) -> dict[str, str]:
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


class Process(NamedTuple):
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process even if pids are reused


def processes() -> dict[int, Process]:
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
            table[int(stat.parent.name)] = Process(ppid, pgid, sid, int(fields[19]))
    return table


def group_and_descendants(group: int) -> set[int]:
    """A process group and every descendant (Ray workers run in groups of their own)."""
    table = processes()
    found = {pid for pid, process in table.items() if process.pgid == group}
    while more := {pid for pid, process in table.items() if process.ppid in found} - found:
        found |= more
    return found


def snapshot(leader: int) -> dict[int, int]:
    """pid -> start time of what a session leader started: its group, its descendants, and
    what is left in its session after a parent died (Ray workers keep the head's session)."""
    found = group_and_descendants(leader)
    table = processes()
    found |= {pid for pid, process in table.items() if process.sid == leader}
    return {pid: table[pid].start for pid in found if pid in table}


def marked(mark: str) -> dict[int, int]:
    """pid -> start time of the processes whose environment holds mark (NAME=value): all that
    a head started, even what double-forked out of its session and its process tree."""
    table = processes()
    found = {}
    for pid, process in table.items():
        try:
            if mark.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found[pid] = process.start
        except OSError:
            continue  # ended, or another user's
    return found


def end(snapshot: dict[int, int], timeout: float = STOP_TIMEOUT) -> set[int]:
    """Wait for these processes to end; SIGKILL those still alive after timeout; return them."""
    deadline = time.monotonic() + timeout
    while True:
        table = processes()
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


def wait_gone(pids: set[int], timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := pids & set(processes())) and time.monotonic() < deadline:
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
        return f"--- {self.log} ---\n{tail(self.log)}\n--- {raylet} ---\n{tail(raylet, 2000)}"


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
    ports = free_ports(len(HEAD_PORT_OPTIONS) + len(HEAD_PORT_VARIABLES))
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
        started = snapshot(process.pid) | marked(mark)  # before it ends: then orphans
        process.terminate()  # its handler stops the raylet, its workers, then the GCS
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        killed |= end(started | snapshot(process.pid) | marked(mark))
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
        started = snapshot(int(pid_file.read_text())) if pid_file.exists() else {}
        server.stop(store)
        killed |= end(started)


def listening(pids: set[int]) -> list[str]:
    """`ss` lines of the TCP sockets these processes listen on."""
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [line for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]
