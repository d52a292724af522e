"""The `register` command: a run's scoring model in the model registry (register.py does
the work)."""

from __future__ import annotations

from typing import Any

import click

from sparse_lstm_ad.cli.options import DEFAULT_EXPERIMENT, store_config, store_options
from sparse_lstm_ad.cli.subcommand import subcommand


@subcommand("register")
@click.option("--name", required=True, help="the registered model's name")
@click.option("--run", "run_id", default=None, help="a run id")
@click.option(
    "--sweep",
    default=None,
    help="a multirun directory: its best run by --metric; by a test metric (auc_pr, the "
    "default) that is chosen on the test labels: an oracle choice, for comparison only",
)
@click.option(
    "--metric",
    default="auc_pr",
    show_default=True,
    help="what 'best' means; the version's tag chosen_by says which, and whether it saw the "
    "test labels",
)
@click.option("--lowest", is_flag=True, help="lower is better for --metric")
@click.option(
    "--selected",
    is_flag=True,
    help="with --sweep: the run a selection sweep (+experiment=select) chose without the test "
    "labels, in place of the best by --metric",
)
@click.option(
    "--group",
    default=None,
    help="with --selected, for a sweep over several data sets or seeds: <data>.seed<seed>",
)
@store_options(experiment=DEFAULT_EXPERIMENT)  # --sweep searches one experiment
def register(
    name: str,
    run_id: str | None,
    sweep: str | None,
    metric: str,
    lowest: bool,
    selected: bool,
    group: str | None,
    **store: Any,
) -> None:
    """Register a run's scoring model, or a sweep's best run, in the MLflow model registry;
    then models:/NAME/latest works wherever a model URI does.

    A sweep's best run by a test metric (auc_pr, the default) is chosen on the test labels:
    an oracle choice, for comparison only, not a detector chosen for new data; --selected
    takes the detector a selection sweep chose without them. A register that fails leaves
    nothing in the registry."""
    from sparse_lstm_ad.register import register as register_run

    if (run_id is None) == (sweep is None):
        raise click.UsageError("give one of --run and --sweep")
    if (selected or group) and sweep is None:
        raise click.UsageError("--selected and --group go with --sweep")
    if selected and (lowest or _given("metric")):  # it was ignored: the choice is the sweep's
        raise ValueError(
            "--selected registers the run the selection sweep chose without the test labels; "
            "--metric and --lowest pick the best run by a metric instead: give one or the other"
        )
    click.echo(
        register_run(store_config(store), name, run_id, sweep, metric, lowest, group, selected)
    )


def _given(option: str) -> bool:
    """Whether the command line set `option` (not its default)."""
    source = click.get_current_context().get_parameter_source(option)
    return source is not click.core.ParameterSource.DEFAULT
