"""The `score` command: a CSV scored with a logged model (score.py does the work)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click

from sparse_lstm_ad.cli.options import store_config, store_options
from sparse_lstm_ad.cli.subcommand import subcommand


@subcommand("score")
@click.option("--model", "model_uri", required=True, help="runs:/RUN_ID/model or models:/NAME/V")
@click.option("--input", "path", required=True, type=Path, help="the CSV to score")
@click.option(
    "--output",
    required=True,
    type=Path,
    help="the scores CSV written (compressed if named .gz, .zip, .bz2, .xz)",
)
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

    for option, target in (("--output", output), ("--plot", plot)):
        _refuse_directory(option, target)
    compression = _compression(output)  # before scoring: a format pandas cannot write here
    table, threshold, label = score_csv(store_config(store), model_uri, path, time_column, top)
    with written_whole(output) as partial:
        table.to_csv(partial, index=False, compression=compression)
    if plot is not None:
        from sparse_lstm_ad import plots

        times = table.iloc[:, 0] if table.columns[0] != "score" else None
        plots.score_series(table["score"].to_numpy(), None, threshold, plot, label, times=times)
    click.echo(f"scored {len(table)} rows, {int(table['flag'].sum())} flagged: {output}")


def _refuse_directory(option: str, path: Path | None) -> None:
    """Before scoring: else the rename onto a directory fails after all the work, in OS words."""
    if path is not None and path.is_dir():
        raise ValueError(f"{option} {path}: is a directory, not a file to write")


def _compression(path: Path) -> dict[str, str] | None:
    """pandas' compression for `path`, spelt out: pandas infers it from the name it writes
    to, and the scratch file written first has a name of its own."""
    from pandas.io.common import infer_compression

    method = infer_compression(str(path), "infer")
    if method is None:
        return None
    if method == "zstd" and importlib.util.find_spec("zstandard") is None:
        raise ValueError(f"--output {path}: .zst needs the zstandard package, not installed")
    options = {"method": method}
    if method in ("zip", "tar"):  # its one member, named as pandas names it from `path`
        member = path.name.removesuffix(path.suffix)
        options["archive_name"] = member.removesuffix(".tar") if method == "tar" else member
    if method == "tar" and path.suffix != ".tar":  # .tar.gz: the tar's own compression too
        options["mode"] = f"w:{path.suffix[1:]}"
    return options
