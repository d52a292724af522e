"""`register`: a register that fails leaves nothing in the registry; a sweep's best run by a
test metric is said to be an oracle choice, in the help, the output and the version's tag."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.cli.main import main, run
from sparse_lstm_ad.metrics import DetectionMetrics, RangeMetrics
from sparse_lstm_ad.register import chosen_by, sees_test_labels
from tests.conftest import TRAIN, store_runs, train_in_process

ORACLE = "chosen by auc_pr on the test labels: an oracle choice, for comparison only"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp folder holding `mlruns/` with a one-job sweep of a fast baseline (its job run and
    the sweep's parent run, which logged no model) and the sweep's `multirun/`."""
    folder = tmp_path_factory.mktemp("register")
    command = [sys.executable, str(TRAIN), "-m", "model=mahalanobis", "data=case1"]
    command += ["+experiment=fast", f"tracking.dir={folder / 'mlruns'}"]
    command += [f"hydra.sweep.dir={folder / 'multirun'}"]
    result = train_in_process(command)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _client(folder: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")


def _job_run_id(folder: Path) -> str:
    (job,) = [r for r in store_runs(folder / "mlruns") if "sweep_parent" not in r.data.tags]
    return job.info.run_id


def _versions(folder: Path, name: str) -> list[str] | None:
    """The versions of `name` in the registry; None when there is no registered model `name`."""
    client = _client(folder)
    if not client.search_registered_models(f"name = '{name}'"):
        return None
    return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def _register(folder: Path, *argv: str) -> int:
    return run(main, ["register", *argv, "--tracking-dir", str(folder / "mlruns")])


def test_help_says_a_sweep_by_a_test_metric_is_an_oracle_choice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(main, ["register", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "chosen on the test labels: an oracle choice, for comparison only" in text


def test_chosen_by_names_the_oracle_only_where_the_metric_saw_the_labels() -> None:
    assert chosen_by("auc_pr", lowest=False) == "auc_pr (oracle: test labels)"
    assert chosen_by("vus_pr", lowest=False) == "vus_pr (oracle: test labels)"
    assert chosen_by("val_reconstruction_mse", lowest=True) == (
        "val_reconstruction_mse, lowest (no test labels)"
    )


def test_every_metric_a_sparse_run_logs_is_an_oracle_exactly_where_it_reads_test_labels(
    tmp_path: Path,
) -> None:
    """`val_mse` (Keras' epoch metric) and the sparse layer's figures were tagged "oracle: test
    labels". The label-reading metrics are the fields of the detection and range metrics, the
    oracle F1 and the attribution hit rates; a run of the sparse gate on correlation breaks
    (channel labels) logs them all."""
    command = [sys.executable, str(TRAIN), "model=sparse", "data=corr_breaks_k5"]
    command += ["+experiment=fast", f"tracking.dir={tmp_path / 'mlruns'}"]
    command += [f"hydra.run.dir={tmp_path / 'out'}"]
    assert train_in_process(command).returncode == 0
    (logged,) = store_runs(tmp_path / "mlruns")
    reading = {f.name for f in fields(DetectionMetrics) if f.name != "threshold"}
    reading |= {f.name for f in fields(RangeMetrics)} | {"f1_best_oracle"}
    reading |= {m for m in logged.data.metrics if "hit_rate_" in m}  # channel labels
    assert {"val_mse", "sparse_layer_closed", "mass_hit_rate_100"} <= set(logged.data.metrics)
    for metric in logged.data.metrics:
        assert sees_test_labels(metric) == (metric in reading), metric


@pytest.mark.parametrize("by_metric", [["--metric", "auc_pr"], ["--lowest"]])
def test_selected_with_a_metric_is_refused(
    by_metric: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--metric (or --lowest) beside --selected was ignored: the label-free choice registered."""
    argv = ["--sweep", str(tmp_path / "multirun"), "--name", "plant", "--selected", *by_metric]
    assert _register(tmp_path, *argv) == 2
    assert capsys.readouterr().err == (
        "error: --selected registers the run the selection sweep chose without the test labels; "
        "--metric and --lowest pick the best run by a metric instead: give one or the other\n"
    )
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_a_register_of_a_missing_run_or_model_leaves_no_registered_model(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _register(sweep, "--run", "nosuch", "--name", "plant") == 2
    assert "cannot register run nosuch's model: Run with id=nosuch not found" in (
        capsys.readouterr().err
    )
    assert _versions(sweep, "plant") is None
    # The sweep's parent run exists but logged no model.
    (parent,) = [r for r in store_runs(sweep / "mlruns") if "sweep_parent" in r.data.tags]
    assert _register(sweep, "--run", parent.info.run_id, "--name", "plant") == 2
    assert "it logged no model" in capsys.readouterr().err
    assert _versions(sweep, "plant") is None


@pytest.mark.slow
def test_a_register_into_a_missing_store_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _register(tmp_path, "--run", "nosuch", "--name", "plant") == 2
    assert "has no runs" in capsys.readouterr().err
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


@pytest.mark.slow
def test_a_failed_version_removes_only_the_registered_model_it_created(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _job_run_id(sweep)
    assert _register(sweep, "--run", run_id, "--name", "kept") == 0
    assert "as models:/kept/1" in capsys.readouterr().out

    def refuse(*args: object, **kwargs: object) -> None:
        raise MlflowException("the store refused the version")

    monkeypatch.setattr(MlflowClient, "create_model_version", refuse)
    assert _register(sweep, "--run", run_id, "--name", "fresh") == 2
    assert "the store refused the version" in capsys.readouterr().err
    assert _versions(sweep, "fresh") is None  # created by the failed call, then deleted
    assert _register(sweep, "--run", run_id, "--name", "kept") == 2
    assert _versions(sweep, "kept") == ["1"]  # there before: left as it was
    monkeypatch.undo()
    assert _register(sweep, "--run", "nosuch", "--name", "kept") == 2
    assert _versions(sweep, "kept") == ["1"]


@pytest.mark.slow
def test_a_sweep_registered_by_a_test_metric_is_tagged_an_oracle_choice(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _register(sweep, "--sweep", str(sweep / "multirun"), "--name", "oracle-pick") == 0
    out = capsys.readouterr().out
    assert f"registered run {_job_run_id(sweep)} as models:/oracle-pick/1, {ORACLE}" in out
    version = _client(sweep).get_model_version("oracle-pick", "1")
    assert version.tags["chosen_by"] == "auc_pr (oracle: test labels)"
    assert version.run_id == _job_run_id(sweep)


@pytest.mark.slow
def test_a_sweep_whose_jobs_were_all_skipped_registers_the_runs_they_point_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same sweep again, into a new folder: its one job FINISHED before, so it is skipped,
    # and only the new sweep's parent run names the earlier run (as `report` reads it).
    command = [sys.executable, str(TRAIN), "-m", "model=mahalanobis", "data=case1"]
    command += ["+experiment=fast", f"tracking.dir={tmp_path / 'mlruns'}"]
    for folder in ("first", "again"):
        result = train_in_process([*command, f"hydra.sweep.dir={tmp_path / folder}"])
        assert result.returncode == 0, result.stderr[-3000:]
    assert _register(tmp_path, "--sweep", str(tmp_path / "again"), "--name", "kept") == 0
    assert f"registered run {_job_run_id(tmp_path)} as models:/kept/1" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_registers_its_model_at_training_and_says_which_version(tmp_path: Path) -> None:
    command = [sys.executable, str(TRAIN), "model=mahalanobis", "data=case1", "+experiment=fast"]
    command += [f"tracking.dir={tmp_path / 'mlruns'}", f"hydra.run.dir={tmp_path / 'out'}"]
    result = train_in_process([*command, "tracking.register_as=plant"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "registered as models:/plant/1" in result.stdout + result.stderr
    assert _versions(tmp_path, "plant") == ["1"]
