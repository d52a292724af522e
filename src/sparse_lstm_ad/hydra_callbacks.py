"""Hydra callbacks: work done once per invocation around the jobs, whatever the launcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import TrackingConfig


def _tracking_config(config: DictConfig) -> TrackingConfig:
    return OmegaConf.to_object(config.tracking)  # type: ignore[return-value]


class TrackingCallback(Callback):
    """Prepares the MLflow store before any job; after a sweep, prints its comparison table."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sparse_lstm_ad import tracking

        tracking.prepare_store(_tracking_config(config))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from sparse_lstm_ad import tracking

        tracking.prepare_store(_tracking_config(config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from sparse_lstm_ad import report, tracking

        cfg = _tracking_config(config)
        runs = tracking.sweep_runs(cfg, str(Path(config.hydra.sweep.dir)))
        print(report.format_table(report.sweep_table(runs)))
        print(
            f"\nOpen the MLflow UI: make ui   (or: mlflow ui --backend-store-uri "
            f"{tracking.tracking_uri(cfg)} --host 127.0.0.1)"
        )
