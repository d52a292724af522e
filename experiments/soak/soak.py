"""A soak of a distributed sweep: 64 fast LSTM jobs on a two-node Ray cluster (this machine,
127.0.0.1 only) logging through a tracking server with PostgreSQL behind it, 8 job processes
SIGKILLed at random moments, then the same sweep command again. Prints what it counted.

    .venv/bin/python experiments/soak/soak.py [--jobs 64] [--kills 8] [--cpus 2] [--seed 0]

Not a test of the suite (minutes, not seconds); its figures are in results.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the tests' helpers that start real Ray nodes and servers

from mlflow.tracking import MlflowClient  # noqa: E402

from tests.conftest import train_command  # noqa: E402
from tests.ray_head import (  # noqa: E402
    finish_sweep,
    free_ports,
    ray_env,
    ray_head,
    ray_worker_node,
    run_sweep,
    start_sweep,
    tracking_server,
)

EXPERIMENT = "soak"


def runs(url: str) -> list:
    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], max_results=10_000)


def kill_at_random(url: str, kills: int, rng: random.Random, done: threading.Event) -> list:
    """SIGKILL the process of a random RUNNING job run, `kills` times, 1 to 6 s apart; every
    other one among the runs that have logged an epoch (mid-fit), the others at any stage."""
    killed, start = [], time.monotonic()
    while len(killed) < kills and not done.wait(rng.uniform(1.0, 6.0)):
        running = [
            r for r in runs(url) if r.info.status == "RUNNING" and "sweep_parent" not in r.data.tags
        ]
        running = [r for r in running if r.info.run_id not in {k["run_id"] for k in killed}]
        if len(killed) % 2 == 0:  # every other kill mid-fit: a run that has logged an epoch
            running = [r for r in running if "loss" in r.data.metrics]
        if not running:
            continue
        victim = rng.choice(running)
        try:
            os.kill(int(victim.data.tags["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            continue  # it ended meanwhile
        killed.append(
            {
                "run_id": victim.info.run_id,
                "seed": victim.data.params["seed"],
                "at_s": round(time.monotonic() - start, 1),
                "epochs_logged": "loss" in victim.data.metrics,
            }
        )
        print(f"[soak] SIGKILLed the job of seed {victim.data.params['seed']}", flush=True)
    return killed


def check(url: str, jobs: int) -> dict:
    """What the store holds after the two commands."""
    client = MlflowClient(tracking_uri=url)
    every = runs(url)
    children = [r for r in every if "sweep_parent" not in r.data.tags]
    finished = [r for r in children if r.info.status == "FINISHED"]
    per_config = collections.Counter(r.data.tags["config_hash"] for r in finished)
    incomplete = [
        r.info.run_id
        for r in finished
        if len(client.get_metric_history(r.info.run_id, "loss")) != r.data.metrics["epochs_run"]
        or len(client.get_metric_history(r.info.run_id, "val_loss")) != r.data.metrics["epochs_run"]
    ]
    # The store is usable: a new experiment, a run and a metric written and read back.
    probe = client.create_experiment(f"probe-{time.time():.0f}")
    run = client.create_run(probe)
    client.log_metric(run.info.run_id, "x", 1.0)
    client.set_terminated(run.info.run_id)
    usable = client.get_run(run.info.run_id).data.metrics == {"x": 1.0}
    return {
        "runs": len(children),
        "statuses": dict(collections.Counter(r.info.status for r in children)),
        "parents": [r.info.status for r in every if "sweep_parent" in r.data.tags],
        "finished_configs": len(per_config),
        "finished_seeds": len({r.data.params["seed"] for r in finished}),
        "duplicates": sum(n - 1 for n in per_config.values()),
        "incomplete_histories": len(incomplete),
        "killed_with_reason": sum(
            1 for r in children if r.info.status == "KILLED" and r.data.tags.get("error")
        ),
        "running": sum(1 for r in every if r.info.status == "RUNNING"),
        "store_usable": usable,
        "jobs": jobs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=64)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs (workers) per node")
    parser.add_argument("--seed", type=int, default=0, help="of the kill moments and victims")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    work.chmod(0o711)  # PostgreSQL's user enters it when run as root
    env = ray_env(work / "auth_token")
    env |= {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    tracking_port, pg_port = free_ports(2)
    stopped: set[int] = set()
    launcher = work / "launcher"
    launcher.mkdir()
    figures: dict = {"command": " ".join(sys.argv), "cpus_per_node": args.cpus}
    try:
        with (
            tracking_server(work / "server", tracking_port, stopped, "postgres", pg_port) as url,
            ray_head(work / "head", env, stopped, f"--num-cpus={args.cpus}") as head,
            ray_worker_node(work / "node", env, stopped, head, f"--num-cpus={args.cpus}"),
        ):
            command = train_command(
                work,
                "-m",
                "hydra/launcher=ray",
                f"hydra.launcher.ray.init.address=127.0.0.1:{head.port}",
                "+hydra.launcher.ray.init.object_store_memory=null",
                "+experiment=fast",
                "train.epochs=3",
                "train.patience=1000",
                f"seed=range(0,{args.jobs})",
                f"tracking.uri={url}",
                f"tracking.experiment={EXPERIMENT}",
                "tracking.log_model=false",
                store=False,
            )
            done = threading.Event()
            started = time.monotonic()
            sweep = start_sweep(command, env, launcher)
            killer_out: list = []
            killer = threading.Thread(
                target=lambda: killer_out.extend(
                    kill_at_random(url, args.kills, random.Random(args.seed), done)
                )
            )
            killer.start()
            returncode, output = finish_sweep(sweep, head, timeout=3600)
            done.set()
            killer.join()
            figures["first"] = {
                "exit": returncode,
                "seconds": round(time.monotonic() - started),
                "statuses": dict(
                    collections.Counter(
                        r.info.status for r in runs(url) if "sweep_parent" not in r.data.tags
                    )
                ),
            }
            figures["kills"] = killer_out
            started = time.monotonic()
            returncode, output = run_sweep(command, env, launcher, head, timeout=3600)
            figures["again"] = {
                "exit": returncode,
                "seconds": round(time.monotonic() - started),
                "tail": output.strip().splitlines()[-3:],
            }
            figures["store"] = check(url, args.jobs)
            figures["mlruns_dirs"] = [str(p) for p in work.rglob("mlruns")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["outlived_their_stop"] = sorted(stopped)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
