"""What the `train` daemon and its clients share: where the socket is, what must match for a
job to run there, and the messages on the socket. Standard library only: a client reads this
before anything heavy loads, so that a served run pays no import it does not need.

The wire: a Unix socket; the client sends one byte carrying its stdout and stderr (SCM_RIGHTS)
then one JSON line, its request; every later message either way is one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

SWITCH = "SPARSE_LSTM_AD_DAEMON"  # "off", or the socket's path instead of the default one
PACKAGE = Path(__file__).resolve().parents[1]

# Read by a library when it first loads, so fixed for the daemon's life: a client whose value
# differs runs in its own process. TF_CPP_MIN_LOG_LEVEL counts as train.py's default, "3",
# where unset.
IMPORT_TIME_PREFIXES = (
    *("TF_", "XLA_", "CUDA_", "KERAS_", "OMP_", "MKL_", "LD_", "PYTHON", "SPARSE_LSTM_AD_"),
    *("OPENBLAS_", "NUMEXPR_", "KMP_", "MPL"),  # thread pools; matplotlib's backend, folder
    "LC_",  # with LANG: the encoding Python gives stdout and stderr at its start
)
# The caches' folder (XLA's is set once); the time zone of log lines (read by `time` at
# import); the temporary folder (`tempfile` keeps the first it finds).
IMPORT_TIME_NAMES = ("HOME", "XDG_CACHE_HOME", "LANG", "TZ", "TMPDIR")
NOT_IMPORT_TIME = ("PYTHONUNBUFFERED", SWITCH)


def socket_path(env: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """The daemon's socket for this checkout and user; None when SPARSE_LSTM_AD_DAEMON=off."""
    chosen = env.get(SWITCH, "")
    if chosen.lower() in ("off", "0", "false"):
        return None
    if chosen:
        return Path(chosen)
    runtime = env.get("XDG_RUNTIME_DIR") or f"/tmp/sparse-lstm-ad-{os.getuid()}"
    checkout = hashlib.sha256(str(PACKAGE).encode()).hexdigest()[:12]
    return Path(runtime) / f"sparse-lstm-ad-train-{checkout}.sock"


def code_fingerprint(package: Path = PACKAGE) -> str:
    """The interpreter (its environment and version), this package's files and the
    installed distributions: what a process loaded at its start. Sizes and mtimes, not
    contents: an edit changes them."""
    digest = hashlib.sha256(f"{sys.prefix}\n{sys.version}\n".encode())
    for file in sorted(package.rglob("*.py")):
        stat = file.stat()
        digest.update(f"{file.relative_to(package)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    for folder in sorted({p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}):
        try:
            digest.update("\n".join(sorted(os.listdir(folder))).encode())  # name-version.dist-info
        except OSError:
            continue
    return digest.hexdigest()


def import_time_env(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The variables of `env` that libraries read once, as they load."""
    chosen = {
        key: value
        for key, value in env.items()
        if (key.startswith(IMPORT_TIME_PREFIXES) or key in IMPORT_TIME_NAMES)
        and key not in NOT_IMPORT_TIME
    }
    chosen.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return chosen


def env_differences(client: dict[str, str], daemon: dict[str, str]) -> list[str]:
    """The import-time variables set differently in the two environments, by name."""
    mine, theirs = import_time_env(client), import_time_env(daemon)
    return sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))


class Channel:
    """JSON lines over a connected socket, read through one buffer (a second reader would
    lose what the first had read ahead)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self._reader = connection.makefile("rb")

    def send(self, message: dict[str, Any]) -> None:
        self.connection.sendall(json.dumps(message).encode() + b"\n")

    def receive(self) -> dict[str, Any] | None:
        """The next message; None once the other side has closed."""
        line = self._reader.readline()
        return json.loads(line) if line else None

    def close(self) -> None:
        self._reader.close()  # the socket's descriptor closes with its last reader
        self.connection.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_request(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> Channel:
    """Send the request: a byte that carries `fds`, then the message."""
    socket.send_fds(connection, [b"R"], fds)
    channel = Channel(connection)
    channel.send(request)
    return channel


def receive_request(connection: socket.socket) -> tuple[Channel, dict[str, Any], list[int]]:
    """The request and the descriptors that came with it (the caller closes them). The byte
    that carries them is read first: a plain read of it would drop them."""
    _, fds, _, _ = socket.recv_fds(connection, 1, 2)
    channel = Channel(connection)
    request = channel.receive()
    if request is None:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("the client closed the connection before its request")
    return channel, request, fds
