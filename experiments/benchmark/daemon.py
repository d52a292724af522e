"""The seed run served by the train daemon, against the same run in its own process and the
reference script: the whole command, command to first epoch line, fixed cost, exit.

    .venv/bin/python experiments/benchmark/daemon.py [N]   # N interleaved rounds, the medians

Each round runs `src/train.py model=sparse data=case2 +experiment=notebook` (30 epochs) into
a new store twice: in its own process (SPARSE_LSTM_AD_DAEMON=off) and handed to a daemon
started for this benchmark (`sparse-lstm-ad daemon start`), as a user types it. Both use one
cache folder, filled by a first run (the store template, XLA's executables): a user's next
run. Once before the rounds, the daemon's first command: its imports paid at its start, the
epoch graphs not yet traced. The reference script runs before and after the rounds. This
process stamps each output line as it arrives and the command's exit (`time.time()`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import load, machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COMMAND = ["model=sparse", "data=case2", "+experiment=notebook"]
FIGURES = ("whole command", "command to first epoch line", "fixed cost", "last log line to exit")


def timed(env: dict[str, str], store: Path) -> dict[str, float]:
    """One `src/train.py` command into `store`, stamped from outside."""
    command = [sys.executable, "src/train.py", *COMMAND, f"tracking.dir={store}"]
    command.append(f"hydra.run.dir={store}/out")
    started = time.time()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = [(time.time(), line) for line in process.stdout]  # type: ignore[union-attr]
    if process.wait() != 0:
        raise RuntimeError("".join(line for _, line in lines[-20:]))
    ended = time.time()
    epochs = [at for at, line in lines if " - epoch " in line]
    last_log = [at for at, line in lines if line.startswith("[")][-1]
    return {
        "whole command": ended - started,
        "command to first epoch line": epochs[0] - started,
        "fixed cost": (ended - started) - (epochs[-1] - epochs[0]),
        "last log line to exit": ended - last_log,
    }


def reference_seconds(folder: Path) -> float:
    started = time.time()
    subprocess.run(
        [sys.executable, str(HERE / "reference.py"), str(folder)],
        cwd=folder,  # it draws its plot where it runs
        check=True,
        capture_output=True,
    )
    return time.time() - started


def daemon(env: dict[str, str], action: str) -> str:
    command = [sys.executable, "-m", "sparse_lstm_ad", "daemon", action]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def measure(rounds: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        base = {**os.environ, "SPARSE_LSTM_AD_CACHE": f"{tmp}/cache"}
        own = {**base, "SPARSE_LSTM_AD_DAEMON": "off"}
        served = {**base, "SPARSE_LSTM_AD_DAEMON": f"{tmp}/d.sock"}
        references = [reference_seconds(Path(tmp))]
        timed(own, Path(tmp) / "fill")  # the caches, as a user's earlier run left them
        started = time.time()
        print(daemon(served, "start").strip(), file=sys.stderr)
        daemon_start = time.time() - started
        first = timed(served, Path(tmp) / "first")
        runs: dict[str, list[dict[str, float]]] = {"own": [], "served": []}
        loads = []
        for number in range(rounds):
            loads.append(load())
            runs["own"].append(timed(own, Path(tmp) / f"own-{number}"))
            runs["served"].append(timed(served, Path(tmp) / f"served-{number}"))
            print(f"round {number + 1}/{rounds}, load before it {loads[-1]}", file=sys.stderr)
        daemon(served, "stop")
        references.append(reference_seconds(Path(tmp)))
    return report(runs, first, daemon_start, references, loads)


def report(runs: dict, first: dict, daemon_start: float, references: list, loads: list) -> str:
    median = {
        name: {k: statistics.median(r[k] for r in rs) for k in FIGURES} for name, rs in runs.items()
    }
    reference = statistics.median(references)
    lines = [
        f"Machine: {machine()}; {len(runs['own'])} rounds; loads before each: {', '.join(loads)}.",
        "",
        "| figure (median) | own process | daemon's first command | served by the daemon |",
        "|---|---|---|---|",
        *(
            f"| {k} | {median['own'][k]:.2f} s | {first[k]:.2f} s | {median['served'][k]:.2f} s |"
            for k in FIGURES
        ),
        f"| reference script / whole command | {reference / median['own']['whole command']:.2f}x"
        f" | {reference / first['whole command']:.2f}x"
        f" | {reference / median['served']['whole command']:.2f}x |",
        "",
        f"- Reference script: {', '.join(f'{s:.1f} s' for s in references)} (before, after).",
        f"- `sparse-lstm-ad daemon start` until ready: {daemon_start:.1f} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
