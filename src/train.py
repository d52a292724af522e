"""The entry point: `python src/train.py [-m] [group=option ...] [key=value ...]`.

Composes conf/ (checked against the schemas in sparse_lstm_ad.config), hands the config to the
pipeline, and returns the validation reconstruction MSE: an objective a sweeper can minimise
without ever seeing test labels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import Config, ConfigError, register_configs, validate

# Quiets TensorFlow's C++ info and warnings once its logging is up (a few start-up lines
# from absl are printed before any setting applies).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("train")

register_configs()

_NOT_IN_NAMES = ("tracking.", "hydra.", "hydra/")


def job_info(cfg: DictConfig) -> Any:
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
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    return JobInfo(
        # The name says what differs from the defaults; with none, which model on which data.
        run_name=" ".join(overrides) or f"model={choices['model']} data={choices['data']}",
        config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        config_files=[hydra_dir / name for name in ("config.yaml", "overrides.yaml")],
        sweep=str(Path(hydra_cfg.sweep.dir)) if multirun else "",
        choices=choices,
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    try:
        config: Config = validate(OmegaConf.to_object(cfg))  # type: ignore[arg-type]
        from sparse_lstm_ad.pipeline import run_experiment

        summary = run_experiment(config, job_info(cfg))
    except ConfigError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the other jobs of the sweep still run; Hydra reports this one at the end
        log.error("%s", error)  # a user's mistake: one line, no traceback
        raise SystemExit(2) from None
    return summary.metrics["val_reconstruction_mse"]


if __name__ == "__main__":
    main()
