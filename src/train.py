"""The entry point: `python src/train.py [-m] [group=option ...] [key=value ...]`.

Composes conf/ (checked against the schemas in sparse_lstm_ad.config), hands the config to the
pipeline, and returns the validation reconstruction MSE: an objective a sweeper can minimise
without ever seeing test labels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[1] / "conf"
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    # Answered before Hydra, OmegaConf and NumPy load: the help is read off conf/ alone.
    from sparse_lstm_ad.cli.train_help import train_help

    print(train_help(CONF))
    raise SystemExit(0)

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.cli.quiet import quiet_tensorflow_import
from sparse_lstm_ad.config import Config, active_only, config_identity
from sparse_lstm_ad.config_checks import ConfigError, checked_config

# Quiets TensorFlow's C++ info and warnings (TF_CPP_MIN_LOG_LEVEL=0 shows them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
quiet_tensorflow_import()
log = logging.getLogger("train")

register_configs()

_NOT_IN_NAMES = ("tracking.", "hydra.", "hydra/", "rerun=", "threads=")
OBJECTIVE = "val_reconstruction_mse"


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


def _catch_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_interrupt)


def job_info(config: Config) -> Any:
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.data.sources import dataset_name
    from sparse_lstm_ad.pipeline import JobInfo

    hydra_cfg = HydraConfig.get()
    # Where the store is and where Hydra writes say nothing about the experiment.
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith(_NOT_IN_NAMES)]
    choices = {
        group: str(option)
        for group, option in hydra_cfg.runtime.choices.items()
        if not group.startswith("hydra")
    }
    data_name = dataset_name(config.data, choices.get("data"))
    hydra_dir = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
    # From the checked dataclasses, so values set at run time (threads) are what is logged.
    container = active_only(OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True))
    sweep = str(Path(hydra_cfg.sweep.dir)) if _multirun() else ""
    return JobInfo(
        # The name says what differs from the defaults; with none, which model on which data.
        run_name=run_name(overrides, choices["model"], data_name),
        config=container,
        config_files=[hydra_dir / name for name in ("config.yaml", "overrides.yaml")],
        sweep=sweep,
        choices=choices,
        identity=run_identity(config, container),
        parent_run_id=tracking.sweep_parent(config.tracking, sweep) if sweep else None,
    )


def run_name(overrides: list[str], model: str, data: str) -> str:
    """What differs from the defaults, short: a CSV data set by its file's stem, any other
    path by its file name; with no override, which model on which data."""
    shown = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key.startswith("data.csv."):
            continue  # the data set's name below says which files
        if key == "data":
            value = data
        elif "/" in value:
            value = Path(value).name
        shown.append(f"{key}={value}")
    named = any(o.startswith("data=") for o in overrides)
    if not named and any(o.startswith("data.csv.") for o in overrides):
        shown.append(f"data={data}")
    return " ".join(shown) or f"model={model} data={data}"


def run_identity(config: Config, container: dict) -> str:
    """What a run computes: its config, the contents of its input files, the code's version.

    A job counts as done when a FINISHED run has this hash: a changed CSV runs it again.
    """
    from importlib.metadata import version

    from sparse_lstm_ad.config import DataSource
    from sparse_lstm_ad.data.csv_files import input_fingerprint

    inputs = input_fingerprint(config.data.csv) if config.data.source == DataSource.csv else {}
    parts = [config_identity(container), inputs, version("sparse-lstm-ad")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def _earlier_run(config: Config, job: Any) -> Any:
    """In a multirun, the FINISHED run of this same config, unless `rerun=true`."""
    from sparse_lstm_ad import tracking

    if not job.sweep or config.rerun:
        return None
    done = tracking.finished_run(config.tracking, job.identity)
    if done is None:  # a run of it left RUNNING by a dead process was closed by prepare_store
        return None
    log.info("skipping %s: this config already FINISHED as run %s", job.run_name, done.run_id)
    if job.parent_run_id:
        job_num = str(HydraConfig.get().job.num)
        tracking.note_job(config.tracking, job.parent_run_id, "skipped", job_num, done.run_id)
    return done


def _note_failure(cfg: DictConfig, error: Exception) -> None:
    """Count the failure on the sweep's parent run, even if the job's own run never started."""
    from sparse_lstm_ad import tracking

    try:
        store = OmegaConf.to_object(cfg.tracking)
        parent = tracking.sweep_parent(store, str(Path(HydraConfig.get().sweep.dir)))
        job_num = str(HydraConfig.get().job.num)
        if parent:
            tracking.note_job(store, parent, "failed", job_num, f"{type(error).__name__}: {error}")
    except Exception:  # the store itself may be what failed: the log line above still stands
        log.warning("could not record this failure on the sweep's parent run")


def _launcher_threads() -> int:
    """TensorFlow threads for a job that shares the cores with other jobs; 0 if it runs alone.

    Joblib workers get one thread each. A Ray task gets the CPUs it reserved
    (`hydra.launcher.ray.remote.num_cpus`, 1 by default): more threads would oversubscribe.
    """
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_"))
    if "Joblib" in target:
        return 1
    if "hydra_ray_launcher" in target:
        return max(1, int(OmegaConf.select(launcher, "ray.remote.num_cpus") or 1))
    return 0


def run_job(cfg: DictConfig) -> float:
    config = checked_config(cfg)
    if config.threads == 0 and (threads := _launcher_threads()):
        config = replace(config, threads=threads)  # jobs run side by side: no oversubscription
    job = job_info(config)
    done = _earlier_run(config, job)
    if done is not None:
        return float(done.metrics.get(OBJECTIVE, float("nan")))
    from sparse_lstm_ad.pipeline import run_experiment

    # NaN for a detector without a reconstruction (iforest): nothing for a sweeper to minimise.
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    _catch_interrupts()  # again: a launcher's worker process runs jobs here, not through cli()
    quiet_tensorflow_import()  # a worker unpickles this function, not this module's top
    _label_job(f"[job {HydraConfig.get().job.num}] " if _multirun() else "")
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
        if _multirun():
            _note_failure(cfg, error)
            return float("nan")  # the other jobs go on; the sweep's end reports the failure
        raise SystemExit(2 if user_error else 1) from None
    finally:
        _label_job("")  # the launcher's own lines between jobs are no job's


def cli() -> None:
    """Check the whole command, then let Hydra run it; a mistake or an interrupt is one line."""
    from sparse_lstm_ad.cli.launch_checks import UsageError, check_command

    _catch_interrupts()
    try:
        try:
            check_command(sys.argv[1:], CONF)
        except UsageError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise  # the whole story, Hydra's own error included as the cause
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        main()
    except KeyboardInterrupt:
        signum = _SIGNALS[0] if _SIGNALS else signal.SIGINT
        print(_interrupted(signum), file=sys.stderr)
        for late in (signal.SIGINT, signal.SIGTERM):  # all is closed: keep the exit code
            signal.signal(late, signal.SIG_IGN)
        raise SystemExit(128 + signum) from None


def _interrupted(signum: int) -> str:
    """What the interrupt ended: the job's run and the sweep's parent, both closed KILLED."""
    name = signal.Signals(signum).name
    tracking = sys.modules.get("sparse_lstm_ad.tracking")
    runs = list(tracking.INTERRUPTED) if tracking else []
    # Runs of jobs in launcher workers (joblib) are ended by the workers, not listed here.
    ended = [f"run {runs[-1]} ended KILLED"] if runs else []
    if "sparse_lstm_ad.cli.hydra_callbacks" in sys.modules:
        from sparse_lstm_ad.cli.hydra_callbacks import abandon_open_sweep

        if parent := abandon_open_sweep(f"the multirun was interrupted ({name})"):
            ended.append(parent)
    return f"interrupted by {name}: {'; '.join(ended) or 'no run had started'}"


if __name__ == "__main__":
    cli()
