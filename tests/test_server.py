"""A shared tracking server on loopback, backed by a private PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import server
from tests.conftest import run_concurrent_writers, train_command, train_in_process

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Started(NamedTuple):
    folder: Path  # the server's state folder
    url: str  # the MLflow server's
    pg_port: int  # the PostgreSQL cluster's


@pytest.fixture(scope="module")
def started_server() -> Iterator[Started]:
    """PostgreSQL + `mlflow server` in a temp dir, both on 127.0.0.1; stopped afterwards."""
    # Not pytest's tmp_path: the postgres user must be able to reach the cluster's folder.
    folder = Path(tempfile.mkdtemp(prefix="sparse-lstm-ad-server-"))
    folder.chmod(0o755)
    try:
        pg_port = _free_port()
        with contextlib.chdir(folder):  # --dir as typed: relative (.server by default)
            url = server.start(Path("state"), _free_port(), "postgres", pg_port)
        yield Started(folder / "state", url, pg_port)
    finally:
        server.stop(folder / "state")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tracking_server(started_server: Started) -> str:
    return started_server.url


def test_a_second_start_is_refused_and_the_first_stays_stoppable(
    started_server: Started, tmp_path: Path
) -> None:
    folder, url = started_server.folder, started_server.url
    port = int(url.rsplit(":", 1)[1])
    pid = (folder / "mlflow.pid").read_text()
    with pytest.raises(server.ServerError, match=r"is running .*server stop --dir"):
        server.start(folder, _free_port(), "sqlite", _free_port())
    # Another folder, the same port: the running server would have answered for it.
    with pytest.raises(server.ServerError, match=f"port {port} on 127.0.0.1 is in use"):
        server.start(tmp_path / "other", port, "sqlite", _free_port())
    assert not (tmp_path / "other" / "mlflow.pid").exists()
    assert (folder / "mlflow.pid").read_text() == pid  # `stop` still ends the first
    urllib.request.urlopen(f"{url}/health", timeout=10).close()


def test_a_pid_file_whose_number_another_process_took_is_left_alone(tmp_path: Path) -> None:
    # After a reboot the pid in mlflow.pid may name any process: stop must not end its group.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "mlflow.pid").write_text(str(other.pid))
        assert server.stop(tmp_path) == []
        assert other.poll() is None and not (tmp_path / "mlflow.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_everything_listens_on_loopback_only(started_server: Started) -> None:
    listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    # The local address is ss's 4th column: exactly 127.0.0.1:PORT, on every listener.
    local = [line.split()[3] for line in listening.splitlines()[1:] if line.split()]
    mlflow_port = int(started_server.url.rsplit(":", 1)[1])
    for port in (mlflow_port, started_server.pg_port):
        on_port = [address for address in local if address.rsplit(":", 1)[1] == str(port)]
        assert on_port and set(on_port) == {f"127.0.0.1:{port}"}, (port, on_port)


@pytest.fixture
def tracking_uri_restored() -> Iterator[None]:
    """MLflow's process-wide tracking URI (and MLFLOW_TRACKING_URI, which it sets) put back as
    they were before the test: the run in this process and the test's search set it."""
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    yield
    mlflow.set_tracking_uri(before)


@pytest.mark.usefixtures("tracking_uri_restored")
def test_a_sweep_logs_to_the_server(tracking_server: str, tmp_path: Path) -> None:
    command = train_command(
        tmp_path,
        "-m",
        "+experiment=fast",
        # One network and one baseline: a network's model is the one that travels (below).
        "model=sparse,mahalanobis",
        f"tracking.uri={tracking_server}",
        "tracking.experiment=server-sweep",
        store=False,
    )
    result = train_in_process(command)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    mlflow.set_tracking_uri(tracking_server)
    runs = mlflow.search_runs(experiment_names=["server-sweep"])
    parents = runs[runs["tags.sweep_parent"].notna()]
    children = runs[runs["tags.sweep_parent"].isna()]
    # The server is the UI: the sweep ends with its link, on the training-runs view.
    link = f"{tracking_server}/#/experiments/{runs['experiment_id'].iloc[0]}/runs"
    assert f"The runs in the MLflow UI: {link}?workflowType=machine_learning" in result.stdout
    assert "View run" not in result.stdout  # MLflow's own lines: a run's log says where it is
    assert list(parents["status"]) == ["FINISHED"]
    assert sorted(children["status"]) == ["FINISHED", "FINISHED"]
    # The network's model went through the server's artifact store and loads back by run URI.
    (network,) = [row for _, row in children.iterrows() if row["tags.model"] == "sparse"]
    model = mlflow.pyfunc.load_model(f"runs:/{network.run_id}/{network['tags.scoring_model']}")
    assert model.metadata.get_input_schema().input_names()[0] == "F1"


def test_eight_concurrent_writers_through_the_server(tracking_server: str, tmp_path: Path) -> None:
    run_concurrent_writers(f"uri={tracking_server!r}", tmp_path / "barrier")

    client = MlflowClient(tracking_uri=tracking_server)
    experiment = client.get_experiment_by_name("writers")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"] * 8
    assert sum(len(client.get_metric_history(r.info.run_id, "value")) for r in runs) == 8 * 50
