"""A shared MLflow tracking server on this machine, backed by SQLite or a private PostgreSQL.

    sparse-lstm-ad server start [--dir .server] [--port 5001] [--backend postgres]
    sparse-lstm-ad server stop  [--dir .server]

Everything listens on 127.0.0.1 only. Workers then log to it with
`tracking.uri=http://127.0.0.1:5001`. The PostgreSQL cluster is created in `<dir>/pg` with
`initdb` (run as the `postgres` user when started as root, since initdb refuses root) and
trusts loopback connections: it is private to this machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message says which and why."""


def _as_postgres_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), None)
    if not found:
        raise ServerError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return str(found)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ServerError(f"{what} failed: {detail[-1] if detail else result.returncode}")


def _check_reachable(data: Path) -> None:
    """As root the cluster runs as `postgres`, who must be able to enter every folder above
    it: a folder under a private one (mode 0700, as pytest's and mkdtemp's) stops initdb."""
    reachable = subprocess.run(_as_postgres_user(["test", "-w", str(data)]), timeout=30)
    if reachable.returncode != 0:
        raise ServerError(
            f"the postgres user cannot reach {data}: PostgreSQL runs as that user when started "
            "as root; choose a --dir under folders others may enter (chmod o+x)"
        )


def start_postgres(folder: Path, port: int) -> str:
    """A private cluster in folder/pg on 127.0.0.1:port with a database `mlflow`; its URI."""
    data = folder / "pg"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            _check_reachable(data)
        _run(
            _as_postgres_user(
                [_pg_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
            ),
            "initdb",
        )
    # TCP on loopback only, and no Unix socket: nothing here uses one, and its path (107
    # bytes at most) would limit how deep the folder may lie.
    options = f"-h {HOST} -p {port} -k ''"
    _run(
        _as_postgres_user(
            [
                _pg_binary("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(data / "server.log"),
                "-w",
                "start",
            ]
        ),
        f"pg_ctl start (its log: {data / 'server.log'})",
    )
    exists = subprocess.run(
        [
            _pg_binary("psql"),
            "-h",
            HOST,
            "-p",
            str(port),
            "-U",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'mlflow'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if exists.stdout.strip() != "1":
        _run(
            [_pg_binary("createdb"), "-h", HOST, "-p", str(port), "-U", "postgres", "mlflow"],
            "createdb",
        )
    return f"postgresql://postgres@{HOST}:{port}/mlflow"


def _server_environment() -> dict[str, str]:
    """MLflow 3's server also starts a job runner for its GenAI features (scorers, trace
    roll-ups): eight huey processes, each importing MLflow, 1.3 GB against 0.8 GB in all and
    seconds of both cores at every start, for jobs no training run asks for. Off unless the
    caller's environment turns it on."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


def start_mlflow(folder: Path, backend_uri: str, port: int, timeout: float = 90) -> str:
    """`mlflow server` in the background on 127.0.0.1:port; returns its URL once healthy.
    A server that does not become healthy is stopped again: nothing is left running."""
    with (folder / "mlflow.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                HOST,
                "--port",
                str(port),
                "--backend-store-uri",
                backend_uri,
                "--artifacts-destination",
                str((folder / "artifacts").resolve()),
                "--workers",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_server_environment(),
        )
    pid_file = folder / "mlflow.pid"
    pid_file.write_text(str(process.pid))  # from here `stop` finds it, even mid-start
    try:
        return _wait_until_healthy(process, f"http://{HOST}:{port}", folder, timeout)
    except BaseException:  # not healthy, or interrupted: the half-started server goes too
        _end_group(process.pid)
        pid_file.unlink(missing_ok=True)
        raise


def _refuse_a_second_server(folder: Path, port: int) -> None:
    """A server this folder started, or anything on the port, would answer the health check
    for the new one, which then dies on the taken port: its pid file would name a dead one."""
    pid_file = folder / "mlflow.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _is_mlflow_server(pid):
            raise ServerError(
                f"an MLflow server started from {folder} is running (process group {pid}): "
                f"`sparse-lstm-ad server stop --dir {folder}` first"
            )
        pid_file.unlink()  # left by a server that died
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2):
        raise ServerError(f"port {port} on {HOST} is in use: choose another with --port")


def _wait_until_healthy(process: subprocess.Popen, url: str, folder: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"mlflow server exited ({process.returncode}): see {folder}/mlflow.log"
            )
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).close()
            return url
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise ServerError(f"mlflow server did not answer on {url} within {timeout:.0f} s")


def start(folder: Path, port: int, backend: str, pg_port: int) -> str:
    # Absolute: PostgreSQL reads a relative socket folder (-k) from inside its data folder.
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    _refuse_a_second_server(folder, port)
    cluster_was_running = (folder / "pg" / "postmaster.pid").exists()
    try:
        if backend == "postgres":
            backend_uri = start_postgres(folder, pg_port)
        else:
            backend_uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
        return start_mlflow(folder, backend_uri, port)  # stops its own server if it fails
    except BaseException:
        if backend == "postgres" and not cluster_was_running:
            # The cluster started for it goes too; the start's own error is the one reported.
            with contextlib.suppress(Exception):
                _stop_postgres(folder / "pg")
        raise


def _end_group(pgid: int, grace: float = 15.0) -> bool:
    """SIGTERM the server's process group and wait until none of it is left (SIGKILL after
    `grace` s): a server started again on the same port must find the port free. Seen: with a
    client logging every 2 s, uvicorn's graceful shutdown did not end at all."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            deadline = time.monotonic() + grace
        time.sleep(0.1)
    return True


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies, not yet reaped, are not)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: signal 0 answers, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop(folder: Path) -> list[str]:
    """Stop what `start` started in this folder; returns what was stopped."""
    folder = folder.resolve()
    stopped = []
    pid_file = folder / "mlflow.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _is_mlflow_server(pid) and _end_group(pid):  # a reused pid is someone else's
            stopped.append("mlflow server")
        pid_file.unlink()
    if (folder / "pg" / "postmaster.pid").exists():
        _stop_postgres(folder / "pg")
        stopped.append("postgresql")
    return stopped


def _stop_postgres(data: Path) -> None:
    _run(
        _as_postgres_user([_pg_binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        "pg_ctl stop",
    )


def _is_mlflow_server(pid: int) -> bool:
    """Whether `pid` still runs the `mlflow server` a pid file names, not a process that got
    its number since (after a reboot); where /proc cannot say, whether its group lives."""
    if not Path("/proc/self").exists():  # not Linux
        return _group_alive(pid)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # no such process
        return False
    return b"mlflow" in command and b"server" in command
