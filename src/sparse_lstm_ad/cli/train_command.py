"""The `train` command: `sparse-lstm-ad train ARGS` is `python src/train.py ARGS`, the same
Hydra application (cli/train.py), loaded only when the command runs."""

from __future__ import annotations

import sys

import click


@click.command(
    "train",
    add_help_option=False,  # --help goes to the application: its groups, options and keys
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Train one run, or a sweep with -m: Hydra overrides, as `python src/train.py ARGS`."""
    if {"-h", "--help"} & set(args):
        from sparse_lstm_ad.cli.checkout import CONF
        from sparse_lstm_ad.cli.train_help import train_help

        click.echo(train_help(CONF))
        return
    from sparse_lstm_ad.cli.daemon_client import served

    sys.argv = ["sparse-lstm-ad train", *args]
    if (code := served(sys.argv)) is not None:  # a started daemon ran it
        sys.exit(code)
    from sparse_lstm_ad.cli.train import cli

    cli()
