"""The `benchmark` group: the benchmarks of a checkout, detectors and speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from sparse_lstm_ad.cli.subcommand import subcommand

REPO = Path(__file__).resolve().parents[3]  # a checkout: src/sparse_lstm_ad/cli/benchmark.py


@click.group("benchmark")
def benchmark() -> None:
    """The benchmarks of a checkout: detectors (which detector wins) and speed."""


def _in_checkout(*parts: str) -> Path:
    path = REPO.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the benchmarks run from a checkout of the repository")
    return path


@subcommand("detectors", group=benchmark)
@click.argument("overrides", nargs=-1)
@click.option("--out", type=Path, default=None, help="[default: multirun/benchmark/leaderboard]")
def detectors(overrides: tuple[str, ...], out: Path | None) -> int:
    """`+experiment=benchmark` (6 detectors x 9 datasets x 5 seeds into ./mlruns, resumable:
    FINISHED jobs are skipped), then its leaderboard. OVERRIDES go to train.py (seed=0,1)."""
    from sparse_lstm_ad.config import TrackingConfig
    from sparse_lstm_ad.leaderboard import write_leaderboard

    train = _in_checkout("src", "train.py")
    code = subprocess.call([sys.executable, str(train), "-m", "+experiment=benchmark", *overrides])
    if code != 0:
        return code
    store = TrackingConfig(experiment="benchmark")
    click.echo(write_leaderboard(store, "multirun/benchmark", out, None))
    return 0


@subcommand("speed", group=benchmark)
@click.option("--quick", is_flag=True, help="fewer epochs: to try the script itself")
def speed(quick: bool) -> int:
    """Our pipeline against a re-implementation of the seed notebook's: phase times, start-up,
    the whole CLI run (experiments/benchmark/run.py)."""
    script = _in_checkout("experiments", "benchmark", "run.py")
    return subprocess.call([sys.executable, str(script), *(["--quick"] if quick else [])])
