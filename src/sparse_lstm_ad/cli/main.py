"""The `sparse-lstm-ad` click group (the console script and `python -m sparse_lstm_ad` start
here), assembled from one module per subcommand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from sparse_lstm_ad.cli.benchmark import benchmark
from sparse_lstm_ad.cli.daemon import daemon
from sparse_lstm_ad.cli.leaderboard import leaderboard
from sparse_lstm_ad.cli.quiet import exit_quickly
from sparse_lstm_ad.cli.register import register
from sparse_lstm_ad.cli.report import report
from sparse_lstm_ad.cli.reproduce import reproduce
from sparse_lstm_ad.cli.score import score
from sparse_lstm_ad.cli.server import server
from sparse_lstm_ad.cli.subcommand import verbose_option
from sparse_lstm_ad.cli.train_command import train


class _UsageMistake(click.ClickException):
    """A usage error of click's as the one line `error: ...` (exit 2) that every other
    mistake is, naming the command's --help, where click prints a block of four lines."""

    exit_code = 2

    def __init__(self, error: click.UsageError, command_path: str) -> None:
        super().__init__(f"{error.format_message()} (see {command_path} --help)")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file, err=True)


@contextmanager
def _usage_as_one_line(group: click.Group) -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # the bare command: its whole help, as click shows it
    except click.UsageError as error:
        command_path = error.ctx.command_path if error.ctx is not None else group.name
        raise _UsageMistake(error, command_path) from error


class _OneLineUsageGroup(click.Group):
    """The top group: the group's own usage errors rise from make_context, a subcommand's
    (and a nested group's) from invoke; click shows them, standalone or in `run`."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_as_one_line(self):
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_as_one_line(self):
            return super().invoke(ctx)


@click.group(
    "sparse-lstm-ad",
    cls=_OneLineUsageGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@verbose_option
def main() -> None:
    """Anomaly detection with standard and sparse LSTM autoencoders. Train and sweep with
    `sparse-lstm-ad train [-m] KEY=VALUE ...` (or `python src/train.py ...`, the same)."""
    exit_quickly()  # as train.py's processes do: no last walk of the heap at exit


for _command in (train, report, leaderboard, reproduce, score, register, server, daemon, benchmark):
    main.add_command(_command)


def run(command: click.Command, argv: list[str] | None = None) -> int:
    """Run a command in-process, as `sparse-lstm-ad ARGV` does for `main`; its exit code.

    The commands return their exit code; a usage error of `main` is one line (exit 2), as
    standalone."""
    try:
        code = command.main(argv, prog_name=command.name, standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0
