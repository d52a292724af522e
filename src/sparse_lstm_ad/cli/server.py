"""The `server` command: a local MLflow tracking server (server.py does the work)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

from sparse_lstm_ad.cli.subcommand import subcommand

PORT = click.IntRange(1, 65535)  # a port the server can bind: else it fails inside its own log


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
@click.option("--port", type=PORT, default=5001, show_default=True, help="MLflow server port")
@click.option(
    "--backend", type=click.Choice(["sqlite", "postgres"]), default="postgres", show_default=True
)
@click.option("--pg-port", type=PORT, default=5433, show_default=True, help="PostgreSQL port")
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
