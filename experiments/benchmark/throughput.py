"""Sweep throughput: one 8-job multirun through the serial, joblib and Ray launchers.

Each into a new store, from the shell as a user runs it. Jobs per minute count the whole
command (checks, store set-up, worker start); the time to the first epoch line is read from
the serial sweep's log, per job: the first job traces and compiles, the later ones reuse the
graphs their worker keeps (sparse_lstm_ad.graph_cache).
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from common import ROOT, Row, run_child

SWEEP = ["src/train.py", "-m", "model=standard,sparse", "data=case1,case2", "seed=0,1"]
LAUNCHERS = {"serial": [], "joblib": ["hydra/launcher=joblib"], "ray": ["hydra/launcher=ray"]}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def sweep_rows(epochs: int) -> tuple[list[Row], list[str]]:
    sweep = [*SWEEP, f"train.epochs={epochs}"]
    walls, logs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher in LAUNCHERS.items():
            where = [f"tracking.dir={tmp}/{name}/mlruns", f"hydra.sweep.dir={tmp}/{name}/out"]
            command = [sys.executable, *sweep, *launcher, *where]
            if name == "ray":
                walls[name], logs[name] = ray_sweep(command, Path(tmp))
            else:
                walls[name], _, logs[name] = run_child(command)
    first, later = first_epoch_waits(logs["serial"])
    per_minute = {name: 8 * 60 / wall for name, wall in walls.items()}
    rows = [
        Row("8-job sweep, serial launcher: jobs per minute", None, per_minute["serial"], unit=""),
        Row("8-job sweep, joblib 2 workers: jobs per minute", None, per_minute["joblib"], unit=""),
        Row(
            "8-job sweep, Ray 2 CPUs, local head: jobs per minute", None, per_minute["ray"], unit=""
        ),
        Row("8-job sweep: serial vs joblib (wall)", walls["serial"], walls["joblib"], ">= 1.8x"),
        Row("8-job sweep: serial vs Ray (wall)", walls["serial"], walls["ray"]),
        Row(
            "time to the first epoch line: first job vs later jobs (median), serial",
            first,
            statistics.median(later),
            ">= 3x",
        ),
    ]
    notes = [
        f"- 8-job sweep: `{' '.join(sweep)}` + the launcher's overrides, each into a new store; "
        f"walls serial {walls['serial']:.1f} s, joblib {walls['joblib']:.1f} s, "
        f"Ray {walls['ray']:.1f} s.",
        f"- time from a job's launch line to its first epoch line, serial: "
        f"{', '.join(f'{s:.2f}' for s in [first, *later])} s.",
    ]
    return rows, notes


def ray_sweep(command: list[str], tmp: Path) -> tuple[float, str]:
    """The sweep on a Ray head of 2 CPUs on 127.0.0.1, the head the test suite starts.

    Not a head started by `ray.init`: that one listens on every interface. The head's own
    start (about 4 s) is not counted; the sweep's connection to it is.
    """
    sys.path.insert(0, str(ROOT))
    from tests.test_ray_launcher import _ray_env, ray_head

    env, killed = _ray_env(tmp / "ray-token"), set()
    with ray_head(tmp / "ray-head", env, killed) as head:
        joined = [
            f"hydra.launcher.ray.init.address=127.0.0.1:{head.port}",
            # The head sets it: ray.init refuses it when joining a running cluster.
            "+hydra.launcher.ray.init.object_store_memory=null",
        ]
        wall, _, log = run_child([*command, *joined], env=env)
    return wall, log


def first_epoch_waits(log: str) -> tuple[float, list[float]]:
    """Seconds from each job's launch line (`#N :`) to its first `epoch 1/` line."""
    launched: dict[int, datetime] = {}
    waits: dict[int, float] = {}
    for line in log.splitlines():
        stamp = STAMP.match(line)
        if stamp is None:
            continue
        at = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f")
        if (job := re.search(r"\t#(\d+) : ", line)) is not None:
            launched[int(job[1])] = at
        elif (job := re.search(r"\[job (\d+)\] epoch 1/", line)) is not None:
            number = int(job[1])
            waits.setdefault(number, (at - launched[number]).total_seconds())
    ordered = [waits[n] for n in sorted(waits)]
    return ordered[0], ordered[1:]
