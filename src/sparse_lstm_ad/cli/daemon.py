"""The `daemon` command: start, stop or ask after the train daemon (cli/daemon_server.py).

    sparse-lstm-ad daemon start [--idle-minutes 30]
    sparse-lstm-ad daemon status
    sparse-lstm-ad daemon stop

Once started, `python src/train.py ...` and `sparse-lstm-ad train ...` single runs from this
checkout run there, without the seconds of imports a fresh process pays. One daemon per
checkout and user; SPARSE_LSTM_AD_DAEMON=off runs every command in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click

from sparse_lstm_ad.cli.daemon_client import control
from sparse_lstm_ad.cli.daemon_wire import SWITCH, code_fingerprint, socket_path
from sparse_lstm_ad.cli.subcommand import subcommand

_READY_SECONDS = 300  # its imports take ~5 s alone; on a busy machine far longer


@subcommand("daemon")
@click.argument("action", type=click.Choice(["start", "stop", "status"]))
@click.option(
    "--idle-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="start: stop after this long without a command",
)
def daemon(action: str, idle_minutes: float) -> None:
    """A process with a run's imports done, that runs this checkout's `train` single runs
    (not sweeps) while it lives: seconds off each. Stale code is never run: an edit stops it."""
    path = socket_path()
    if path is None:
        raise ValueError(f"{SWITCH}=off in this environment: commands run in their own process")
    status = control(path, "status")
    if action == "status":
        click.echo(_describe(status, path))
    elif action == "stop":
        click.echo("stopped" if _stopped(path, status) else "no daemon was running")
    elif status is not None and status["code"] == code_fingerprint() and not status["stopping"]:
        click.echo(f"already running: {_describe(status, path)}")
    else:
        _stopped(path, status)  # an older daemon, its code stale
        click.echo(_start(path, idle_minutes * 60))


def _describe(status: dict | None, path: Path) -> str:
    if status is None:
        return f"no daemon is running ({path})"
    state = "stopping" if status["stopping"] else "running a command" if status["busy"] else "idle"
    code = "current" if status["code"] == code_fingerprint() else "stale: it stops at the next run"
    minutes = (time.time() - status["started"]) / 60
    return (
        f"pid {status['pid']}, up {minutes:.0f} min, {status['served']} commands run, {state}, "
        f"code {code}; stops after {status['idle_seconds'] / 60:g} min idle ({path})"
    )


def _stopped(path: Path, status: dict | None) -> bool:
    """Ask the daemon to stop and wait for it (after its running command); False if none."""
    if status is None:
        return False
    control(path, "stop")
    while path.exists() and control(path, "status") is not None:
        time.sleep(0.1)
    return True


def _start(path: Path, idle_seconds: float) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():  # a shared /tmp: someone else's folder
        raise OSError(f"{path.parent} belongs to another user: set {SWITCH} to a socket path")
    log = Path(f"{path}.log")
    started = time.monotonic()
    command = [sys.executable, "-u", "-m", "sparse_lstm_ad.cli.daemon_server"]
    log.unlink(missing_ok=True)  # made private below: command lines and paths go in it
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        process = subprocess.Popen(
            [*command, str(path), str(idle_seconds)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl-C is the client's to pass on
            cwd="/",  # `-m` puts the folder first on sys.path: nothing of the user's shadows
        )
    while (status := control(path, "status")) is None:
        if process.poll() is not None or time.monotonic() - started > _READY_SECONDS:
            process.kill()
            tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
            raise OSError(f"the daemon did not start ({log}): {tail[0]}")
        time.sleep(0.1)
    return (
        f"daemon ready in {time.monotonic() - started:.1f} s (pid {status['pid']}): single runs "
        f"of train from this checkout run there; stops after {idle_seconds / 60:g} min idle "
        "or with `sparse-lstm-ad daemon stop`"
    )
