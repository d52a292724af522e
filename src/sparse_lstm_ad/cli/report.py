"""The `report` command: a sweep's comparison table and plot (report.py does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sparse_lstm_ad.cli.options import DEFAULT_EXPERIMENT, store_config, store_options
from sparse_lstm_ad.cli.subcommand import subcommand


@subcommand("report")
@click.argument("sweep")
@click.option("--metric", default="auc_pr", show_default=True, help="the metric plotted")
@click.option("--out", type=Path, default=None, help="folder  [default: SWEEP/report]")
@store_options(experiment=DEFAULT_EXPERIMENT)
def report(sweep: str, metric: str, out: Path | None, **store: Any) -> None:
    """Compare a sweep's runs: a Markdown table (mean ± std over seeds) and a plot of a
    metric against L1, printed, written to --out and logged to the sweep's parent run.

    SWEEP is the multirun directory as given to hydra.sweep.dir (the runs' sweep tag)."""
    from sparse_lstm_ad.report import write_report

    click.echo(write_report(store_config(store), str(Path(sweep)), metric, out))
