"""The entry point: `python src/train.py [-m] [group=option ...] [key=value ...]`.

Composes conf/ (checked against the schemas in sparse_lstm_ad.config), hands the config to the
pipeline, and returns the validation reconstruction MSE: an objective a sweeper can minimise
without ever seeing test labels.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import Config, active_only, config_identity, register_configs
from sparse_lstm_ad.config_checks import ConfigError, validate

# Quiets TensorFlow's C++ info and warnings once its logging is up (a few start-up lines
# from absl are printed before any setting applies).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("train")

register_configs()

_NOT_IN_NAMES = ("tracking.", "hydra.", "hydra/", "rerun=", "threads=")
OBJECTIVE = "val_reconstruction_mse"


def _user_errors() -> tuple[type[BaseException], ...]:
    """Mistakes in the input (config, data, store): one line, no traceback."""
    from sparse_lstm_ad.fitting import TrainingDiverged
    from sparse_lstm_ad.tracking import StoreError

    return (ConfigError, StoreError, ValueError, FileNotFoundError, TrainingDiverged)


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def job_info(config: Config) -> Any:
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.pipeline import JobInfo

    hydra_cfg = HydraConfig.get()
    # Where the store is and where Hydra writes say nothing about the experiment.
    overrides = [o for o in hydra_cfg.overrides.task if not o.startswith(_NOT_IN_NAMES)]
    choices = {
        group: str(option)
        for group, option in hydra_cfg.runtime.choices.items()
        if not group.startswith("hydra")
    }
    hydra_dir = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
    # From the checked dataclasses, so values set at run time (threads) are what is logged.
    container = active_only(OmegaConf.to_container(OmegaConf.structured(config), enum_to_str=True))
    sweep = str(Path(hydra_cfg.sweep.dir)) if _multirun() else ""
    return JobInfo(
        # The name says what differs from the defaults; with none, which model on which data.
        run_name=" ".join(overrides) or f"model={choices['model']} data={choices['data']}",
        config=container,
        config_files=[hydra_dir / name for name in ("config.yaml", "overrides.yaml")],
        sweep=sweep,
        choices=choices,
        identity=config_identity(container),
        parent_run_id=tracking.sweep_parent(config.tracking, sweep) if sweep else None,
    )


def _multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def _earlier_run(config: Config, job: Any) -> Any:
    """In a multirun, the FINISHED run of this same config, unless `rerun=true`."""
    from sparse_lstm_ad import tracking

    if not job.sweep or config.rerun:
        return None
    done = tracking.finished_run(config.tracking, job.identity)
    if done is None:
        for run_id in tracking.close_orphans(config.tracking, job.identity):
            log.warning("run %s of this config was left RUNNING by a dead process: KILLED", run_id)
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
    config: Config = validate(OmegaConf.to_object(cfg))  # type: ignore[arg-type]
    if config.threads == 0 and (threads := _launcher_threads()):
        config = replace(config, threads=threads)  # jobs run side by side: no oversubscription
    job = job_info(config)
    done = _earlier_run(config, job)
    if done is not None:
        return float(done.metrics.get(OBJECTIVE, float("nan")))
    from sparse_lstm_ad.pipeline import run_experiment

    # NaN for a detector without a reconstruction (iforest): nothing for a sweeper to minimise.
    return run_experiment(config, job).metrics.get(OBJECTIVE, float("nan"))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)  # ends the run KILLED, as Ctrl-C
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


if __name__ == "__main__":
    main()
