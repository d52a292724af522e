"""What every subcommand of `sparse-lstm-ad` shares: -v, the quiet start, and a user's mistake
as one line on stderr and exit 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from sparse_lstm_ad.cli.quiet import quiet


def _note_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["verbose"] = True  # ctx.meta is shared by the group and its subcommand


verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_note_verbose,
    help="Show TensorFlow, absl and MLflow logs and warnings.",
)


def _user_errors() -> tuple[type[BaseException], ...]:
    from sparse_lstm_ad.config_checks import ConfigError
    from sparse_lstm_ad.server import ServerError
    from sparse_lstm_ad.tracking.store import StoreError

    return (LookupError, ValueError, OSError, ConfigError, StoreError, ServerError)


def subcommand(name: str, group: click.Group | None = None) -> Callable[[Callable], click.Command]:
    """`click.command(name)` (or `group.command(name)`) with -v, the quiet start and the
    one-line errors. The function returns its exit code, or None for 0."""

    def decorate(function: Callable[..., int | None]) -> click.Command:
        @functools.wraps(function)
        def body(**options: Any) -> None:
            context = click.get_current_context()
            quiet(context.meta.get("verbose", False))
            try:
                code = function(**options) or 0
            except Exception as error:
                if not isinstance(error, _user_errors()):
                    raise
                click.echo(f"error: {error}", err=True)
                code = 2
            if code:
                context.exit(code)  # click's way to an exit code, standalone or not

        command = click.command(name) if group is None else group.command(name)
        return command(verbose_option(body))

    return decorate
