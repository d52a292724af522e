"""The `benchmark` group: the benchmarks of a checkout, detectors and speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sparse_lstm_ad.cli.checkout import CONF, REPO
from sparse_lstm_ad.cli.subcommand import subcommand

if TYPE_CHECKING:
    from sparse_lstm_ad.config import TrackingConfig


@click.group("benchmark")
def benchmark() -> None:
    """The benchmarks of a checkout: detectors (which detector wins) and speed."""


def _in_checkout(*parts: str) -> Path:
    path = REPO.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the benchmarks run from a checkout of the repository")
    return path


# The preset's datasets no default was chosen on (conf/experiment/benchmark.yaml): ranked and
# tested apart from the tuning set, where a run of the sweep has them.
CONFIRMATION = ("confirm_mixed", "confirm_breaks", "confirm_shifts")


@subcommand("detectors", group=benchmark)
@click.argument("overrides", nargs=-1)
@click.option("--out", type=Path, default=None, help="[default: multirun/benchmark/leaderboard]")
def detectors(overrides: tuple[str, ...], out: Path | None) -> int:
    """`+experiment=benchmark` (6 detectors x 12 datasets x 5 seeds into ./mlruns, resumable:
    FINISHED jobs are skipped), then its leaderboard, the confirmation datasets apart.
    OVERRIDES go to train.py (seed=0,1; tracking.dir=...; hydra.sweep.dir=...)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sparse_lstm_ad.config_checks import ConfigError
    from sparse_lstm_ad.leaderboard import from_mlflow, write_leaderboard
    from sparse_lstm_ad.report import finished_runs

    train = [sys.executable, str(_in_checkout("src", "train.py")), "-m", "+experiment=benchmark"]
    try:  # before the sweep: a folder named by the time (${now:...}) is the sweep's own
        store, sweep = store_and_sweep(overrides)
    except (HydraException, OmegaConfBaseException, ConfigError):
        return subprocess.call([*train, *overrides])  # train.py says what is wrong, in one line
    code = subprocess.call([*train, *overrides, f"hydra.sweep.dir={_quoted(sweep)}"])
    if code != 0:
        return code
    datasets = set(from_mlflow(finished_runs(store, sweep))["dataset"])
    confirmation = [name for name in CONFIRMATION if name in datasets]
    click.echo(write_leaderboard(store, sweep, out, None, confirmation))
    return 0


def store_and_sweep(overrides: tuple[str, ...]) -> tuple[TrackingConfig, str]:
    """Where the benchmark with these overrides logs (tracking.*) and its sweep's folder."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sparse_lstm_ad.config_checks import checked_config

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        config = compose("config", ["+experiment=benchmark", *fixed], return_hydra_config=True)
    return checked_config(config).tracking, str(Path(config.hydra.sweep.dir))


def _quoted(value: str) -> str:
    """`value` as one quoted string of Hydra's override grammar (a comma is no sweep there)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@subcommand("speed", group=benchmark)
@click.option("--quick", is_flag=True, help="fewer epochs: to try the script itself")
def speed(quick: bool) -> int:
    """Our pipeline against a re-implementation of the seed notebook's: phase times, start-up,
    the whole CLI run (experiments/benchmark/run.py)."""
    script = _in_checkout("experiments", "benchmark", "run.py")
    return subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])])
