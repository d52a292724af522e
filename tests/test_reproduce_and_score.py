"""Reproduce a logged run; score new data with its model by URI; register it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.cli.main import main, run
from sparse_lstm_ad.data import seed_labels, seed_series
from tests.conftest import TRAIN, train_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temp store holding one fast sparse run (trained in this process: the scoring is
    what runs in fresh ones)."""
    folder = tmp_path_factory.mktemp("store")
    command = [sys.executable, str(TRAIN), "+experiment=fast", "model=sparse"]
    command += [f"tracking.dir={folder}", f"hydra.run.dir={folder / 'outputs'}"]
    result = train_in_process(command)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _client(store: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")


def _first_run_id(store: Path) -> str:
    client = _client(store)
    experiment = client.get_experiment_by_name("sparse-lstm-ad")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return runs[0].info.run_id


def _assert_the_runs_scores(output: Path, store: Path, run_id: str) -> None:
    """The scores `score` wrote to `output` are those the run logged for the same rows
    (new_data is the run's test rows)."""
    scores = pd.read_csv(output)
    logged = pd.read_csv(_client(store).download_artifacts(run_id, "scores/test_scores.csv"))
    np.testing.assert_array_equal(scores["score"], logged["score"])
    np.testing.assert_array_equal(scores["flag"], logged["flag"])


@pytest.fixture(scope="module")
def new_data(store: Path) -> Path:
    """The run's test rows as a user's CSV: a time column, the channels, a label."""
    values, channels = seed_series(4)
    frame = pd.DataFrame(values[10_000:][::20], columns=channels)
    frame.insert(0, "t", np.arange(10_000, 15_000, 20))
    frame["label"] = seed_labels()[::20]
    path = store / "new.csv"
    frame.to_csv(path, index=False)
    return path


def test_reproduce_matches_and_then_catches_a_tampered_metric(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _first_run_id(store)
    # As in a fresh process: the command itself must hide MLflow's download bars.
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    assert run(main, ["reproduce", run_id, "--tracking-dir", str(store)]) == 0
    out, err = capsys.readouterr()
    assert f"run {run_id} reproduced" in out and "Downloading artifacts" not in err
    runs = mlflow.search_runs(
        experiment_names=["sparse-lstm-ad"], filter_string=f"tags.reproduces = '{run_id}'"
    )
    assert list(runs["status"]) == ["FINISHED"]
    # The same params: the same config, less what says where the store is.
    original, again = (
        {k: v for k, v in _client(store).get_run(i).data.params.items() if "tracking" not in k}
        for i in (run_id, runs["run_id"].iloc[0])
    )
    assert again == original

    _client(store).log_metric(run_id, "auc_pr", 0.123)  # a newer value: the tampered one
    assert run(main, ["reproduce", run_id, "--tracking-dir", str(store)]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced: auc_pr differ" in out


def test_a_config_logged_with_a_retired_key_still_reads() -> None:
    """Renaming scoring.shift_factor to max_anomaly_share made every run logged before it fail
    to reproduce: `Key 'shift_factor' not in 'ScoringConfig'`."""
    from omegaconf import OmegaConf

    from sparse_lstm_ad.reproduce import config_from_yaml
    from tests.conftest import compose_config

    today = compose_config("data=case1")
    logged = OmegaConf.to_container(OmegaConf.structured(today), enum_to_str=True)
    logged["scoring"]["shift_factor"] = 20.0  # type: ignore[index]
    del logged["scoring"]["max_anomaly_share"]  # type: ignore[union-attr]
    assert config_from_yaml(OmegaConf.to_yaml(logged)) == today


def test_reproduce_unknown_run_is_one_clear_line(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(main, ["reproduce", "0" * 32, "--tracking-dir", str(store)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: run {'0' * 32} is not in sqlite:///{store / 'mlflow.db'}"
    )


def test_score_cli_in_a_fresh_process_matches_the_run(store: Path, new_data: Path) -> None:
    run_id = _first_run_id(store)
    output = store / "scores.csv"
    command = [
        sys.executable,
        "-m",
        "sparse_lstm_ad",
        "score",
        "--model",
        f"runs:/{run_id}/model",
        "--input",
        str(new_data),
        "--output",
        str(output),
        "--plot",
        str(store / "s.png"),
        "--tracking-dir",
        str(store),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # Quiet unless -v: no TensorFlow, absl or download lines, only the outcome.
    assert result.stderr == "", result.stderr[-3000:]

    scores = pd.read_csv(output)
    flagged = int(scores["flag"].sum())
    assert result.stdout == f"scored {len(scores)} rows, {flagged} flagged: {output}\n"
    assert list(scores.columns) == ["t", "score", "flag", "top_channels"]
    assert len(scores) == len(pd.read_csv(new_data))
    np.testing.assert_array_equal(scores["t"], np.arange(10_000, 15_000, 20))
    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run_id}/scores/test_scores.csv",
            tracking_uri=f"sqlite:///{store / 'mlflow.db'}",
        )
    )
    np.testing.assert_array_equal(scores["score"], logged["score"])
    np.testing.assert_array_equal(scores["flag"], logged["flag"])
    assert (store / "s.png").stat().st_size > 0


def _bad_csvs(folder: Path, new_data: Path) -> dict[str, tuple[Path, str]]:
    good = pd.read_csv(new_data)
    cases = {
        "missing channel": (good.drop(columns=["F2_3"]), "lacks the training channel(s) ['F2_3']"),
        "non-numeric": (good.assign(F1="x"), "channel(s) ['F1'] are not numeric"),
        "NaN": (
            good.assign(F2=np.where(good.index == 5, np.nan, good["F2"])),
            "channel(s) ['F2'] hold NaN or infinite values",
        ),
        "too short": (good.head(10), "window length 15 is longer than the series (10 rows)"),
        "header only": (good.head(0), "header_only.csv: no data rows"),
        "duplicated column": (
            good.rename(columns={"label": "F1"}),  # pandas would read the second as F1.1
            "column name 'F1' appears twice in the header (columns 2 and 7): rename one",
        ),
    }
    paths = {}
    for name, (frame, message) in cases.items():
        path = folder / f"{name.replace(' ', '_')}.csv"
        frame.to_csv(path, index=False)
        paths[name] = (path, message)
    paths["no file"] = (folder / "absent.csv", "absent.csv: no such file")
    (folder / "folder.csv").mkdir()
    paths["a directory"] = (folder / "folder.csv", "folder.csv: is a directory")
    return paths


def test_score_bad_inputs_give_one_clear_line(
    store: Path, new_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _first_run_id(store)
    for name, (path, message) in _bad_csvs(tmp_path, new_data).items():
        output = tmp_path / f"{name}.out.csv"
        code = run(
            main,
            [
                "score",
                "--model",
                f"runs:/{run_id}/model",
                "--input",
                str(path),
                "--output",
                str(output),
                "--tracking-dir",
                str(store),
            ],
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, name
        assert len(err) == 1 and message in err[0] and path.name in err[0], (name, err)
        assert not output.exists(), name


def test_an_output_or_plot_that_is_a_directory_is_one_line_before_any_scoring(
    store: Path, new_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No such run: had scoring begun, that would be the error.
    argv = ["score", "--model", f"runs:/{'0' * 32}/model", "--input", str(new_data)]
    argv += ["--tracking-dir", str(store)]
    for option in ("--output", "--plot"):
        outputs = {"--output": str(tmp_path / "out.csv"), option: str(tmp_path)}
        assert run(main, [*argv, *(a for o in outputs.items() for a in o)]) == 2, option
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: {option} {tmp_path}: is a directory, not a file to write"]
    assert list(tmp_path.iterdir()) == []


def test_an_output_named_compressed_is_compressed_as_named(
    store: Path, new_data: Path, tmp_path: Path
) -> None:
    argv = ["score", "--model", f"runs:/{_first_run_id(store)}/model", "--input", str(new_data)]
    argv += ["--tracking-dir", str(store), "--output"]
    for name in ("scores.csv", "scores.csv.gz", "scores.csv.zip", "scores.csv.tar.gz"):
        assert run(main, [*argv, str(tmp_path / name)]) == 0, name
    plain = pd.read_csv(tmp_path / "scores.csv")
    for name in ("scores.csv.gz", "scores.csv.zip", "scores.csv.tar.gz"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / name), plain, check_names=False)
    assert (tmp_path / "scores.csv.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip's magic
    with zipfile.ZipFile(tmp_path / "scores.csv.zip") as archive:
        assert archive.namelist() == ["scores.csv"]
    with tarfile.open(tmp_path / "scores.csv.tar.gz", "r:gz") as archive:
        assert archive.getnames() == ["scores.csv"]
    # .zst without zstandard (no dependency of ours): one line before scoring, not a traceback
    # after it.
    zst = tmp_path / "scores.csv.zst"
    if importlib.util.find_spec("zstandard") is None:
        assert run(main, [*argv, str(zst)]) == 2 and not zst.exists()


def test_a_channel_of_whole_numbers_scores_as_the_same_values_as_floats(
    store: Path, new_data: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(new_data)
    channel = frame.columns[1]
    frame[channel] = frame[channel].round().astype(int)  # a counter, a status code: int64
    scores = {}
    for name, table in (("ints", frame), ("floats", frame.astype({channel: float}))):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        argv = ["score", "--model", f"runs:/{_first_run_id(store)}/model", "--tracking-dir"]
        argv += [str(store), "--input", str(tmp_path / f"{name}.csv")]
        assert run(main, [*argv, "--output", str(tmp_path / f"{name}.out.csv")]) == 0, name
        scores[name] = pd.read_csv(tmp_path / f"{name}.out.csv")
    assert pd.read_csv(tmp_path / "ints.csv")[channel].dtype == np.int64  # as score reads it
    pd.testing.assert_frame_equal(scores["ints"], scores["floats"])


def test_a_missing_or_broken_store_is_one_line_and_none_is_created(
    tmp_path: Path, new_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mlflow.db").write_bytes(b"not a database" * 100)
    typo = tmp_path / "typo" / "mlruns"
    stores = {
        ("--tracking-dir", str(typo)): "no MLflow store there",
        ("--tracking-uri", f"sqlite:///{typo}/mlflow.db"): "no MLflow store there",
        ("--tracking-dir", str(broken)): "is no SQLite database",
        ("--tracking-uri", f"sqlite:///{broken}/mlflow.db"): "is no SQLite database",
    }
    for store, message in stores.items():
        for argv in (
            ["score", "--model", "runs:/abc/model", "--input", str(new_data), "--output", "x"],
            ["reproduce", "abc"],
        ):
            assert run(main, [*argv, *store]) == 2, (argv, store)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "typo").exists()


def test_a_store_a_killed_writer_left_mid_transaction_still_scores(
    store: Path, new_data: Path, tmp_path: Path
) -> None:
    # A hot rollback journal: only a connection that may write rolls it back, as MLflow's does.
    copy = tmp_path / "mlruns"
    copy.mkdir()
    shutil.copy(store / "mlflow.db", copy / "mlflow.db")
    killed_writer = (
        "import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
        "db.execute('PRAGMA cache_size=1'); db.execute('BEGIN'); "
        "db.execute('UPDATE metrics SET value = value + 1'); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", killed_writer, str(copy / "mlflow.db")], check=True)
    assert (copy / "mlflow.db-journal").stat().st_size > 0
    run_id = _first_run_id(store)
    argv = ["score", "--model", f"runs:/{run_id}/model", "--input", str(new_data)]
    assert run(main, [*argv, "--output", str(tmp_path / "o.csv"), "--tracking-dir", str(copy)]) == 0
    _assert_the_runs_scores(tmp_path / "o.csv", store, run_id)


def test_top_channels_name_only_channels_with_a_contribution() -> None:
    from sparse_lstm_ad.score import scores_table

    scored = pd.DataFrame(
        {
            "score": [1.0, 2.0, np.nan, 3.0],
            "flag": [0, 1, 0, 1],
            # NaN: a detector without them (iforest, knn); inf: an overflow, named first.
            "contribution_a": [0.5, np.nan, np.nan, np.inf],
            "contribution_b": [0.7, np.nan, np.nan, 0.7],
        }
    )
    table = scores_table(pd.DataFrame({"x": [1, 2, 3, 4]}), scored, None, top=3)
    assert table["top_channels"].tolist() == ["b a", "", "", "a b"]


def test_register_then_score_by_registry_uri(
    store: Path, new_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _first_run_id(store)
    assert (
        run(
            main,
            ["register", "--name", "seed-detector", "--run", run_id, "--tracking-dir", str(store)],
        )
        == 0
    )
    assert "as models:/seed-detector/1" in capsys.readouterr().out
    output = tmp_path / "by_registry.csv"
    assert (
        run(
            main,
            [
                "score",
                "--model",
                "models:/seed-detector/latest",
                "--input",
                str(new_data),
                "--output",
                str(output),
                "--tracking-dir",
                str(store),
            ],
        )
        == 0
    )
    assert len(pd.read_csv(output)) == len(pd.read_csv(new_data))
    _assert_the_runs_scores(output, store, run_id)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post(url: str, frame: pd.DataFrame) -> pd.DataFrame:
    import json
    import urllib.request

    body = json.dumps({"dataframe_split": frame.to_dict(orient="split")}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return pd.DataFrame(json.loads(answer.read())["predictions"])


def test_mlflow_models_serve_answers_as_score_does(
    store: Path, new_data: Path, tmp_path: Path
) -> None:
    """`mlflow models serve --env-manager local` (README's command) on 127.0.0.1: the same
    scores and flags as the `score` command, for the same rows."""
    import os
    import time
    import urllib.request

    run_id = _first_run_id(store)
    output = tmp_path / "scores.csv"
    argv = ["--model", f"runs:/{run_id}/model", "--input", str(new_data), "--output", str(output)]
    assert run(main, ["score", *argv, "--tracking-dir", str(store)]) == 0
    name = _client(store).get_run(run_id).data.tags["scoring_model"]
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` starts `uvicorn` by name
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
    }
    command = [
        f"{bin_dir}/mlflow",
        "models",
        "serve",
        "-m",
        f"runs:/{run_id}/{name}",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    log = tmp_path / "serve.log"  # a file, not a pipe: a pipe nobody reads fills and stalls it
    with log.open("w") as log_file:
        server = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:  # until it answers: a server that never does fails here, not in _post
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                break
            except OSError as error:
                assert time.monotonic() < deadline, f"no answer on /ping in 180 s: {error}"
                time.sleep(0.5)
        frame = pd.read_csv(new_data)
        served = _post(f"http://127.0.0.1:{port}/invocations", frame)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    scored = pd.read_csv(output)
    np.testing.assert_allclose(served["score"], scored["score"], rtol=1e-12)
    np.testing.assert_array_equal(served["flag"].astype(int), scored["flag"])
