"""The options that point a command (report, register, reproduce, score) at an MLflow store."""

from __future__ import annotations

import argparse

from sparse_lstm_ad.config import TrackingConfig

DEFAULT_EXPERIMENT = TrackingConfig().experiment


def add_store_options(parser: argparse.ArgumentParser, *, experiment: bool = False) -> None:
    """--tracking-dir and --tracking-uri; with `experiment`, also --experiment.

    Only commands that search runs by tag need --experiment (report, register --sweep): a run
    id or a model URI names its run in every experiment, so the others would ignore it.
    """
    parser.add_argument("--tracking-dir", default="mlruns", help="local store (default: mlruns)")
    parser.add_argument("--tracking-uri", default=None, help="a tracking server or database URI")
    if experiment:
        parser.add_argument(
            "--experiment",
            default=DEFAULT_EXPERIMENT,
            help="the MLflow experiment searched for the sweep's runs: the sweep's "
            "tracking.experiment (default: %(default)s)",
        )


def store_config(args: argparse.Namespace) -> TrackingConfig:
    experiment = getattr(args, "experiment", DEFAULT_EXPERIMENT)
    return TrackingConfig(dir=args.tracking_dir, uri=args.tracking_uri, experiment=experiment)


def require_experiment(cfg: TrackingConfig) -> None:
    """Raise LookupError, naming the store's experiments, if cfg.experiment is not among them.

    Searching a missing experiment would create it, empty, and answer only "no run of that
    sweep": the way a sweep logged with `tracking.experiment=NAME` looked lost.
    """
    from sparse_lstm_ad import tracking

    names = tracking.experiment_names(cfg)
    if cfg.experiment in names:
        return
    if names:
        hint = f"it has {', '.join(sorted(names))}: name the sweep's with --experiment"
    else:
        hint = "no experiment at all: check --tracking-dir or --tracking-uri"
    raise LookupError(f"no experiment {cfg.experiment!r} in {tracking.tracking_uri(cfg)} ({hint})")
