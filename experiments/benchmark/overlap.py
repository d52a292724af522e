"""Would two processes buy the single run's start-up targets? Its two halves, alone and together.

    .venv/bin/python experiments/benchmark/overlap.py [N]   # N rounds (default 3), medians

A run's work before its first epoch line is two chains that need nothing from each other
until the first epoch's figures are logged:
- the TensorFlow half: `first_epoch.py` (TensorFlow and Keras imported, a trainer for the
  sparse gate on 10,000 x 5 training windows, its training and validation epochs traced, set
  up and run);
- the MLflow half (`--mlflow-side`): what `train` does first and needs no TensorFlow for:
  Hydra's compose, the input checks (MLflow's and pandas' imports, the data, the store) and
  a run started with its parameters, then ended.
In one process they run one after the other (their sum is the first epoch line's time). This
times each half alone, then both started at once as two processes, in interleaved rounds with
warm caches (a first round warms them and is not counted): what a two-process `train` would
save on this machine, before the cost of handing the epochs' figures and the fitted model
from one process to the other, which this does not build.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
COMMAND = ["model=sparse", "data=case2", "+experiment=notebook"]


def mlflow_side(store: str) -> None:
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.cli.hydra_schema import register_configs
    from sparse_lstm_ad.cli.launch_checks import check_inputs, composed_command

    register_configs()
    command = composed_command([*COMMAND, f"tracking.uri={store}"], ROOT / "conf")
    assert command is not None
    check_inputs(command)
    (config,) = command.configs
    with tracking.tracked_run(config.tracking, "overlap", {}):
        tracking.log_params({"model": {"kind": config.model.kind}, "seed": config.seed})


def tensorflow_side() -> None:
    sys.path.insert(0, str(HERE))
    import first_epoch

    first_epoch.main()


def _start(argv: list[str], folder: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, *argv], cwd=folder, env=env, stdout=subprocess.DEVNULL)


def _timed(commands: list[list[str]]) -> float:
    """Wall time from starting every command at once to the last one's exit."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        children = [_start(argv, Path(tmp)) for argv in commands]
        codes = [child.wait() for child in children]  # every one, before its folder goes
        if any(codes):
            raise SystemExit(f"a half failed ({codes}): {commands}")
        return time.perf_counter() - started


def main(rounds: int) -> None:
    from sparse_lstm_ad.cli.compile_cache import use_compile_cache

    # The XLA cache's flag set here, for both halves: the TensorFlow half then finds it set and
    # does not import the tracking package (MLflow) to find the cache's folder.
    use_compile_cache()
    tensorflow = [str(Path(__file__).resolve()), "--tensorflow-side"]
    times: dict[str, list[float]] = {"tensorflow": [], "mlflow": [], "together": []}
    with tempfile.TemporaryDirectory() as store_folder:
        mlflow = [str(Path(__file__).resolve()), "--mlflow-side", f"sqlite:///{store_folder}/m.db"]
        for count in range(rounds + 1):
            walls = {
                "tensorflow": _timed([tensorflow]),
                "mlflow": _timed([mlflow]),
                "together": _timed([tensorflow, mlflow]),
            }
            for name, wall in walls.items():
                if count:  # the first round warms the caches (XLA's executables, the store)
                    times[name].append(wall)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"load averages after: {os.getloadavg()}")
    print(f"| chain | wall (median of {rounds}) | rounds |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {median[name]:.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    one_after_the_other = median["tensorflow"] + median["mlflow"]
    print(
        f"| one after the other (sum) | {one_after_the_other:.2f} s | |\n"
        f"| saved side by side | {one_after_the_other - median['together']:.2f} s | |"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mlflow-side"]:
        mlflow_side(sys.argv[2])
    elif sys.argv[1:2] == ["--tensorflow-side"]:
        tensorflow_side()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
        sys.exit()
    # A half ends as `train` does (cli/train.py): no interpreter teardown, which for
    # TensorFlow is most of a second.
    sys.stdout.flush()
    os._exit(0)
