"""The `sparse-lstm-ad` click group (the console script and `python -m sparse_lstm_ad` start
here), assembled from one module per subcommand."""

from __future__ import annotations

import click

from sparse_lstm_ad.cli.benchmark import benchmark
from sparse_lstm_ad.cli.daemon import daemon
from sparse_lstm_ad.cli.leaderboard import leaderboard
from sparse_lstm_ad.cli.register import register
from sparse_lstm_ad.cli.report import report
from sparse_lstm_ad.cli.reproduce import reproduce
from sparse_lstm_ad.cli.score import score
from sparse_lstm_ad.cli.server import server
from sparse_lstm_ad.cli.subcommand import verbose_option
from sparse_lstm_ad.cli.train_command import train


@click.group("sparse-lstm-ad", context_settings={"help_option_names": ["-h", "--help"]})
@verbose_option
def main() -> None:
    """Anomaly detection with standard and sparse LSTM autoencoders. Train and sweep with
    `sparse-lstm-ad train [-m] KEY=VALUE ...` (or `python src/train.py ...`, the same)."""


for _command in (train, report, leaderboard, reproduce, score, register, server, daemon, benchmark):
    main.add_command(_command)


def run(command: click.Command, argv: list[str] | None = None) -> int:
    """Run a command in-process, as `sparse-lstm-ad ARGV` does for `main`; its exit code.

    The commands return their exit code; click's usage errors (exit 2) print as click prints
    them."""
    try:
        code = command.main(argv, prog_name=command.name, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0
