"""A `train` command handed to the daemon when one is ready for it (cli/daemon_server.py).

`src/train.py` and `sparse-lstm-ad train` ask here first. The daemon runs the command as this
process would, with this process's arguments, folder and environment, writing straight to its
terminal; Ctrl-C and SIGTERM are passed on, and its exit code is this process's. Whenever the
daemon cannot run it exactly as this process would (none is started, it is busy, its code or
an import-time variable differs, a multirun, a thread count) the command runs here, as always.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from sparse_lstm_ad.cli.daemon_wire import Channel, code_fingerprint, send_request, socket_path
from sparse_lstm_ad.cli.override_keys import override_key

# A multirun starts its own launcher and workers; a thread count is fixed once per process.
_NOT_SERVED_FLAGS = ("-m", "--multirun")
# train.deterministic=false: TensorFlow's op determinism, once on in a process, stays on.
_NOT_SERVED_KEYS = ("threads", "hydra.mode", "train.deterministic")
_ANSWER_SECONDS = 30  # the daemon answers at once, busy or not


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
    with contextlib.closing(connection), _Forwarding(connection) as forwarding:
        channel = send_request(connection, _request(argv), [1, 2])
        forwarding.pass_on()
        reply = _answer(channel)
        if "declined" not in reply:
            forwarding.daemon_pid = int(reply["pid"])
            return _wait_for_exit(channel, path, forwarding)
        if forwarding.signals:  # interrupted before anything ran
            name = signal.Signals(forwarding.signals[0]).name
            print(f"interrupted by {name}: no run had started", file=sys.stderr)
            return 128 + forwarding.signals[0]
        if reply.get("say", True):
            print(f"note: {reply['declined']}; running in this process", file=sys.stderr)
        return None


def _request(argv: list[str]) -> dict[str, Any]:
    """What the daemon needs to run the command as this process would."""
    umask = os.umask(0o022)  # read only by setting it: put back at once
    os.umask(umask)
    environment = {"cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}
    return {"argv": argv, **environment, "code": code_fingerprint()}


def _answer(channel: Channel) -> dict[str, Any]:
    """The daemon's first answer: accepted (with its pid) or declined (with why)."""
    channel.connection.settimeout(_ANSWER_SECONDS)
    try:
        return channel.receive() or {"declined": "the daemon closed the connection"}
    except OSError as error:  # TimeoutError included: a daemon stopped (Ctrl-Z) or stuck
        return {"declined": f"the daemon did not answer ({error or 'timed out'})"}
    finally:
        channel.connection.settimeout(None)


def _servable(args: list[str]) -> bool:
    keys = {override_key(arg) for arg in args if "=" in arg}
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


def _wait_for_exit(channel: Channel, path: Path, forwarding: _Forwarding) -> int:
    """The command's exit code, once the daemon says how it ended."""
    with contextlib.suppress(OSError):  # a daemon that ended at a second interrupt
        while (message := channel.receive()) is not None:
            if "exit" in message:
                return int(message["exit"])
    if forwarding.signals:  # a second interrupt ends the command's process at once: the daemon
        return 128 + forwarding.signals[0]
    print(f"error: the daemon ended during the run (its log: {path}.log)", file=sys.stderr)
    return 1


class _Forwarding:
    """While the command is the daemon's: Ctrl-C, SIGTERM and SIGHUP (as SIGTERM: the daemon
    outlives the terminal) are passed on; Ctrl-Z stops the daemon with this process, and `fg`
    continues both."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.signals: list[int] = []
        self.daemon_pid: int | None = None
        self.kept: dict[int, Any] = {}
        self.passed = 0  # of the signals; none before the request is sent (pass_on)
        self.request_sent = False

    def __enter__(self) -> _Forwarding:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP):
            self.kept[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.kept.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTSTP:
            self._suspend()
            return
        self.signals.append(signal.SIGTERM if signum == signal.SIGHUP else signum)
        if self.request_sent:
            self.pass_on()

    def pass_on(self) -> None:
        """Send the signals not yet sent: once the request is (never inside its bytes)."""
        self.request_sent = True
        with contextlib.suppress(OSError):  # the daemon is gone: its end is reported anyway
            while self.passed < len(self.signals):
                message = {"signal": self.signals[self.passed]}
                self.passed += 1
                self.connection.sendall(json.dumps(message).encode() + b"\n")

    def _suspend(self) -> None:
        self._signal_daemon(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until continued (`fg`, SIGCONT)
        signal.signal(signal.SIGTSTP, self._on_signal)
        self._signal_daemon(signal.SIGCONT)

    def _signal_daemon(self, signum: int) -> None:
        if self.daemon_pid is not None:
            with contextlib.suppress(OSError):  # it ended meanwhile
                os.kill(self.daemon_pid, signum)


def control(path: Path, action: str) -> dict[str, Any] | None:
    """Ask the daemon at `path` for its `status`, or to `stop`; None if none answers."""
    connection = connect(path)
    if connection is None:
        return None
    connection.settimeout(_ANSWER_SECONDS)
    try:
        with (
            contextlib.closing(connection),
            send_request(connection, {"control": action}, []) as channel,
        ):
            return channel.receive()
    except OSError:  # it stopped as it was asked, or is stopped (Ctrl-Z on its client)
        return None
