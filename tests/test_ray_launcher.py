"""A distributed sweep: a real Ray head and an MLflow tracking server, both on 127.0.0.1."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, seed_store, train_command
from tests.ray_head import (
    STOP_TIMEOUT,
    failure,
    free_ports,
    group_and_descendants,
    listening,
    ray_env,
    ray_head,
    run_sweep,
    started_together,
    tracking_server,
    wait_gone,
)

pytestmark = pytest.mark.slow
# The launcher is an optional extra (pip install -e .[ray]); `make test` installs it.
pytest.importorskip("hydra_plugins.hydra_ray_launcher")

LOOPBACK = ("127.0.0.1:", "[::ffff:127.0.0.1]:")
SWEEP_TIMEOUT = 240  # seconds; the four jobs take about 15


def _sweep_command(tmp_path: Path, port: int, url: str) -> list[str]:
    """Four jobs through the README's command, in the smallest settings: two baselines (no
    TensorFlow to import in each Ray worker; an LSTM trains in Ray workers in
    test_ray_multinode.py's node-death test) on two seeds."""
    return train_command(
        tmp_path,
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
        # The head sets it: ray.init refuses it when joining a running cluster.
        "+hydra.launcher.ray.init.object_store_memory=null",
        "+experiment=fast",
        "model=pca,mahalanobis",
        "seed=0,1",
        f"tracking.uri={url}",
        "tracking.experiment=ray-sweep",
        "tracking.log_model=false",
        store=False,
    )


def test_ray_sweep_logs_four_children_under_one_parent(
    tmp_path: Path, store_template: Path
) -> None:
    env = ray_env(tmp_path / "auth_token")
    (tracking_port,) = free_ports(1)
    store = tmp_path / "server"
    # The server's database starts migrated (a copy of the empty store): the head, started
    # beside it, waits on the server's schema migrations otherwise.
    seed_store(store_template, store, served=True)
    killed: set[int] = set()  # processes that outlived their stop and had to be SIGKILLed
    # The server and the head start at once; the head's ports are not the server's.
    server = tracking_server(store, tracking_port, killed)
    head_node = ray_head(tmp_path / "head", env, killed, avoid=frozenset({tracking_port}))
    with started_together(server, head_node) as (url, head):
        command = _sweep_command(tmp_path, head.port, url)
        returncode, output = run_sweep(command, env, ROOT, head, timeout=SWEEP_TIMEOUT)
        assert returncode == 0, failure(output, tmp_path / "multirun")
        mlflow_server = int((store / "mlflow.pid").read_text())
        ours = group_and_descendants(head.pid) | group_and_descendants(mlflow_server)
        if shutil.which("ss") is None:
            warnings.warn(
                "`ss` (iproute2) is not installed: the check that the Ray head and the tracking "
                "server listen on 127.0.0.1 only was skipped",
                stacklevel=1,
            )
        else:
            lines = listening(ours)
            assert any(f":{head.port} " in line for line in lines), lines  # the GCS is among them
            assert all(line.split()[3].startswith(LOOPBACK) for line in lines), lines
        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("ray-sweep")
        runs = client.search_runs([experiment.experiment_id])
    assert wait_gone(ours) == set()
    assert killed == set(), f"these outlived their SIGTERM by {STOP_TIMEOUT} s and were SIGKILLed"

    (parent,) = [r for r in runs if "sweep_parent" in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 4
    assert [r.info.status for r in children] == ["FINISHED"] * 4
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    combos = {(r.data.params["model.kind"], r.data.params["seed"]) for r in children}
    assert combos == {(kind, seed) for kind in ("pca", "mahalanobis") for seed in "01"}
    # The jobs ran in Ray workers, not in the driver, each on the one CPU its task reserved.
    assert parent.data.tags["pid"] not in {r.data.tags["pid"] for r in children}
    assert {r.data.params["threads"] for r in children} == {"1"}
    # hydra.sweep.dir is absolute: the job folders land there, not where `ray start` ran.
    assert sorted(p.name for p in (tmp_path / "multirun").iterdir() if p.is_dir()) == list("0123")
