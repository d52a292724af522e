"""The command-line tool `sparse-lstm-ad` (also `python -m sparse_lstm_ad`): one click group
whose subcommands `commands` adds (the console script starts there). Training stays
`python src/train.py` (Hydra's entry), which imports only the light parts of this package.

Every user mistake is one line on stderr and exit 2; click's own usage errors exit 2 too.
"""

from __future__ import annotations

import logging
import os
import warnings

import click


def quiet(verbose: bool) -> None:
    """Hide TensorFlow's C++ and absl start-up lines and library warnings, unless asked for
    (-v); MLflow's download bars are off wherever a store is opened (tracking.store). Set
    before TensorFlow is imported: its C++ logging reads the environment once."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("absl", "mlflow", "tensorflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@verbose_option
def main() -> None:
    """Anomaly detection with standard and sparse LSTM autoencoders: the commands around
    training. Train and sweep with `python src/train.py [-m] KEY=VALUE ...`."""


def run(command: click.Command, argv: list[str] | None = None) -> int:
    """Run one command in-process (as `python -m sparse_lstm_ad.<command>` does); its exit code.

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
