"""Sweep throughput: multiruns through the serial, joblib and Ray launchers, one after another.

    .venv/bin/python experiments/benchmark/throughput.py [8|100|both] [launcher ...]

Each sweep goes into a new store, from the shell as a user runs it. Jobs per minute count the
whole command (checks, store set-up, worker start). Two sweeps:
- 8 jobs of the seed config (2 models x 2 cases x 2 seeds, 30 epochs): the time to the first
  epoch line is read from the serial sweep's log, per job: the first job traces and compiles,
  the later ones reuse the graphs their worker keeps (sparse_lstm_ad.graph_cache);
- 100 jobs of `+experiment=fast` (2 models x 2 cases x 25 seeds, a job in seconds): there the
  fixed cost of a job (its run, plots and logged model) is most of its time.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from common import ROOT, Row, load, run_child

SEED_SWEEP = ["src/train.py", "-m", "model=standard,sparse", "data=case1,case2", "seed=0,1"]
FAST_SWEEP = [
    "src/train.py",
    "-m",
    "+experiment=fast",
    "model=standard,sparse",
    "data=case1,case2",
    "seed=range(25)",
]
LAUNCHERS = {"serial": [], "joblib": ["hydra/launcher=joblib"], "ray": ["hydra/launcher=ray"]}
LABELS = {
    "serial": "serial launcher",
    "joblib": "joblib 2 workers",
    "ray": "Ray 2 CPUs, local head",
}
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def run_sweeps(sweep: list[str], launchers: list[str]) -> tuple[dict, dict, dict]:
    """Wall seconds, logs and the load averages before each launcher's sweep.

    Each sweep starts with empty caches of its own (no store template, no XLA executable):
    a sweep after another must not load what the one before compiled.
    """
    walls, logs, loads = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in launchers:
            where = [f"tracking.dir={tmp}/{name}/mlruns", f"hydra.sweep.dir={tmp}/{name}/out"]
            command = [sys.executable, *sweep, *LAUNCHERS[name], *where]
            env = {**os.environ, "SPARSE_LSTM_AD_CACHE": f"{tmp}/{name}/cache"}
            loads[name] = load()
            if name == "ray":
                walls[name], logs[name] = ray_sweep(command, Path(tmp), env)
            else:
                walls[name], _, logs[name] = run_child(command, env=env)
            print(f"{len(logs)}: {name} {walls[name]:.1f} s (load {loads[name]})", file=sys.stderr)
    return walls, logs, loads


def sweep_rows(epochs: int, launchers: list[str] | None = None) -> tuple[list[Row], list[str]]:
    launchers = launchers or list(LAUNCHERS)
    sweep = [*SEED_SWEEP, f"train.epochs={epochs}"]
    walls, logs, loads = run_sweeps(sweep, launchers)
    rows = [
        Row(f"8-job sweep, {LABELS[n]}: jobs per minute", None, 8 * 60 / walls[n], unit="")
        for n in launchers
    ]
    if "joblib" in walls and "serial" in walls:
        rows.append(
            Row("8-job sweep: serial vs joblib (wall)", walls["serial"], walls["joblib"], ">= 1.8x")
        )
    if "ray" in walls and "serial" in walls:
        rows.append(Row("8-job sweep: serial vs Ray (wall)", walls["serial"], walls["ray"]))
    notes = [
        f"- 8-job sweep: `{' '.join(sweep)}` + the launcher's overrides, each into a new store; "
        + ", ".join(f"{n} {walls[n]:.1f} s (load before: {loads[n]})" for n in launchers)
        + "."
    ]
    if "serial" in logs:
        first, later = first_epoch_waits(logs["serial"])
        rows.append(
            Row(
                "time to the first epoch line: first job vs later jobs (median), serial",
                first,
                statistics.median(later),
                ">= 3x",
            )
        )
        notes.append(
            f"- time from a job's launch line to its first epoch line, serial: "
            f"{', '.join(f'{s:.2f}' for s in [first, *later])} s."
        )
    return rows, notes


def fast_sweep_rows(launchers: list[str] | None = None) -> tuple[list[Row], list[str]]:
    launchers = launchers or list(LAUNCHERS)
    walls, logs, loads = run_sweeps(FAST_SWEEP, launchers)
    rows = [
        Row(f"100 fast jobs, {LABELS[n]}: jobs per minute", None, 100 * 60 / walls[n], unit="")
        for n in launchers
    ]
    for name in launchers:
        if name != "serial" and "serial" in walls:
            rows.append(
                Row(f"100 fast jobs: serial vs {name} (wall)", walls["serial"], walls[name])
            )
    notes = [
        f"- 100 fast jobs: `{' '.join(FAST_SWEEP)}` + the launcher's overrides; "
        + ", ".join(f"{n} {walls[n]:.1f} s (load before: {loads[n]})" for n in launchers)
        + "."
    ]
    for name in launchers:
        ends = re.findall(r"^sweep \w+: .*$", logs[name], re.MULTILINE)
        notes.append(f"- 100 fast jobs, {name}: {ends[-1] if ends else 'no end line'}")
    return rows, notes


def ray_sweep(command: list[str], tmp: Path, cache: dict[str, str]) -> tuple[float, str]:
    """The sweep on a Ray head of 2 CPUs on 127.0.0.1, the head the test suite starts.

    Not a head started by `ray.init`: that one listens on every interface. The head's own
    start (about 4 s) is not counted; the sweep's connection to it is.
    """
    sys.path.insert(0, str(ROOT))
    from tests.ray_head import ray_env, ray_head

    env = {**ray_env(tmp / "ray-token"), "SPARSE_LSTM_AD_CACHE": cache["SPARSE_LSTM_AD_CACHE"]}
    killed: set = set()
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


if __name__ == "__main__":
    from common import table

    which = sys.argv[1] if len(sys.argv) > 1 else "8"
    chosen = sys.argv[2:] or None
    rows, notes = [], []
    if which in ("8", "both"):
        rows, notes = sweep_rows(30, chosen)
    if which in ("100", "both"):
        more, text = fast_sweep_rows(chosen)
        rows, notes = rows + more, notes + text
    print(table(rows))
    print("\n".join(notes))
