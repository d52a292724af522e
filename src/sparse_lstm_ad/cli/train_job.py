"""What the launcher knows of one job, for the pipeline: its run's name (what differs from
the defaults), its identity (what it computes), its sweep and parent run, an earlier FINISHED
run of the same config (the job is then skipped), and where a failure is counted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import Config, active_only, config_identity
from sparse_lstm_ad.files import exclusive_lock

log = logging.getLogger("train")

_NOT_IN_NAMES = ("tracking.", "hydra.", "hydra/", "rerun=", "threads=")


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
    sweep = str(Path(hydra_cfg.sweep.dir)) if multirun() else ""
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

    from sparse_lstm_ad.data.sources import input_files
    from sparse_lstm_ad.detectors import unused_model_keys

    identity = config_identity(container, unused_model_keys(config.model.kind))
    parts = [identity, input_files(config.data), version("sparse-lstm-ad")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def earlier_run(config: Config, job: Any) -> Any:
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


@contextlib.contextmanager
def one_at_a_time(job: Any) -> Iterator[None]:
    """In a sweep, one job at a time per config identity: under joblib or Ray two jobs that
    compute the same thing (a standard model swept over model.l1, which it ignores) trained
    side by side and neither was skipped. The later one now waits for the first here, then
    finds its FINISHED run (earlier_run) and skips, as the serial launcher does. A hidden
    lock file in the sweep's folder, beside the jobs' folders: jobs of one machine, or of
    nodes that share that folder."""
    if not job.sweep:
        yield
        return
    Path(job.sweep).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(Path(job.sweep) / f".identity-{job.identity}.lock"):
        yield


def note_failure(cfg: DictConfig, error: Exception) -> None:
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


def launcher_threads() -> int:
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
