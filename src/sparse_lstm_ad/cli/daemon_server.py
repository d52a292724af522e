"""The `train` daemon: a process that has loaded what a run needs, once, and then runs the
`train` commands its clients hand it (cli/daemon_client.py), one at a time.

A fresh process spends ~4 s importing Hydra, MLflow, pandas, TensorFlow and Keras and ~1.5 s
tracing its first epoch, where the epochs of a seed run take ~3 s (experiments/benchmark). Here
those imports are paid when the daemon starts, and graphs traced for one run serve the next run
of the same shapes (graph_cache), as they do for a joblib worker's jobs.

Each command runs in this process's main thread exactly as `cli()` runs it in the client's
own: with the client's arguments, folder and environment, writing to the client's stdout and
stderr (their descriptors come over the socket), Ctrl-C and SIGTERM passed on by the client,
its exit code sent back. What cannot be made the same is refused, and the client runs the
command itself: another command is running; the code on disk or an import-time variable
differs from the daemon's start (cli/daemon_wire.py; the daemon then stops, its code stale).

    python -m sparse_lstm_ad.cli.daemon_server SOCKET IDLE_SECONDS   # `sparse-lstm-ad daemon start`
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparse_lstm_ad.cli.daemon_job import Interrupted, run_command
from sparse_lstm_ad.cli.daemon_wire import (
    Channel,
    code_fingerprint,
    env_differences,
    receive_request,
)

BUSY = "the daemon is running another command"
_REQUEST_SECONDS = 10  # a client that connects and says nothing is dropped after this


@dataclass
class Job:
    channel: Channel
    request: dict[str, Any]
    fds: list[int]  # the client's stdout and stderr
    running: bool = False  # in cli(): a signal passed on is raised at once
    ended: bool = False  # a signal passed on now is no command's
    pending: int | None = None  # passed on before the command ran
    watcher: threading.Thread | None = None  # reads the signals the client passes on


class Daemon:
    def __init__(self, path: Path, idle_seconds: float, code: str, env: dict[str, str]) -> None:
        self.path, self.idle_seconds, self.code, self.env = path, idle_seconds, code, env
        # What the imports set for themselves (TF_XLA_FLAGS, TF_CPP_MIN_LOG_LEVEL), as a
        # client's own process would have set it: under each client's environment.
        self.own_env = {key: value for key, value in os.environ.items() if env.get(key) != value}
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.lock = threading.Lock()
        self.busy = self.stopping = False
        self.started, self.served = time.time(), 0

    def serve(self) -> None:
        """Run the commands handed over, until stopped, stale or idle for idle_seconds."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path.unlink(missing_ok=True)  # a socket file left by a daemon that was killed
        mask = os.umask(0o177)  # the socket is born 0600: this user's commands only
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(mask)
        listener.listen()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        print(f"ready: pid {os.getpid()}, {self.path}", flush=True)
        try:
            while (job := self._next_job()) is not None:
                self._run(job)
        finally:
            listener.close()
            self.path.unlink(missing_ok=True)

    def _next_job(self) -> Job | None:
        """The next command; None to stop (asked, stale, or idle for idle_seconds)."""
        while True:
            try:
                return self.jobs.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self.lock:
                    if self.busy:  # a command was taken as the wait ran out: run it first
                        continue
                    self.stopping = True
                print(f"idle for {self.idle_seconds:.0f} s: stopping", flush=True)
                return None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener closed: the daemon is stopping
                return
            try:
                self._answer(connection)
            except Exception as error:  # a client gone mid-request: the next one is served
                print(f"request dropped: {error!r}", flush=True)
                connection.close()

    def _answer(self, connection: socket.socket) -> None:
        if not _same_user(connection):
            connection.close()
            return
        connection.settimeout(_REQUEST_SECONDS)
        channel, request, fds = receive_request(connection)
        connection.settimeout(None)
        if "control" in request:
            with channel:
                channel.send(self._control(request["control"]))
        elif (reason := self._refusal(request, fds)) is not None:
            for fd in fds:
                os.close(fd)
            with channel:
                channel.send({"declined": reason, "say": reason != BUSY})
        else:
            job = Job(channel, request, fds)
            job.watcher = threading.Thread(target=self._pass_signals, args=(job,), daemon=True)
            job.watcher.start()
            # Queued first: a client that is gone by now is seen by its watcher, and its
            # command ends at once (SIGTERM before it runs), leaving the daemon free.
            self.jobs.put(job)
            channel.send({"accepted": True, "pid": os.getpid()})

    def _refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this daemon cannot run the request as the client would; None: it takes it."""
        with self.lock:
            if self.busy or self.stopping:
                return BUSY
            if request.get("code") != self.code:
                self._stop()
                return "the daemon's code is older than this checkout's: it stops"
            if differ := env_differences(request.get("env", {}), self.env):
                return f"the daemon started with another {', '.join(differ)}"
            if len(fds) != 2:
                return "the client sent no terminal"
            self.busy = True
            return None

    def _control(self, action: str) -> dict[str, Any]:
        with self.lock:
            if action == "stop":
                self._stop()
            return {
                "pid": os.getpid(),
                "started": self.started,
                "served": self.served,
                "busy": self.busy,
                "stopping": self.stopping,
                "idle_seconds": self.idle_seconds,
                "code": self.code,
            }

    def _stop(self) -> None:
        """Stop once the running command, if any, has ended (the lock is held)."""
        if not self.stopping:
            self.stopping = True
            self.jobs.put(None)

    def _run(self, job: Job) -> None:
        started, code = time.time(), 1
        try:
            code = run_command(job.request, job.fds, self.own_env, lambda: self._running(job))
        except KeyboardInterrupt:  # a signal passed on just as the command ended
            code = 128 + signal.SIGINT
        finally:
            with self.lock:  # free before the client hears: its next command is taken
                job.ended, self.busy, self.served = True, False, self.served + 1
            with contextlib.suppress(OSError):
                job.channel.send({"exit": code})
                job.channel.connection.shutdown(socket.SHUT_RDWR)  # ends the signal reader
            if job.watcher is not None:
                job.watcher.join(timeout=5)
            job.channel.close()
        print(f"ran {job.request['argv'][1:]}: exit {code} in {time.time() - started:.1f} s")

    @contextlib.contextmanager
    def _running(self, job: Job) -> Iterator[None]:
        """While the command runs, signals the client passes on are raised in this process."""
        with self.lock:
            job.running, pending = True, job.pending
        try:
            if pending is not None:
                raise Interrupted(pending)
            yield
        finally:
            with self.lock:
                job.running, job.ended = False, True

    def _pass_signals(self, job: Job) -> None:
        """Raise in this process the signals the client passes on; SIGTERM if the client is
        gone (killed, or its terminal closed) before its command ended."""
        with contextlib.suppress(OSError, ValueError):
            while (message := job.channel.receive()) is not None:
                self._raise(job, int(message.get("signal", signal.SIGINT)))
        self._raise(job, signal.SIGTERM)

    def _raise(self, job: Job, signum: int) -> None:
        with self.lock:
            if job.ended:
                return
            if job.running:  # the command's own handler (cli.train) takes it
                os.kill(os.getpid(), signum)
            elif job.pending is None:
                job.pending = signum


def _same_user(connection: socket.socket) -> bool:
    """The peer runs as this user (Linux tells; the socket's mode guards elsewhere)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return struct.unpack("3i", credentials)[1] == os.getuid()


def warm_up() -> None:
    """Load what a run loads: the CLI, MLflow, pandas, scikit-learn, matplotlib and every
    detector family's fitting libraries (TensorFlow, Keras), XLA's cache set as a job sets it."""
    from sparse_lstm_ad.cli.warm_workers import import_job_modules
    from sparse_lstm_ad.detectors.registry import families

    import_job_modules(tuple(sorted({m for f in families().values() for m in f.fit_imports})))


def _stop_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # the socket file is removed on the way out


def main(argv: list[str]) -> None:
    path, idle_seconds = Path(argv[0]), float(argv[1])
    code, env = code_fingerprint(), dict(os.environ)  # what the daemon starts from
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_on_signal)
    warm_up()
    Daemon(path, idle_seconds, code, env).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
