"""A `train` command handed to the daemon when one is ready for it (cli/daemon_server.py).

`src/train.py` and `sparse-lstm-ad train` ask here first. The daemon runs the command as this
process would, with this process's arguments, folder and environment, writing straight to its
terminal; Ctrl-C and SIGTERM are passed on, and its exit code is this process's. Whenever the
daemon cannot run it exactly as this process would (none is started, it is busy, its code or
an import-time variable differs, a multirun, a thread count) the command runs here, as always.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from sparse_lstm_ad.cli.daemon_wire import Channel, code_fingerprint, send_request, socket_path

# A multirun starts its own launcher and workers; a thread count is fixed once per process.
_NOT_SERVED_FLAGS = ("-m", "--multirun")
_NOT_SERVED_KEYS = ("threads", "hydra.mode")


def served(argv: list[str]) -> int | None:
    """Run `argv` (sys.argv) on the daemon: its exit code, or None where it runs here."""
    path = socket_path()
    if path is None or not path.exists() or not _servable(argv[1:]):
        return None
    connection = connect(path)
    if connection is None:
        print(
            f"note: no daemon answers at {path} (it was killed); running in this process "
            "(`sparse-lstm-ad daemon start` starts one)",
            file=sys.stderr,
        )
        return None
    umask = os.umask(0o022)  # read only by setting it: put back at once
    os.umask(umask)
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}
    request["code"] = code_fingerprint()
    with contextlib.closing(connection), send_request(connection, request, [1, 2]) as channel:
        reply = channel.receive() or {"declined": "the daemon closed the connection"}
        if "declined" in reply:
            if reply.get("say", True):
                print(f"note: {reply['declined']}; running in this process", file=sys.stderr)
            return None
        return _wait_for_exit(channel, path)


def _servable(args: list[str]) -> bool:
    keys = {arg.split("=", 1)[0].lstrip("+~") for arg in args if "=" in arg}
    return not (set(args) & set(_NOT_SERVED_FLAGS) or keys & set(_NOT_SERVED_KEYS))


def connect(path: Path) -> socket.socket | None:
    """A connection to the daemon at `path`; None if none listens there, or the socket is
    another user's (this process's environment and terminal go to whoever listens)."""
    try:
        mine = path.stat().st_uid == os.getuid()
    except OSError:  # no socket there
        return None
    if not mine or not hasattr(socket, "send_fds"):  # no descriptor passing on this platform
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:  # a socket file left by a daemon that was killed
        connection.close()
        return None
    return connection


def _wait_for_exit(channel: Channel, path: Path) -> int:
    """Pass signals on until the daemon says how the run ended."""
    forwarded: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        forwarded.append(signum)
        channel.send({"signal": signum})

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    while (message := channel.receive()) is not None:
        if "exit" in message:
            return int(message["exit"])
    if forwarded:  # a second interrupt ends the run's process at once: here, the daemon
        return 128 + forwarded[0]
    print(f"error: the daemon ended during the run (its log: {path}.log)", file=sys.stderr)
    return 1


def control(path: Path, action: str) -> dict[str, Any] | None:
    """Ask the daemon at `path` for its `status`, or to `stop`; None if none answers."""
    connection = connect(path)
    if connection is None:
        return None
    with (
        contextlib.closing(connection),
        send_request(connection, {"control": action}, []) as channel,
    ):
        return channel.receive()
