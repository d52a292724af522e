"""Beyond one node: a Ray cluster of two nodes on this machine (a head and a node that joins it,
each with its own temp dir, ports, raylet and workers), the jobs on both, and runs, models and
artifacts only through a tracking server. Then a node that dies and a server that restarts,
mid-sweep. Everything on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from sparse_lstm_ad import server
from sparse_lstm_ad.cli.main import main, run
from sparse_lstm_ad.data import seed_series
from tests.conftest import train_command
from tests.ray_head import (
    STOP_TIMEOUT,
    Head,
    failure,
    finish_sweep,
    free_ports,
    kill_node,
    marked,
    ray_env,
    ray_head,
    ray_worker_node,
    run_sweep,
    start_sweep,
    started_together,
    tracking_server,
)

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_ray_launcher")

WAIT_TIMEOUT = 240  # seconds to see both nodes' jobs training; they start in about 20
# Epochs of each node-death job: the head's two jobs (~0.2 s an epoch) outlast the node's
# start, seen up to 6 s behind the head's, twice over; every epoch is asserted logged.
EPOCHS = 20


def _sweep(tmp_path: Path, head: Head, url: str, experiment: str, *overrides: str) -> list[str]:
    """The README's Ray command against a cluster and a server, outputs in tmp_path."""
    return train_command(
        tmp_path,
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address=127.0.0.1:{head.port}",
        "+hydra.launcher.ray.init.object_store_memory=null",
        "+experiment=fast",
        f"tracking.uri={url}",
        f"tracking.experiment={experiment}",
        *overrides,
        store=False,
    )


def _runs(url: str, name: str) -> list:
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def _split(runs: list) -> tuple[list, list]:
    parents = [r for r in runs if "sweep_parent" in r.data.tags]
    return parents, [r for r in runs if "sweep_parent" not in r.data.tags]


def _ran_on(node: Head) -> str:
    """Everything the node's workers printed (Ray keeps it in the node's own session logs)."""
    logs = (node.temp_dir / "session_latest" / "logs").glob("worker-*")
    return "".join(path.read_text(errors="replace") for path in logs)


