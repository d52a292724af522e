"""The `leaderboard` command: the benchmark's leaderboard (leaderboard.py does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sparse_lstm_ad.cli.options import store_config, store_options
from sparse_lstm_ad.cli.subcommand import subcommand


@subcommand("leaderboard")
@click.argument("sweep")
@click.option("--out", type=Path, default=None, help="folder  [default: SWEEP/leaderboard]")
@click.option("--from-csv", type=Path, default=None, help="a runs.csv it wrote, not MLflow")
@click.option(
    "--confirmation",
    default="",
    metavar="NAME[,NAME...]",
    help="datasets ranked and tested apart from the others (the tuning set)",
)
@store_options(experiment="benchmark")
def leaderboard(
    sweep: str, out: Path | None, from_csv: Path | None, confirmation: str, **store: Any
) -> None:
    """A sweep's leaderboard (the benchmark's by default): per dataset mean ± std of AUC-PR,
    VUS-PR, AUC-ROC and the explanation scores, each detector's average rank (each setting
    the sweep varied, model.l1 say, a contestant of its own), whether the differences are real
    (Friedman, Nemenyi with critical-difference diagrams, Holm-corrected Wilcoxon), the
    alarms at the label-free threshold, and a rank plot; printed, written to --out (with
    runs.csv) and logged to the sweep's parent run."""
    from sparse_lstm_ad.leaderboard import write_leaderboard

    names = [name for name in confirmation.split(",") if name]
    click.echo(write_leaderboard(store_config(store), str(Path(sweep)), out, from_csv, names))
