"""Whole processes: start-up of the CLI, and a whole CLI run against the reference script."""

from __future__ import annotations

import os
import sys
import tempfile

from common import HERE, Row, load, run_child


def startup_rows() -> tuple[list[Row], list[str]]:
    train = [sys.executable, "src/train.py"]
    hydra = [run_child([sys.executable, "-c", "import hydra"])[0] for _ in range(3)]
    helps = [run_child([*train, "--help"])[0] for _ in range(3)]
    cfgs = [run_child([*train, "--cfg", "job"])[0] for _ in range(3)]
    imports = run_child([sys.executable, "-X", "importtime", "src/train.py", "--help"])[2]
    # -X importtime writes to stderr, which run_child returns after stdout.
    loads_tf = "tensorflow" in imports
    return [
        Row(
            "`src/train.py --help` vs `python -c 'import hydra'` (best of 3)",
            min(hydra),
            min(helps),
            ">= 0.5x",
        ),
        Row("`src/train.py --cfg job` (best of 3)", None, min(cfgs)),
    ], [f"- `--help` imports TensorFlow: {'YES' if loads_tf else 'no'}."]


def cli_rows() -> tuple[list[Row], list[str]]:
    """The seed config's whole run against the reference script: with new caches (the store
    template made, XLA compiling), then with the caches that run left (a user's next run)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SPARSE_LSTM_AD_CACHE": f"{tmp}/cache"}
        ours = [
            run_child(
                [
                    sys.executable,
                    "src/train.py",
                    "+experiment=notebook",
                    f"tracking.dir={tmp}/mlruns-{state}",
                    f"hydra.run.dir={tmp}/outputs-{state}",
                ],
                env=env,
            )
            for state in ("cold", "warm")
        ]
        ref = run_child([sys.executable, str(HERE / "reference.py"), f"{tmp}/reference"])
    return [
        Row(
            "whole CLI run (seed config, case 2, MLflow) vs reference script, new caches",
            ref[0],
            ours[0][0],
            ">= 2.5x",
        ),
        Row("  the same, the caches of the run before", ref[0], ours[1][0], ">= 2.5x"),
        Row("peak RSS of that run", ref[1], ours[1][1], unit="MB"),
    ], [
        f"- reference script: {next(li for li in ref[2].splitlines() if li.startswith('epochs'))}",
        f"- load averages just after the CLI runs and the reference script: {load()}.",
    ]
