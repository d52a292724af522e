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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import server
from tests.conftest import ROOT, train_command

pytestmark = pytest.mark.slow
# The launcher is an optional extra (pip install -e .[ray]); `make test` installs it.
pytest.importorskip("hydra_plugins.hydra_ray_launcher")

LOOPBACK = ("127.0.0.1:", "[::ffff:127.0.0.1]:")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@contextmanager
def ray_head(folder: Path, port: int, env: dict[str, str]) -> Iterator[int]:
    """`ray start --head --block` in a session of its own; yields its pid, SIGTERMs it after.

    Not `ray stop`: that ends every Ray process on the machine, not only this head's.
    """
    folder.mkdir()
    # A short temp dir of its own: Ray's sockets live there, under a path length limit.
    temp_dir = tempfile.mkdtemp(prefix="ray-")
    log = folder / "ray.log"
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    command += ["--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2"]
    command += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"]
    with log.open("wb") as out:
        head = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield head.pid
    finally:
        head.terminate()  # its handler stops the raylet, its workers, then the GCS
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces: split after it.
            state, ppid, pgid = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # ended while being read
        if state != "Z":  # a zombie has ended; only its parent's wait() is missing
            table[int(stat.parent.name)] = (int(ppid), int(pgid))
    return table


def _group_and_descendants(group: int) -> set[int]:
    """A process group and every descendant (Ray workers run in groups of their own)."""
    table = _processes()
    found = {pid for pid, (_, pgid) in table.items() if pgid == group}
    while more := {pid for pid, (ppid, _) in table.items() if ppid in found} - found:
        found |= more
    return found


def _wait_gone(pids: set[int], timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := pids & set(_processes())) and time.monotonic() < deadline:
        time.sleep(0.5)
    return alive


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


def test_ray_sweep_logs_four_children_under_one_parent(tmp_path: Path) -> None:
    env = _ray_env(tmp_path / "auth_token")
    port = _free_port()
    store = tmp_path / "server"
    try:
        url = server.start(store, _free_port(), "sqlite", 0)
        with ray_head(tmp_path / "head", port, env) as head:
            result = subprocess.run(
                _sweep_command(tmp_path, port, url),
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
                timeout=600,
            )
            assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
            mlflow_server = int((store / "mlflow.pid").read_text())
            ours = _group_and_descendants(head) | _group_and_descendants(mlflow_server)
            lines = _listening(ours)
            assert any(f":{port} " in line for line in lines), lines  # the GCS is among them
            assert all(line.split()[3].startswith(LOOPBACK) for line in lines), lines
            client = MlflowClient(tracking_uri=url)
            experiment = client.get_experiment_by_name("ray-sweep")
            runs = client.search_runs([experiment.experiment_id])
    finally:
        server.stop(store)
    assert _wait_gone(ours) == set()

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
