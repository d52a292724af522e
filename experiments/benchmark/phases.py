"""A run's fixed cost, phase by phase: `src/train.py` as a user runs it, timed from outside.

    .venv/bin/python experiments/benchmark/phases.py [N]   # N runs of each variant, the median

Three variants, interleaved run by run so that the machine's load falls on each alike: the
committed code (HEAD, exported with `git archive`), and the work tree with cold caches (a
new cache folder: the store template is made and XLA compiles) and with warm ones (the
folder of a run before: the store is copied, the executables are loaded).

The command runs in a child process (`--child`) that is `src/train.py` itself, run with
runpy, plus a hook that wraps a few of the package's functions as their modules load (so no
import moves earlier than in a user's run) and writes when each was entered and left. This
process stamps every output line as it arrives and the child's exit. Clocks: `time.time()`
on both sides, one machine.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Row, load

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COMMAND = ["model=sparse", "data=case2", "+experiment=notebook"]

# (module, function): the calls whose enter and exit times the phases are read from.
WATCHED = {
    # check_command and _check_data_and_stores before the jobs' workers were warmed meanwhile
    "sparse_lstm_ad.cli.launch_checks": [
        "check_command",
        "_check_data_and_stores",
        "composed_command",
        "check_inputs",
    ],
    "sparse_lstm_ad.cli.train": ["run_job"],
    "sparse_lstm_ad.tracking": ["prepare_store"],
    "sparse_lstm_ad.pipeline": ["prepare_rows"],
    "sparse_lstm_ad.pipeline.run": ["prepare_rows", "train_model", "score_parts"],
    "sparse_lstm_ad.detectors.network": ["fresh_tensorflow"],  # just after TensorFlow loads
}


# --- the child: src/train.py, watched --------------------------------------------------------


class _Watch(importlib.abc.MetaPathFinder):
    """Wraps the WATCHED functions of a module as soon as it has run."""

    def __init__(self, events: list) -> None:
        self.events = events

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in WATCHED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            for function in WATCHED[name]:
                if hasattr(module, function):  # the names of HEAD's code or of this tree's
                    setattr(module, function, self._wrapped(getattr(module, function), function))

        spec.loader.exec_module = exec_module
        return spec

    def _wrapped(self, function: Any, label: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            entered = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                self.events.append((label, entered, time.time()))

        return wrapper


def child(events_file: str, argv: list[str]) -> None:
    import atexit
    import runpy

    events: list = [("python", time.time(), time.time())]
    atexit.register(lambda: Path(events_file).write_text(json.dumps(events)))
    sys.meta_path.insert(0, _Watch(events))
    sys.argv = ["src/train.py", *argv]
    runpy.run_path(str(Path.cwd() / "src" / "train.py"), run_name="__main__")


# --- this process: one timed run, its phases --------------------------------------------------


def timed_run(overrides: list[str], root: Path, env: dict[str, str]) -> dict[str, float]:
    """One run of the command, from the code in `root`, into a new store: its phases."""
    with tempfile.TemporaryDirectory() as tmp:
        where = [f"tracking.dir={tmp}/mlruns", f"hydra.run.dir={tmp}/out"]
        events_file = f"{tmp}/events.json"
        command = [sys.executable, "-u", __file__, "--child", events_file, *overrides, *where]
        started = time.time()
        process = subprocess.Popen(
            command,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # The package from `root`: ahead of the work tree's editable install.
            env={**os.environ, "PYTHONPATH": str(root / "src"), **env},
        )
        lines = [(time.time(), line) for line in process.stdout]  # type: ignore[union-attr]
        code = process.wait()
        ended = time.time()
        if code != 0:
            raise RuntimeError("".join(line for _, line in lines[-30:]))
        events = json.loads(Path(events_file).read_text())
    return phases(started, ended, lines, events)


def phases(started: float, ended: float, lines: list, events: list) -> dict[str, float]:
    def spans(label: str) -> list[tuple[float, float]]:
        return [(a, b) for name, a, b in events if name == label]

    def total(label: str) -> float:
        return sum(b - a for a, b in spans(label))

    def first(label: str) -> tuple[float, float]:
        return spans(label)[0]

    def within(label: str, span: tuple[float, float]) -> float:
        return sum(b - a for a, b in spans(label) if span[0] <= a and b <= span[1])

    logged = [at for at, line in lines if line.startswith("[")]
    epochs = [at for at, line in lines if " - epoch " in line]
    check = first("composed_command" if spans("composed_command") else "check_command")
    checks = first("check_inputs" if spans("check_inputs") else "_check_data_and_stores")
    job = first("run_job")
    rows = next(span for span in spans("prepare_rows") if span[0] >= job[0])
    fit, tf_ready = first("train_model"), first("fresh_tensorflow")
    # Hydra composes again, its callbacks open the store: from the end of the checks (the end of
    # check_command, or of check_inputs after composed_command) to the job.
    hydra = (max(check[1], checks[1]), job[0])
    checked = {label: within(label, checks) for label in ("prepare_rows", "prepare_store")}
    later_epochs = epochs[-1] - epochs[0]
    return {
        "python start": events[0][1] - started,
        "imports (Hydra, OmegaConf, the CLI)": check[0] - events[0][1],
        "compose (every job's, then Hydra's)": (checks[0] - check[0])
        + (hydra[1] - hydra[0] - within("prepare_store", hydra)),
        "imports in the checks (MLflow, pandas, the pipeline)": checks[1]
        - checks[0]
        - sum(checked.values()),
        "store (create, open, close dead runs)": total("prepare_store"),
        "data (load, standardise; checks and run)": total("prepare_rows"),
        "job set-up (identity, earlier run)": rows[0] - job[0],
        "run set-up (windows, start run, params, datasets)": fit[0] - rows[1],
        "imports (TensorFlow, Keras)": tf_ready[0] - fit[0],
        "first epoch (build, trace, compile or load)": epochs[0] - tf_ready[1],
        "epochs 2+": later_epochs,
        "scoring (error model, scores)": fit[1] - epochs[-1] + total("score_parts"),
        "logging (metrics, plots, model, end)": logged[-1] - fit[1] - total("score_parts"),
        "exit (last log line to exit)": ended - logged[-1],
        "whole command": ended - started,
        "command to first epoch line": epochs[0] - started,
        "fixed cost (all but epochs 2+)": (ended - started) - later_epochs,
    }


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def head_copy(folder: Path) -> str:
    """The committed code, exported into `folder` (git's state is left as it is)."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    return commit.stdout.decode().strip()


def compare(count: int) -> tuple[dict[str, dict[str, float]], list[str], str]:
    """Median phases of each variant over `count` interleaved rounds; the loads seen."""
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        head, warm = Path(tmp) / "head", Path(tmp) / "warm-cache"
        head.mkdir()
        commit = head_copy(head)
        off = {"SPARSE_LSTM_AD_XLA_CACHE": "off"}  # HEAD knows no cache; kept off for it alike
        timed_run([*COMMAND], ROOT, {"SPARSE_LSTM_AD_CACHE": str(warm)})  # fills the warm one
        runs: dict[str, list] = {"before": [], "cold": [], "warm": []}
        for round_ in range(count):
            loads.append(load())
            runs["before"].append(timed_run(COMMAND, head, off))
            cold = {"SPARSE_LSTM_AD_CACHE": f"{tmp}/cold-{round_}"}
            runs["cold"].append(timed_run(COMMAND, ROOT, cold))
            runs["warm"].append(timed_run(COMMAND, ROOT, {"SPARSE_LSTM_AD_CACHE": str(warm)}))
            print(f"phases round {round_ + 1}/{count}, load before it {loads[-1]}", file=sys.stderr)
    return {name: median_phases(r) for name, r in runs.items()}, loads, commit


def phase_table(medians: dict[str, dict[str, float]], commit: str) -> str:
    lines = [
        f"| phase (median) | before (HEAD {commit}) | now, cold caches | now, warm caches |",
        "|---|---|---|---|",
    ]
    for key in medians["before"]:
        cells = " | ".join(f"{medians[v][key]:.2f} s" for v in ("before", "cold", "warm"))
        lines.append(f"| {key} | {cells} |")
    return "\n".join(lines)


def startup_phase_rows(count: int = 3) -> tuple[list[Row], list[str]]:
    """The issue's targets as rows (before vs now, warm caches) and the whole phase table."""
    medians, loads, commit = compare(count)
    rows = [
        Row(
            "whole CLI run, seed config: HEAD vs now (warm caches)",
            *_pair(medians, "whole command"),
        ),
        Row(
            "  command to first epoch line", *_pair(medians, "command to first epoch line"), "< 4 s"
        ),
        Row("  last log line to exit", *_pair(medians, "exit (last log line to exit)"), "< 0.3 s"),
        Row(
            "  fixed cost (all but epochs 2+)",
            *_pair(medians, "fixed cost (all but epochs 2+)"),
            "< 5 s",
        ),
        Row("  first epoch", *_pair(medians, "first epoch (build, trace, compile or load)")),
    ]
    notes = [
        "",
        f"### Start-up: `src/train.py {' '.join(COMMAND)}`, phase by phase",
        "",
        f"{count} rounds, each running the three variants in turn, into new stores; the 1-minute "
        f"load before each round: {', '.join(loads)}.",
        "",
        phase_table(medians, commit),
        "",
    ]
    return rows, notes


def _pair(medians: dict[str, dict[str, float]], key: str) -> tuple[float, float]:
    return medians["before"][key], medians["warm"][key]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3:])
    else:
        from common import table

        rows, notes = startup_phase_rows(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
        print(table(rows))
        print("\n".join(notes))
