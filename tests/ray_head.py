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
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
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

    @property
    def mark(self) -> str:
        """NAME=value in the environment of every process of this node."""
        return f"{MARK}={self.temp_dir}"

    def logs(self) -> str:
        """The tails of `ray start`'s output and of the raylet's log, for a failure message."""
        raylet = self.temp_dir / "session_latest" / "logs" / "raylet.out"
        return f"--- {self.log} ---\n{tail(self.log)}\n--- {raylet} ---\n{tail(raylet, 2000)}"


# `ray start --address` on one machine, on 127.0.0.1: Ray's CLI refuses to join a head unless
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is 1, and with 1 swaps 127.0.0.1 (the head's address and
# the node's own) for the machine's external address, where nothing listens. This `ray start`
# takes both as given; the variable stays 0 for what it starts (raylet, agents, workers), as
# on the head. On real machines none of this applies: each node has an address of its own.
JOIN_ON_LOOPBACK = (
    "import sys\n"
    "import ray._private.ray_constants as constants\n"
    "import ray._private.services as services\n"
    "from ray.scripts.scripts import main\n"
    "constants.ENABLE_RAY_CLUSTER = True\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "sys.exit(main())\n"
)
# The options a node that joins a head takes: its own ports, none of Ray's defaults.
NODE_PORT_OPTIONS = (
    "object-manager-port",
    "node-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)


@contextmanager
def ray_head(
    folder: Path,
    env: dict[str, str],
    killed: set[int],
    *options: str,
    avoid: frozenset[int] = frozenset(),
) -> Iterator[Head]:
    """`ray start --head --block` in a session of its own, on free ports only; SIGTERMed after.

    Not `ray stop`: that ends every Ray process on the machine, not only this head's. Whatever
    the head started and outlives the SIGTERM by STOP_TIMEOUT is SIGKILLed and added to
    `killed`, even when the test fails: Ray workers run in groups of their own and what they
    start may leave the head's session, out of reach of a SIGKILL of the head's group.
    `options` go to `ray start` (default: two CPUs). `avoid`: ports taken by what starts
    beside the head and may not listen yet (a tracking server: `started_together`).
    """
    count = len(HEAD_PORT_OPTIONS) + len(HEAD_PORT_VARIABLES)
    ports = [port for port in free_ports(count + len(avoid)) if port not in avoid][:count]
    named, variables = ports[: len(HEAD_PORT_OPTIONS)], ports[len(HEAD_PORT_OPTIONS) :]
    command = ["--head", "--include-dashboard=false", "--disable-usage-stats"]
    command += [f"--{name}={port}" for name, port in zip(HEAD_PORT_OPTIONS, named, strict=True)]
    command += list(options or ("--num-cpus=2",))
    env = {**env, **dict(zip(HEAD_PORT_VARIABLES, map(str, variables), strict=True))}
    with _ray_node(folder, env, killed, command, ports[0]) as head:
        yield head


@contextmanager
def ray_worker_node(
    folder: Path, env: dict[str, str], killed: set[int], head: Head, *options: str
) -> Iterator[Head]:
    """A second node joining `head` (`ray start --address`), as a machine of a cluster would:
    a temp dir, ports, raylet and workers of its own; ended as `ray_head` ends the head."""
    named = free_ports(len(NODE_PORT_OPTIONS))
    command = [f"--address=127.0.0.1:{head.port}"]
    command += [f"--{name}={port}" for name, port in zip(NODE_PORT_OPTIONS, named, strict=True)]
    command += list(options or ("--num-cpus=1",))
    with _ray_node(folder, env, killed, command, head.port, JOIN_ON_LOOPBACK) as node:
        yield node


@contextmanager
def _ray_node(
    folder: Path,
    env: dict[str, str],
    killed: set[int],
    options: list[str],
    port: int,
    script: str = "from ray.scripts.scripts import main; main()",
) -> Iterator[Head]:
    folder.mkdir()
    # A short temp dir of its own: Ray's sockets live there, under a path length limit.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
    log = folder / "ray.log"
    command = [sys.executable, "-c", script, "start", "--block", *options]
    command += ["--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}"]
    # 0 and 0: each worker binds a port the kernel picks, none of the default 10002-19999.
    command += ["--min-worker-port=0", "--max-worker-port=0"]
    env = {**env, MARK: str(temp_dir)}  # inherited by all the node starts, to find it at the end
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
    node = Head(process.pid, port, log, temp_dir)
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT
        while b"Ray runtime started" not in log.read_bytes():
            if process.poll() is not None:
                pytest.fail(f"`ray start` exited ({process.returncode})\n{node.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Ray node did not start in {HEAD_START_TIMEOUT} s\n{node.logs()}")
            time.sleep(0.5)
        yield node
    finally:
        mark = node.mark
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


def kill_node(node: Head) -> set[int]:
    """SIGKILL every process of a node at once, as a machine that loses its power: its
    `ray start`, raylet, agents and workers; returns their pids."""
    pids = set(marked(node.mark))
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


@contextmanager
def tracking_server(
    store: Path, port: int, killed: set[int], backend: str = "sqlite", pg_port: int = 0
) -> Iterator[str]:
    """`sparse_lstm_ad.server` (SQLite, or PostgreSQL on pg_port); yields its URL, stops it
    after, failure or not. It serves the artifacts: clients upload them through it.

    Whatever of it outlives `server.stop` by STOP_TIMEOUT is SIGKILLed and added to `killed`.
    """
    pid_file = store / "mlflow.pid"
    try:
        yield server.start(store, port, backend, pg_port)
    finally:
        started = snapshot(int(pid_file.read_text())) if pid_file.exists() else {}
        server.stop(store)
        killed |= end(started)


@contextmanager
def started_together(*managers: AbstractContextManager) -> Iterator[list]:
    """Enter context managers at once, each in a thread (a tracking server and a Ray head each
    take seconds to start, most of it waiting); what they yield, in order. They are left in
    reverse order, as nested `with`s would be, and those that started are left even when
    another failed to start."""
    with ThreadPoolExecutor(len(managers)) as pool:
        entering = [pool.submit(manager.__enter__) for manager in managers]
    with ExitStack() as stack:
        for manager, entered in zip(managers, entering, strict=True):
            if entered.exception() is None:
                stack.push(manager.__exit__)
        yield [entered.result() for entered in entering]  # the first failure raises here


def listening(pids: set[int]) -> list[str]:
    """`ss` lines of the TCP sockets these processes listen on."""
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [line for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]


SWEEP_TIMEOUT = 300  # seconds a test's sweep may take before it fails with the logs' tails


def run_sweep(
    command: list[str], env: dict[str, str], cwd: Path, *nodes: Head, timeout: float = SWEEP_TIMEOUT
) -> tuple[int, str]:
    """A sweep's exit status and output; past `timeout`, a failure with the logs' tails."""
    sweep = start_sweep(command, env, cwd)
    return finish_sweep(sweep, *nodes, timeout=timeout)


def start_sweep(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


def finish_sweep(
    sweep: subprocess.Popen[str], *nodes: Head, timeout: float = SWEEP_TIMEOUT
) -> tuple[int, str]:
    """Wait for a started sweep: its exit status and output, or a failure after `timeout`;
    whatever it started is SIGKILLed if it has not ended."""
    timed_out = False
    try:
        output, _ = sweep.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if sweep.poll() is None:  # timed out or interrupted: end it and whatever it started
            with suppress(ProcessLookupError):
                os.killpg(sweep.pid, signal.SIGKILL)
    if timed_out:
        output, _ = sweep.communicate()
        logs = "\n".join(node.logs() for node in nodes)
        pytest.fail(
            f"the sweep did not end in {timeout:.0f} s\n"
            f"--- the sweep's output ---\n{output[-3000:]}\n{logs}"
        )
    return sweep.returncode, output


def failure(output: str, multirun: Path) -> str:
    """A failed job's own error lines (from the output and the jobs' logs), then the end of
    the output: Ray's logs fill the rest of it."""
    logs = [output] + [log.read_text() for log in sorted(multirun.glob("*/train.log"))]
    errors = [line for text in logs for line in text.splitlines() if "ERROR" in line]
    return "\n".join(errors[-20:]) + "\n--- the end of the output ---\n" + output[-3000:]
