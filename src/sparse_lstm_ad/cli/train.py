"""The Hydra application behind `python src/train.py` and `sparse-lstm-ad train`.

Composes conf/ (checked against the schemas in sparse_lstm_ad.config), hands the config to the
pipeline, and returns the validation reconstruction MSE: an objective a sweeper can minimise
without ever seeing test labels. A mistake is one line and exit 2; Ctrl-C or SIGTERM ends the
run and the sweep's parent KILLED.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sparse_lstm_ad.cli.checkout import CONF
from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.cli.quiet import exit_quickly, quiet_tensorflow_import
from sparse_lstm_ad.cli.train_job import (
    earlier_run,
    job_info,
    launcher_threads,
    multirun,
    note_failure,
    one_at_a_time,
)
from sparse_lstm_ad.config import OBJECTIVE
from sparse_lstm_ad.config_checks import ConfigError, checked_config

# Quiets TensorFlow's C++ logging (TF_CPP_MIN_LOG_LEVEL=0 shows it all), its ERROR lines
# too, as the other commands do (cli.quiet): each load from the XLA cache (cli.compile_cache)
# logs three harmless ones (a text-format parse tried before the binary one, two CPU tuning
# flags). Errors that matter still raise in Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
quiet_tensorflow_import()
log = logging.getLogger("train")

register_configs()


def _user_errors() -> tuple[type[BaseException], ...]:
    """Mistakes in the input (config, data, store): one line, no traceback."""
    from sparse_lstm_ad.fitting import TrainingDiverged
    from sparse_lstm_ad.tracking import StoreError

    return (ConfigError, StoreError, ValueError, FileNotFoundError, TrainingDiverged)


_SIGNALS: list[int] = []  # the interrupting signal, once one came


def _on_interrupt(signum: int, frame: Any) -> None:
    """The first Ctrl-C or SIGTERM ends the run KILLED on its way out; a second one, at once."""
    if _SIGNALS:
        os.write(2, b"interrupted again: exiting now; the next command closes the open runs\n")
        os._exit(128 + _SIGNALS[0])
    _SIGNALS.append(signum)
    raise KeyboardInterrupt


def forget_interrupts() -> None:
    """For a process that runs one command after another (cli/daemon_server.py): the next
    command's first interrupt is its first, and no run of an earlier command is its own."""
    _SIGNALS.clear()
    if (tracking := sys.modules.get("sparse_lstm_ad.tracking")) is not None:
        tracking.INTERRUPTED.clear()


def catch_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_interrupt)


def run_job(cfg: DictConfig) -> float:
    config = checked_config(cfg)
    if config.threads == 0 and (threads := launcher_threads()):
        config = replace(config, threads=threads)  # jobs run side by side: no oversubscription
    job = job_info(config)
    with one_at_a_time(job):
        done = earlier_run(config, job)
        if done is not None:
            return float(done.metrics.get(OBJECTIVE, float("nan")))
        from sparse_lstm_ad.cli.compile_cache import use_compile_cache
        from sparse_lstm_ad.pipeline import run_experiment

        use_compile_cache()  # before TensorFlow starts (read only if a network job starts it)
        # NaN for a detector without a reconstruction (iforest): nothing for a sweeper to
        # minimise.
        return run_experiment(config, job).metrics.get(OBJECTIVE, float("nan"))


def _label_job(label: str) -> None:
    """Prefix every log line of this process with `label` ("[job 3] "): under joblib or Ray
    the workers' lines interleave in one terminal. Installed in whichever process runs the
    job (a launcher's worker gets this function, not this module's import-time code)."""
    factory: Any = logging.getLogRecordFactory()
    if not hasattr(factory, "job_label"):
        plain = factory

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = plain(*args, **kwargs)
            if factory.job_label and isinstance(record.msg, str):
                record.msg = factory.job_label + record.msg
            return record

        logging.setLogRecordFactory(factory)
    factory.job_label = label


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> float:
    catch_interrupts()  # again: a launcher's worker process runs jobs here, not through cli()
    exit_quickly()  # in whichever process runs the job: this one, or a launcher's worker
    quiet_tensorflow_import()  # a worker unpickles this function, not this module's top
    _label_job(f"[job {HydraConfig.get().job.num}] " if multirun() else "")
    try:
        return run_job(cfg)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        user_error = isinstance(error, _user_errors())
        # The run, if one started, is already FAILED with the reason recorded on it.
        log.error(
            "%s%s",
            "" if user_error else f"{type(error).__name__}: ",
            error,
            exc_info=not user_error,
        )
        if multirun():
            note_failure(cfg, error)
            return float("nan")  # the other jobs go on; the sweep's end reports the failure
        raise SystemExit(2 if user_error else 1) from None
    finally:
        _label_job("")  # the launcher's own lines between jobs are no job's


def cli() -> None:
    """Check the whole command, then let Hydra run it; a mistake or an interrupt is one line."""
    from sparse_lstm_ad.cli.launch_checks import UsageError

    catch_interrupts()
    exit_quickly()
    _report_crashes()
    try:
        try:
            _check(sys.argv[1:])
        except UsageError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise  # the whole story, Hydra's own error included as the cause
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        main()
    except KeyboardInterrupt as interrupt:
        signum = _SIGNALS[0] if _SIGNALS else signal.SIGINT
        print(_interrupted(signum, interrupt), file=sys.stderr)
        for late in (signal.SIGINT, signal.SIGTERM):  # all is closed: keep the exit code
            signal.signal(late, signal.SIG_IGN)
        raise SystemExit(128 + signum) from None


def _report_crashes() -> None:
    """A crash in native code (TensorFlow: seen, rarely and only under load, at the end of an
    interrupted sweep) prints where every thread was, not only "Segmentation fault"."""
    if faulthandler.is_enabled():  # pytest's own, in an in-process test
        return
    with contextlib.suppress(io.UnsupportedOperation, ValueError):  # stderr is not a file
        faulthandler.enable()


def _check(argv: list[str]) -> None:
    """Check the command; a joblib sweep's workers import meanwhile (cli.warm_workers). A
    basic sweep then goes to the sweeper that does not compose its jobs again."""
    from sparse_lstm_ad.cli.launch_checks import check_inputs, composed_command, sweeper_choice
    from sparse_lstm_ad.cli.warm_workers import start_warmup

    if (command := composed_command(argv, CONF)) is None:
        return
    warmup = start_warmup(command.launcher, command.fit_imports)
    try:
        check_inputs(command)
    except BaseException:
        if warmup is not None:
            warmup.cancel()
        raise
    sys.argv += sweeper_choice(command, argv)  # read by Hydra's main, next


def _interrupted(signum: int, interrupt: KeyboardInterrupt) -> str:
    """What the interrupt ended: the job's run and the sweep's parent, both closed KILLED."""
    name = signal.Signals(signum).name
    tracking = sys.modules.get("sparse_lstm_ad.tracking")
    if tracking:  # it may have landed in a write to the store outside any run (a sweep's)
        tracking.free_interrupted_write(interrupt)
    runs = list(tracking.INTERRUPTED) if tracking else []
    # Runs of jobs in launcher workers (joblib) are ended by the workers, not listed here.
    ended = [f"run {runs[-1]} ended KILLED"] if runs else []
    if "sparse_lstm_ad.cli.hydra_callbacks" in sys.modules:
        from sparse_lstm_ad.cli.hydra_callbacks import abandon_open_sweep

        if parent := abandon_open_sweep(f"the multirun was interrupted ({name})"):
            ended.append(parent)
    return f"interrupted by {name}: {'; '.join(ended) or 'no run had started'}"
