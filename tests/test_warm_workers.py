"""A joblib sweep's workers, started while its inputs are checked (cli.warm_workers).

The launcher's own `Parallel`, made as Hydra's joblib launcher makes it, runs on the warmed
workers; a command that fails its checks leaves no worker behind. In-process: the launcher's
call is made here, as `hydra_plugins.hydra_joblib_launcher._core.launch` makes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
from joblib import Parallel, delayed

from sparse_lstm_ad.cli import train
from sparse_lstm_ad.cli.launch_checks import UsageError, composed_command
from sparse_lstm_ad.cli.warm_workers import joblib_args, start_warmup
from tests.conftest import CONF, QUICK_EXIT, ROOT


def _launcher(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


def _launchers_parallel(launcher) -> Parallel:
    """`Parallel` as the joblib launcher makes it from its config."""
    joblib_cfg = dict(instantiate(launcher).joblib)
    joblib_cfg["backend"] = "loky"
    process_joblib_cfg(joblib_cfg)
    return Parallel(**joblib_cfg)


def test_the_launchers_jobs_run_on_the_warmed_workers() -> None:
    launcher = _launcher("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    warmup = start_warmup(launcher, fit_imports=())
    assert warmup is not None
    warmed = warmup.wait(120)
    assert len(set(warmed)) == 2 and os.getpid() not in warmed

    ran = _launchers_parallel(launcher)(delayed(os.getpid)() for _ in range(6))

    assert set(ran) <= set(warmed)  # no worker started afresh


def test_only_a_joblib_sweep_is_warmed() -> None:
    network = ("sparse_lstm_ad.training",)
    assert start_warmup(None, network) is None  # a single run
    assert start_warmup(_launcher(), network) is None  # the basic launcher
    command = composed_command(["-m", "hydra/launcher=joblib", "model=standard,pca,iforest"], CONF)
    assert command is not None and command.launcher is not None
    assert command.fit_imports == ("sklearn.ensemble", "sparse_lstm_ad.training")  # registry's
    args = joblib_args(_launcher("hydra/launcher=joblib", "hydra.launcher.max_nbytes=1M"))
    assert args is not None and args["backend"] == "loky" and args["max_nbytes"] == "1M"


def test_a_failed_check_leaves_no_worker(tmp_path: Path) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    argv = [
        "-m",
        "hydra/launcher=joblib",
        "model=standard,pca",
        "data=csv",
        f"data.csv.train={tmp_path / 'missing.csv'}",
        f"tracking.dir={tmp_path / 'store'}",
    ]
    with pytest.raises(UsageError, match=r"missing\.csv: no such file"):
        train._check(argv)

    deadline = time.monotonic() + 10
    while (left := _new_workers(before)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"workers left running: {[child.cmdline() for child in left]}"


def _new_workers(before: set[int]) -> list[psutil.Process]:
    """Child processes started since `before`, less the resource trackers, which joblib and
    multiprocessing start once per process and keep until it exits."""
    workers = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid in before or child.status() == psutil.STATUS_ZOMBIE:
                continue
            if not any("resource_tracker" in part for part in child.cmdline()):
                workers.append(child)
        except psutil.NoSuchProcess:
            continue
    return workers


def test_the_warm_imports_leave_tensorflows_threads_to_the_job() -> None:
    """A job gives TensorFlow one thread per joblib worker before TensorFlow starts: had the
    warm-up's imports started it, the job would run on TensorFlow's own thread count (and
    numbers of their own). In a fresh interpreter, as a worker is."""
    code = QUICK_EXIT + (
        "from sparse_lstm_ad.cli.warm_workers import _import_what_a_job_imports\n"
        "_import_what_a_job_imports(('sparse_lstm_ad.training',))\n"
        "import tensorflow as tf\n"
        "from sparse_lstm_ad.detectors.network import fresh_tensorflow\n"
        "fresh_tensorflow(1)\n"
        "threading = tf.config.threading\n"
        "print(threading.get_intra_op_parallelism_threads(),"
        " threading.get_inter_op_parallelism_threads())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.stdout.split() == ["1", "1"], result.stderr[-3000:]


def test_the_parents_checks_load_nothing_only_the_jobs_need(tmp_path: Path) -> None:
    """The parent checks a sweep's inputs while its workers import beside it on the same
    cores: it loads MLflow and pandas for that, not scikit-learn, matplotlib or TensorFlow,
    which only the jobs use (a fresh interpreter: this one has them all)."""
    argv = ["-m", "model=standard,sparse", "data=case1", "hydra/launcher=joblib"]
    argv.append(f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    script = f"""{QUICK_EXIT}
import sys
from pathlib import Path
from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.cli.launch_checks import check_command
register_configs()
check_command({argv!r}, Path({str(CONF)!r}))
assert "mlflow" in sys.modules and "pandas" in sys.modules
print(sorted(name for name in ("sklearn", "matplotlib", "tensorflow") if name in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[-2] == "[]", result.stdout[-2000:]
