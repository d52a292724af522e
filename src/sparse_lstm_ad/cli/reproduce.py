"""The `reproduce` command: a logged run re-run and compared (reproduce.py does the work)."""

from __future__ import annotations

from typing import Any

import click

from sparse_lstm_ad.cli.options import store_config, store_options
from sparse_lstm_ad.cli.subcommand import subcommand

# Measured: with train.deterministic=true a CPU re-run repeats every metric to the bit on the
# same machine; the tolerance leaves room only for another CPU's float rounding.
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9


@subcommand("reproduce")
@click.argument("run_id")
@click.option("--rtol", type=float, default=DEFAULT_RTOL, show_default=True)
@click.option("--atol", type=float, default=DEFAULT_ATOL, show_default=True)
@store_options()
def reproduce(run_id: str, rtol: float, atol: float, **store: Any) -> int:
    """Re-run a logged run from its recorded config and check that its metrics come out the
    same: logs a new run tagged reproduces=RUN_ID, prints each final metric beside the
    original's, exits 1 when any differs beyond the tolerance (timings and system metrics
    are not compared)."""
    from sparse_lstm_ad.reproduce import reproduce as run_again

    return run_again(run_id, store_config(store), rtol, atol)