@dataclass
class Cluster:
    """A tracking server with PostgreSQL behind it and a Ray head, shared by this module's
    tests; each test adds and ends a node of its own."""

    url: str
    store: Path  # the server's state: its PostgreSQL cluster, mlflow.log, served artifacts
    ports: tuple[int, int]  # the server's and PostgreSQL's
    head: Head
    env: dict[str, str]
    killed: set[int]  # processes that outlived their stop and had to be SIGKILLed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp_path = tmp_path_factory.mktemp("cluster")
    env = ray_env(tmp_path / "auth_token")
    # A node that dies is told within seconds (Ray's defaults: 3 s x 5 missed checks).
    env |= {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    # The server's state in a folder PostgreSQL's user can enter when the tests run as root
    # (a tmp_path is private to this user).
    store = Path(tempfile.mkdtemp(prefix="mlflow-server-"))
    store.chmod(0o711)
    tracking_port, pg_port = free_ports(2)
    killed: set[int] = set()
    # The server and the head start at once; the head's ports are not the server's.
    server = tracking_server(store, tracking_port, killed, "postgres", pg_port)
    head_node = ray_head(
        tmp_path / "head", env, killed, "--num-cpus=1", avoid=frozenset({tracking_port, pg_port})
    )
    try:
        with started_together(server, head_node) as (url, head):
            yield Cluster(url, store, (tracking_port, pg_port), head, env, killed)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    assert killed == set(), f"these outlived their SIGTERM by {STOP_TIMEOUT} s and were SIGKILLed"


def test_two_nodes_share_a_sweep_and_log_only_through_the_server(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four jobs on the head and a second node, each with one CPU: both nodes run jobs. The
    launcher runs from a folder of its own; runs, models and artifacts go through the server
    (PostgreSQL behind it, artifacts served from its folder): no `mlruns` anywhere, and the
    models load and score from the launcher's side as they scored in their runs."""
    launcher, url = tmp_path / "launcher", cluster.url
    launcher.mkdir()
    with ray_worker_node(tmp_path / "node", cluster.env, cluster.killed, cluster.head) as node:
        overrides = ("model=pca,mahalanobis", "data=case1,case2")
        command = _sweep(tmp_path, cluster.head, url, "two-nodes", *overrides)
        returncode, output = run_sweep(command, cluster.env, launcher, cluster.head, node)
        assert returncode == 0, failure(output, tmp_path / "multirun")
        node_log = _ran_on(node)
    head_log = _ran_on(cluster.head)
    runs = _runs(url, "two-nodes")
    (parent,), children = _split(runs)
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    assert [r.info.status for r in children] == ["FINISHED"] * 4
    # Each node ran jobs of its own: every run's end is in exactly one node's worker logs.
    ids = {r.info.run_id for r in children}
    on_head = {i for i in ids if f"run {i} finished" in head_log}
    on_node = {i for i in ids if f"run {i} finished" in node_log}
    assert on_head and on_node and on_head | on_node == ids and not on_head & on_node
    # Artifacts went through the server: its URIs, its folder, and no store on any side.
    assert {r.info.artifact_uri.split(":")[0] for r in runs} == {"mlflow-artifacts"}
    assert len(list((cluster.store / "artifacts").rglob("MLmodel"))) == 4  # one model a run
    for folder in (tmp_path, cluster.head.log.parent):  # the launcher's, the nodes', the jobs'
        assert list(folder.rglob("mlruns")) == [] and list(folder.rglob("mlflow.db")) == []
    assert list(launcher.iterdir()) == []  # the launcher's folder: nothing written at all

    # The models load and score from the launcher's side, as they scored in their runs.
    monkeypatch.chdir(launcher)
    new_data = tmp_path / "new.csv"
    values, channels = seed_series(4)  # case 2's test rows, thinned as +experiment=fast
    pd.DataFrame(values[10_000:][::20], columns=channels).to_csv(new_data, index=False)
    case2 = [r.info.run_id for r in children if r.data.tags["data"] == "case2"]
    assert len(case2) == 2
    for run_id in case2:
        out = tmp_path / f"{run_id}.csv"
        argv = ["score", "--model", f"runs:/{run_id}/model", "--input", str(new_data)]
        assert run(main, [*argv, "--output", str(out), "--tracking-uri", url]) == 0
        logged = download_artifacts(
            f"runs:/{run_id}/scores/test_scores.csv",
            tracking_uri=url,
            dst_path=str(tmp_path / "downloads" / run_id),
        )
        scores, logged_scores = pd.read_csv(out), pd.read_csv(logged)
        np.testing.assert_allclose(scores["score"], logged_scores["score"], rtol=1e-9)
        np.testing.assert_array_equal(scores["flag"], logged_scores["flag"])
    assert list(launcher.iterdir()) == []


def _running_on(url: str, experiment: str, nodes: dict[str, Head]) -> dict[str, list]:
    """node name -> the job runs RUNNING on it that have logged an epoch (a run's process is
    found among the node's processes by its pid tag)."""
    pids = {name: marked(node.mark) for name, node in nodes.items()}
    found: dict[str, list] = {name: [] for name in nodes}
    for run_ in _runs(url, experiment):
        if run_.info.status != "RUNNING" or "loss" not in run_.data.metrics:
            continue
        for name, processes in pids.items():
            if int(run_.data.tags.get("pid", "0")) in processes:
                found[name].append(run_)
    return found


def test_a_node_that_dies_and_a_server_that_restarts_lose_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Three LSTM jobs on the head and a second node. Once both nodes train, the second node
    is SIGKILLed whole (raylet, agents, workers: a machine lost) and the tracking server is
    stopped and started again while the head's job trains. Ray runs the dead node's job again
    on the head; the head's job retries its calls through the restart. The same command again
    closes the dead node's run KILLED with its reason and redoes nothing: 0 runs RUNNING, one
    FINISHED run per job, every epoch of every run in its metric history."""
    url, experiment, launcher = cluster.url, "node-death", tmp_path / "launcher"
    launcher.mkdir()
    overrides = ("model=standard", "seed=0,1,2", f"train.epochs={EPOCHS}", "train.patience=1000")
    command = _sweep(
        tmp_path, cluster.head, url, experiment, *overrides, "tracking.log_model=false"
    )
    nodes = {"head": cluster.head}
    with ray_worker_node(tmp_path / "node", cluster.env, cluster.killed, cluster.head) as node:
        nodes["node"] = node
        sweep = start_sweep(command, cluster.env, launcher)
        try:
            training = _wait_for_both(sweep, url, experiment, nodes)
            (on_head,), (on_node,) = training["head"], training["node"]
            head_job = int(on_head.data.tags["pid"])
            os.kill(head_job, signal.SIGSTOP)  # held mid-fit until the server has gone
            try:
                assert kill_node(node)
                server.stop(cluster.store)
            finally:
                os.kill(head_job, signal.SIGCONT)  # its calls now meet a closed port and retry
            time.sleep(1)
            server.start(cluster.store, cluster.ports[0], "postgres", cluster.ports[1])
        except BaseException:
            os.killpg(sweep.pid, signal.SIGKILL)
            raise
        returncode, output = finish_sweep(sweep, cluster.head)
    runs = _runs(url, experiment)
    (parent,), children = _split(runs)
    dead = next(r for r in children if r.info.run_id == on_node.info.run_id)
    # The sweep's end closed the dead node's run KILLED, with a reason, and counted it.
    assert dead.info.status == "KILLED" and dead.data.tags["error"]
    assert (returncode, parent.info.status) == (1, "FAILED"), failure(output, tmp_path / "multirun")
    assert parent.data.metrics["jobs_killed"] == 1
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    assert len(finished) == 3 and on_head.info.run_id in finished
    assert {r.data.params["seed"] for r in children if r.info.run_id in finished} == set("012")

    # The same command again: the dead run is closed, the finished jobs are skipped.
    returncode, output = run_sweep(command, cluster.env, launcher, cluster.head)
    assert returncode == 0, failure(output, tmp_path / "multirun")
    runs = _runs(url, experiment)
    parents, children = _split(runs)
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []
    assert parents[-1].info.status == "FINISHED"
    assert parents[-1].data.metrics["jobs_skipped"] == 3
    assert {r.info.run_id for r in children if r.info.status == "FINISHED"} == finished
    dead = next(r for r in children if r.info.run_id == on_node.info.run_id)
    assert dead.info.status == "KILLED" and dead.data.tags["error"]
    assert len(children) == 4  # three finished and the dead node's: no job ran twice
    client = MlflowClient(tracking_uri=url)
    for run_id in finished:  # every epoch's point is there, the restart's included
        epochs = client.get_run(run_id).data.metrics["epochs_run"]
        assert len(client.get_metric_history(run_id, "loss")) == epochs == EPOCHS


def _wait_for_both(
    sweep: subprocess.Popen[str], url: str, experiment: str, nodes: dict[str, Head]
) -> dict[str, list]:
    deadline = time.monotonic() + WAIT_TIMEOUT
    while not all((training := _running_on(url, experiment, nodes)).values()):
        if sweep.poll() is not None or time.monotonic() > deadline:
            if sweep.poll() is None:
                os.killpg(sweep.pid, signal.SIGKILL)
            output = sweep.communicate()[0][-3000:]
            pytest.fail(f"the two nodes were not seen training together: {training}\n{output}")
        time.sleep(0.3)
    return training
