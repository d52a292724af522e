"""One `train` command in the daemon, run as the client's own process would run it.

The daemon's main thread runs `cli()` of cli/train.py with the client's arguments, folder,
environment and file mode mask, writing to the client's stdout and stderr (descriptors 1 and
2 are the client's for the while). What this process keeps between commands and a fresh one
would not have is set back before and after: the interrupts seen, the stores opened
(tracking.forget_stores), the warnings already shown, every logger's level and handlers. The
graphs traced for earlier runs stay (graph_cache): a joblib worker keeps them between its
jobs alike, and they give the same numbers (tests/test_daemon.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any


class Interrupted(Exception):
    """A signal the client passed on before its command could catch one."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def run_command(
    request: dict[str, Any],
    fds: list[int],
    own_env: dict[str, str],
    running: Callable[[], contextlib.AbstractContextManager],
) -> int:
    """`cli()` on the request: its exit code. Signals the client passes on are raised in
    this process while `running` is entered; the command's own handlers take them."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.cli import train

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    train.forget_interrupts()
    tracking.forget_stores()
    try:
        with (
            _terminal(fds),
            _process_state(request, own_env),
            _own_logging(),
            warnings.catch_warnings(),
        ):
            train.catch_interrupts()  # before `running`: a signal passed on is the command's
            return _exit_code(running, train.cli)
    finally:
        for signum, handler in handlers.items():  # after `running`: no signal raised here now
            signal.signal(signum, handler)
        train._label_job("")
        tracking.forget_stores()  # no store held open while idle


def _exit_code(running: Callable[[], contextlib.AbstractContextManager], cli: Callable) -> int:
    try:
        with running():
            cli()
        return 0
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except (Interrupted, KeyboardInterrupt) as early:  # before cli() could catch it
        signum = early.signum if isinstance(early, Interrupted) else signal.SIGINT
        print(f"interrupted by {signal.Signals(signum).name}: no run had started", file=sys.stderr)
        return 128 + signum
    except Exception:  # what a crash of the client's own process would print
        traceback.print_exc()
        return 1


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


@contextlib.contextmanager
def _own_logging() -> Iterator[None]:
    """Every logger as it was before the command (Hydra sets levels, `hydra.verbose` too, and
    adds the console and the run's train.log), as with a process's exit: a later command's
    lines must not land in this one's log, nor follow its levels."""
    manager = logging.root.manager
    kept = {
        name: (logger.level, logger.disabled, logger.propagate, list(logger.handlers))
        for name, logger in [("", logging.root), *manager.loggerDict.items()]
        if isinstance(logger, logging.Logger)
    }
    try:
        yield
    finally:
        for name, logger in [("", logging.root), *manager.loggerDict.items()]:
            if not isinstance(logger, logging.Logger):
                continue
            level, disabled, propagate, handlers = kept.get(name, (logging.NOTSET, False, True, []))
            for handler in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(handler)
                handler.close()
            logger.setLevel(level)
            logger.disabled, logger.propagate = disabled, propagate
