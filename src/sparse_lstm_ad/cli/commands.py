"""The subcommands of `sparse-lstm-ad`: each reads its options, calls the module that does
the work, prints the outcome, and turns a user's mistake into one line and exit 2."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sparse_lstm_ad.cli import main, quiet, verbose_option
from sparse_lstm_ad.cli.options import DEFAULT_EXPERIMENT, store_config, store_options

REPO = Path(__file__).resolve().parents[3]  # a checkout: src/sparse_lstm_ad/cli/commands.py


def _user_errors() -> tuple[type[BaseException], ...]:
    from sparse_lstm_ad.config_checks import ConfigError
    from sparse_lstm_ad.server import ServerError
    from sparse_lstm_ad.tracking.store import StoreError

    return (LookupError, ValueError, OSError, ConfigError, StoreError, ServerError)


def subcommand(name: str, group: click.Group = main) -> Callable[[Callable], click.Command]:
    """`group.command(name)` with -v, the quiet start and the one-line errors."""

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

        return group.command(name)(verbose_option(body))

    return decorate


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
    """The benchmark's leaderboard: per dataset mean ± std of AUC-PR, VUS-PR, AUC-ROC and the
    explanation scores, each detector's average rank, whether the differences are real
    (Friedman, Nemenyi with critical-difference diagrams, Holm-corrected Wilcoxon), the
    alarms at the label-free threshold, and a rank plot; printed, written to --out (with
    runs.csv) and logged to the sweep's parent run."""
    from sparse_lstm_ad.leaderboard import write_leaderboard

    names = [name for name in confirmation.split(",") if name]
    click.echo(write_leaderboard(store_config(store), str(Path(sweep)), out, from_csv, names))


@subcommand("reproduce")
@click.argument("run_id")
@click.option("--rtol", type=float, default=1e-6, show_default=True)
@click.option("--atol", type=float, default=1e-9, show_default=True)
@store_options()
def reproduce(run_id: str, rtol: float, atol: float, **store: Any) -> int:
    """Re-run a logged run from its recorded config and check that its metrics come out the
    same: logs a new run tagged reproduces=RUN_ID, prints each final metric beside the
    original's, exits 1 when any differs beyond the tolerance (timings and system metrics
    are not compared)."""
    from sparse_lstm_ad.reproduce import reproduce as run_again

    return run_again(run_id, store_config(store), rtol, atol)


@subcommand("score")
@click.option("--model", "model_uri", required=True, help="runs:/RUN_ID/model or models:/NAME/V")
@click.option("--input", "path", required=True, type=Path, help="the CSV to score")
@click.option("--output", required=True, type=Path, help="the scores CSV written")
@click.option("--plot", type=Path, default=None, help="also draw the scores to this PNG")
@click.option("--time-column", default=None, help="[default: the first of t, time, timestamp]")
@click.option(
    "--top", type=click.IntRange(min=1), default=3, show_default=True, help="channels named per row"
)
@store_options()
def score(
    model_uri: str,
    path: Path,
    output: Path,
    plot: Path | None,
    time_column: str | None,
    top: int,
    **store: Any,
) -> None:
    """Score a CSV with a logged model: no training data, no config, only the model's URI.
    Columns are matched to the training channels by name, others are ignored; the output
    has one row per input row: the time column if any, score, flag and the top channels."""
    from sparse_lstm_ad.files import written_whole
    from sparse_lstm_ad.score import score_csv

    table, threshold = score_csv(store_config(store), model_uri, path, time_column, top)
    with written_whole(output) as partial:
        table.to_csv(partial, index=False)
    if plot is not None:
        from sparse_lstm_ad import plots

        times = table.iloc[:, 0] if table.columns[0] != "score" else None
        plots.score_series(table["score"].to_numpy(), None, threshold, plot, times=times)
    click.echo(f"scored {len(table)} rows, {int(table['flag'].sum())} flagged: {output}")


@subcommand("register")
@click.option("--name", required=True, help="the registered model's name")
@click.option("--run", "run_id", default=None, help="a run id")
@click.option("--sweep", default=None, help="a multirun directory: its best run by --metric")
@click.option("--metric", default="auc_pr", show_default=True, help="what 'best' means")
@click.option("--lowest", is_flag=True, help="lower is better for --metric")
@store_options(experiment=DEFAULT_EXPERIMENT)  # --sweep searches one experiment
def register(
    name: str, run_id: str | None, sweep: str | None, metric: str, lowest: bool, **store: Any
) -> None:
    """Register a run's scoring model, or a sweep's best run, in the MLflow model registry;
    then models:/NAME/latest works wherever a model URI does."""
    from sparse_lstm_ad.register import register as register_run

    if (run_id is None) == (sweep is None):
        raise click.UsageError("give one of --run and --sweep")
    click.echo(register_run(store_config(store), name, run_id, sweep, metric, lowest))


@subcommand("server")
@click.argument("action", type=click.Choice(["start", "stop"]))
@click.option(
    "--dir",
    "folder",
    type=Path,
    default=Path(".server"),
    show_default=True,
    help="the servers' state",
)
@click.option("--port", type=int, default=5001, show_default=True, help="tracking server port")
@click.option(
    "--backend", type=click.Choice(["sqlite", "postgres"]), default="postgres", show_default=True
)
@click.option("--pg-port", type=int, default=5433, show_default=True, help="PostgreSQL port")
def server(action: str, folder: Path, port: int, backend: str, pg_port: int) -> None:
    """A shared MLflow tracking server on 127.0.0.1, backed by SQLite or a private
    PostgreSQL; jobs log to it with tracking.uri=http://127.0.0.1:PORT."""
    from sparse_lstm_ad import server as servers

    if action == "stop":
        click.echo("stopped: " + (", ".join(servers.stop(folder)) or "nothing was running"))
        return
    try:
        url = servers.start(folder, port, backend, pg_port)
    except subprocess.TimeoutExpired as error:
        raise servers.ServerError(f"timed out: {error}") from error
    click.echo(f"tracking server on {url} ({backend}); log to it with tracking.uri={url}")


@main.group("benchmark")
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
