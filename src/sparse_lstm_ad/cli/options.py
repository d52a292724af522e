"""The options that point a command (report, register, reproduce, score) at an MLflow store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sparse_lstm_ad.config import TrackingConfig

DEFAULT_EXPERIMENT, DEFAULT_DIR = TrackingConfig().experiment, TrackingConfig().dir


def store_options(*, experiment: str | None = None) -> Callable[[Callable], Callable]:
    """--tracking-dir and --tracking-uri; given a default `experiment`, also --experiment.

    Only commands that search runs by tag need --experiment (report, register --sweep): a run
    id or a model URI names its run in every experiment, so the others would ignore it.
    """

    def decorate(command: Callable) -> Callable:
        if experiment is not None:
            command = click.option(
                "--experiment",
                default=experiment,
                show_default=True,
                help="the MLflow experiment searched for the sweep's runs: the sweep's "
                "tracking.experiment",
            )(command)
        command = click.option(
            "--tracking-uri", default=None, help="a tracking server or database URI"
        )(command)
        return click.option(
            "--tracking-dir", default=DEFAULT_DIR, show_default=True, help="local store"
        )(command)

    return decorate


def store_config(options: dict[str, Any]) -> TrackingConfig:
    """The store the command's options name; pops them from `options`."""
    return TrackingConfig(
        dir=options.pop("tracking_dir"),
        uri=options.pop("tracking_uri"),
        experiment=options.pop("experiment", DEFAULT_EXPERIMENT),
    )
