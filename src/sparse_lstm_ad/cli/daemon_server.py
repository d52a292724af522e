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
import importlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


class Daemon:
    def __init__(self, path: Path, idle_seconds: float, code: str, env: dict[str, str]) -> None:
        self.path, self.idle_seconds, self.code, self.env = path, idle_seconds, code, env
        # What the imports set for themselves (TF_XLA_FLAGS, TF_CPP_MIN_LOG_LEVEL), as a
        # client's own process would have set it: under each client's environment.
        self.own_env = {key: value for key, value in os.environ.items() if env.get(key) != value}
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.lock = threading.Lock()
        self.busy = self.running = self.stopping = False
        self.started, self.served = time.time(), 0

    def serve(self) -> None:
        """Run the commands handed over, until stopped, stale or idle for idle_seconds."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path.unlink(missing_ok=True)  # a socket file left by a daemon that was killed
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)  # this user's commands only
        listener.listen()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        print(f"ready: pid {os.getpid()}, {self.path}", flush=True)
        try:
            while (job := self.jobs.get(timeout=self.idle_seconds)) is not None:
                self._run(job)
        except queue.Empty:
            print(f"idle for {self.idle_seconds:.0f} s: stopping", flush=True)
        finally:
            listener.close()
            self.path.unlink(missing_ok=True)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener closed: the daemon is stopping
                return
            connection.settimeout(_REQUEST_SECONDS)
            try:
                channel, request, fds = receive_request(connection)
            except (OSError, ValueError):
                connection.close()
                continue
            connection.settimeout(None)
            if "control" in request:
                self._control(channel, request["control"])
            elif (reason := self._refusal(request, fds)) is not None:
                for fd in fds:
                    os.close(fd)
                with channel:
                    channel.send({"declined": reason, "say": reason != BUSY})
            else:
                self.jobs.put(Job(channel, request, fds))

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

    def _control(self, channel: Channel, action: str) -> None:
        with channel, self.lock:
            if action == "stop":
                self._stop()
            channel.send(
                {
                    "pid": os.getpid(),
                    "started": self.started,
                    "served": self.served,
                    "busy": self.busy,
                    "stopping": self.stopping,
                    "idle_seconds": self.idle_seconds,
                    "code": self.code,
                }
            )

    def _stop(self) -> None:
        """Stop once the running command, if any, has ended (the lock is held)."""
        if not self.stopping:
            self.stopping = True
            self.jobs.put(None)

    def _run(self, job: Job) -> None:
        started, code = time.time(), 1
        watcher = threading.Thread(target=self._pass_signals, args=(job.channel,), daemon=True)
        try:
            job.channel.send({"accepted": True})
            watcher.start()
            code = run_command(job.request, job.fds, self.own_env, self._running)
        except KeyboardInterrupt:  # a signal passed on just as the command ended
            code = 128 + signal.SIGINT
        except OSError as error:  # the client went away
            print(f"client lost: {error}", flush=True)
        finally:
            with contextlib.suppress(OSError), job.channel:
                job.channel.send({"exit": code})
            with self.lock:
                self.busy, self.served = False, self.served + 1
        print(f"ran {job.request['argv'][1:]}: exit {code} in {time.time() - started:.1f} s")

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """While the command runs, signals the client passes on are raised here."""
        with self.lock:
            self.running = True
        try:
            yield
        finally:
            with self.lock:
                self.running = False

    def _pass_signals(self, channel: Channel) -> None:
        """Raise in this process the signals the client passes on; SIGTERM if the client is
        gone (killed, or its terminal closed) while its command runs."""
        with contextlib.suppress(OSError, ValueError):
            while (message := channel.receive()) is not None:
                self._raise(int(message.get("signal", signal.SIGINT)))
        self._raise(signal.SIGTERM)

    def _raise(self, signum: int) -> None:
        with self.lock:
            if self.running:  # the command's own handler (cli.train) takes it
                os.kill(os.getpid(), signum)


def run_command(
    request: dict[str, Any],
    fds: list[int],
    own_env: dict[str, str],
    running: Callable[[], contextlib.AbstractContextManager],
) -> int:
    """`cli()` of cli/train.py on the request, as in the client's process: its exit code.

    What this process keeps between commands and a fresh one would not have is set back
    first: the interrupts seen, the stores opened (tracking.forget_stores), the warnings
    already shown. The graphs traced for earlier runs stay (graph_cache): a joblib worker
    keeps them between its jobs alike, and they give the same numbers."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.cli import train

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    train.forget_interrupts()
    tracking.forget_stores()
    with (
        _terminal(fds),
        _process_state(request, own_env),
        _own_logging(),
        warnings.catch_warnings(),
        running(),
    ):
        try:
            train.cli()
            return 0
        except SystemExit as stop:
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
            return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except Exception:  # what a crash of the client's own process would print
            traceback.print_exc()
            return 1
        finally:
            train._label_job("")
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


@contextlib.contextmanager
def _terminal(fds: list[int]) -> Iterator[None]:
    """Descriptors 1 and 2 are the client's for a while: its terminal, pipe or file."""
    sys.stdout.flush(), sys.stderr.flush()
    kept = [os.dup(1), os.dup(2)]
    try:
        os.dup2(fds[0], 1), os.dup2(fds[1], 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):  # a client gone: its pipe is closed
            sys.stdout.flush(), sys.stderr.flush()
        os.dup2(kept[0], 1), os.dup2(kept[1], 2)
        for fd in (*kept, *fds):
            os.close(fd)


@contextlib.contextmanager
def _own_logging() -> Iterator[None]:
    """The command's log handlers (Hydra's: the console, the run's train.log) go with it, as
    with a process's exit: a later command's first lines must not land in this one's log."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


@contextlib.contextmanager
def _process_state(request: dict[str, Any], own_env: dict[str, str]) -> Iterator[None]:
    """The client's arguments, folder, environment (over `own_env`) and file mode mask, put
    back afterwards."""
    argv, folder, environ = sys.argv, os.getcwd(), dict(os.environ)
    umask = os.umask(int(request.get("umask", 0o022)))  # the files it makes: the client's modes
    try:
        sys.argv = list(request["argv"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({**own_env, **request["env"]})
        yield
    finally:
        sys.argv = argv
        os.umask(umask)
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environ)


def warm_up() -> None:
    """Load what a run loads: the CLI, MLflow, pandas, scikit-learn, matplotlib and every
    detector family's fitting libraries (TensorFlow, Keras), XLA's cache set as a job sets it."""
    from sparse_lstm_ad.cli.compile_cache import use_compile_cache
    from sparse_lstm_ad.cli.warm_workers import import_job_modules
    from sparse_lstm_ad.detectors.registry import families

    importlib.import_module("sparse_lstm_ad.cli.train")  # quiets TensorFlow's import
    use_compile_cache()
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
