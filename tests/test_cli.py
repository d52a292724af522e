"""Integration: `src/train.py` with the real config and tiny overrides, in a temp MLflow store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import QUICK_EXIT, ROOT

pytestmark = pytest.mark.slow

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _client(tmp_path: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")


def _runs(tmp_path: Path) -> list[mlflow.entities.Run]:
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("sparse-lstm-ad")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_single_run_logs_everything(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparse_lstm_ad import tracking

    # MLflow logs no system metrics for a run shorter than one sampling interval (its monitor
    # waits first, then stops), and this warm, fast run can end within the 2 s default.
    monkeypatch.setattr(tracking, "SYSTEM_METRICS_SECONDS", 0.2)
    # The one CLI run that creates its store (the others start from a copy of an empty one).
    result = run_cli("+experiment=fast", "model=sparse", fresh_store=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "+experiment=fast model=sparse"
    # TensorFlow's import-time absl lines are muted (cli.quiet.quiet_tensorflow_import).
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr, result.stderr[-3000:]
    # The run's page on the UI's training view: MLflow 3.17 opens GenAI's without the ask.
    link = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert f"in the MLflow UI: {link}?workflowType=machine_learning" in result.stdout

    params = run.data.params
    assert params["model.kind"] == "sparse_gate" and params["data.window"] == "15"
    assert params["train.epochs"] == "2" and params["data.every"] == "20"
    assert run.data.tags["model"] == "sparse" and run.data.tags["data"] == "case2"
    assert len(run.data.tags["git_commit"]) in (40, len("unknown"))

    metrics = run.data.metrics
    for key in ("auc_roc", "auc_pr", "f1", "precision", "recall", "threshold", "fit_seconds"):
        assert np.isfinite(metrics[key]), key
    assert metrics["epochs_run"] == 2 and 0.5 <= metrics["auc_roc"] <= 1

    client = _client(tmp_path)
    for key in ("loss", "val_loss", "mse", "val_mse", "sparsity", "sparse_l1", "epoch_seconds"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [point.step for point in history] == [1, 2], key

    artifacts = {
        a.path
        for folder in ("plots", "config", "scores")
        for a in client.list_artifacts(run.info.run_id, folder)
    }
    assert artifacts == {
        "plots/learning_curves.png",
        "plots/test_scores.png",
        "plots/score_histogram.png",
        "plots/sparse_weights.png",
        "plots/sparse_channel_mass.png",
        "plots/sparse_channel_mass.csv",
        "plots/attribution.png",
        "config/config.yaml",
        "config/overrides.yaml",
        "scores/test_scores.csv",
        "scores/val_scores.csv",
    }
    assert "epoch 2/2" in result.stdout and run.info.run_id in result.stdout
    # What the MLflow UI shows: the training-runs view, the Datasets column, the System
    # metrics tab, a model named after what it is.
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    datasets = {entry.dataset.name for entry in run.inputs.dataset_inputs}
    assert datasets == {"case2-training", "case2-validation", "case2-testing"}
    assert "system/cpu_utilization_percentage" in metrics
    assert run.data.tags["scoring_model"] == "sparse-case2"


def test_logged_model_scores_identically_in_a_fresh_process(
    run_cli: RunCli, tmp_path: Path
) -> None:
    assert run_cli("+experiment=fast", "model=sparse_projection").returncode == 0
    (run,) = _runs(tmp_path)
    # The logged model is named after the model and the data: told apart in the UI.
    assert run.data.tags["scoring_model"] == "sparse_projection-case2"
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    # The fresh process knows the store and the run id only: no config, no training data.
    script = textwrap.dedent(f"""
        import mlflow, pandas as pd
        from sparse_lstm_ad.data import seed_series
        mlflow.set_tracking_uri({uri!r})
        model = mlflow.pyfunc.load_model("runs:/{run.info.run_id}/sparse_projection-case2")
        values, channels = seed_series(4)
        frame = pd.DataFrame(values[10_000:][::20], columns=channels)
        model.predict(frame).to_csv({str(tmp_path / "pyfunc.csv")!r}, index=False)
    """)
    result = subprocess.run(
        [sys.executable, "-c", QUICK_EXIT + script], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]

    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run.info.run_id}/scores/test_scores.csv", tracking_uri=uri
        )
    )
    reloaded = pd.read_csv(tmp_path / "pyfunc.csv")
    assert len(reloaded) == len(logged)
    np.testing.assert_array_equal(reloaded["score"], logged["score"])
    np.testing.assert_array_equal(reloaded["flag"].astype(int), logged["flag"])
    assert {"contribution_F1", "contribution_F2_4"} <= set(reloaded.columns)


def test_asd_run_logs_range_metrics_and_attribution(run_cli: RunCli, tmp_path: Path) -> None:
    asd = ROOT.parent / "shared" / "data" / "asd"
    if not asd.is_dir():
        pytest.skip(f"the ASD data is not beside the repository ({asd})")
    result = run_cli(
        "+experiment=fast",
        "data=asd",
        "data.entity=omi-1",
        "model=sparse_projection",
        f"data.csv.dir={asd}",
        "tracking.log_model=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["data"] == "asd_omi1"  # as its preset
    for key in (
        "auc_roc",
        "auc_pr",
        "f1",
        "vus_roc",
        "vus_pr",
        "point_adjusted_f1",
        "hit_rate_100",
        "hit_rate_150",
    ):
        assert 0 <= run.data.metrics[key] <= 1, key
    plots = {a.path for a in _client(tmp_path).list_artifacts(run.info.run_id, "plots")}
    assert {"plots/attribution.png", "plots/sparse_channel_mass.png"} <= plots
    # Only the data source in use is logged.
    assert "data.csv.dir" in run.data.params and "data.seed.n_f2" not in run.data.params


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (
            ["score", "--top", "0"],
            "score",
            "Invalid value for '--top': 0 is not in the range x>=1.",
        ),
        (["scor"], "", "No such command 'scor'. Did you mean 'score'?"),
        (["score", "--input", "x.csv"], "score", "Missing option '--model'."),
        (["report"], "report", "Missing argument 'SWEEP'."),
        (
            ["benchmark", "detectors", "--bogus"],
            "benchmark detectors",
            "No such option '--bogus'. (Did you mean one of: '--out', '--verbose'?)",
        ),
    ],
)
def test_a_usage_mistake_is_one_line_naming_the_help(
    argv: list[str], command: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sparse_lstm_ad.cli.main import main, run

    assert run(main, argv) == 2
    help_command = " ".join(["sparse-lstm-ad", command]).strip()
    assert capsys.readouterr() == ("", f"error: {message} (see {help_command} --help)\n")


def test_the_console_script_prints_a_usage_mistake_as_one_line_and_help_whole() -> None:
    script = Path(sys.executable).with_name("sparse-lstm-ad")
    mistake = subprocess.run([script, "score", "--top", "0"], capture_output=True, text=True)
    assert mistake.returncode == 2 and mistake.stdout == ""
    assert mistake.stderr == (
        "error: Invalid value for '--top': 0 is not in the range x>=1. "
        "(see sparse-lstm-ad score --help)\n"
    )
    helped = subprocess.run([script, "score", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and helped.stderr == ""
    assert (
        helped.stdout.startswith("Usage: sparse-lstm-ad score [OPTIONS]")
        and "--top" in helped.stdout
    )
    # The bare command (or group) still shows the whole help, as click does.
    bare = subprocess.run([script], capture_output=True, text=True)
    assert bare.returncode == 2 and "Commands:" in bare.stderr + bare.stdout
