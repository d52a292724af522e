"""Sweep tables and best-run choice, from a hand-made frame shaped like mlflow.search_runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparse_lstm_ad.cli.main import main, run
from sparse_lstm_ad.register import best_run
from sparse_lstm_ad.report import format_table, sweep_table

RUNS = pd.DataFrame(
    {
        "run_id": ["a", "b", "c"],
        "status": ["FINISHED", "FINISHED", "FAILED"],
        "tags.mlflow.runName": ["model=standard", "model=sparse", "model=sparse model.l1=1"],
        "tags.model": ["standard", "sparse", "sparse"],
        "tags.data": ["case2"] * 3,
        "metrics.auc_pr": [0.9, 0.95, np.nan],
        "metrics.val_reconstruction_mse": [0.8, 0.85, np.nan],
    }
)


def test_best_run_by_metric_skips_unfinished_runs() -> None:
    assert best_run(RUNS, "auc_pr", lowest=False) == "b"
    assert best_run(RUNS, "val_reconstruction_mse", lowest=True) == "a"
    with pytest.raises(LookupError, match="f1"):
        best_run(RUNS, "f1", lowest=False)
    with pytest.raises(LookupError, match="no run has this sweep tag"):
        best_run(RUNS.iloc[0:0], "auc_pr", lowest=False)


def test_sweep_table_names_runs_and_metrics() -> None:
    table = sweep_table(RUNS)
    assert list(table.columns) == ["run", "model", "case", "status", "AUC-PR"]
    assert table["AUC-PR"].tolist()[:2] == [0.9, 0.95]
    text = format_table(table)
    assert "model=sparse model.l1=1" in text and "FAILED" in text
    assert format_table(sweep_table(RUNS.iloc[0:0])) == "(no runs recorded for this sweep)"


def test_runs_that_answer_skipped_jobs_are_listed_once_and_marked() -> None:
    # Jobs skipped for run "a" of this sweep (the same config twice) and, twice, for "x" of an
    # earlier sweep.
    earlier = pd.concat([RUNS.iloc[[0]], RUNS.iloc[[1, 1]].assign(run_id="x")])
    table = sweep_table(RUNS, earlier)
    assert len(table) == 4
    assert table["status"].tolist()[-1] == "skipped: FINISHED before"
    assert table["status"].tolist()[:3] == ["FINISHED", "FINISHED", "FAILED"]


@pytest.mark.parametrize(
    ("command", "searches_by_tag"),
    [("report", True), ("register", True), ("reproduce", False), ("score", False)],
)
def test_help_offers_experiment_where_runs_are_searched_by_tag(
    command: str, searches_by_tag: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # A run id or model URI names its run in any experiment: there the option would do nothing.
    assert run(main, [command, "--help"]) == 0
    assert ("--experiment" in capsys.readouterr().out) == searches_by_tag
    if not searches_by_tag:
        # Exit 2 alone would come from any usage error (a missing argument or option too).
        assert run(main, [command, "x", "--experiment", "study"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: No such option '--experiment'") and err.count("\n") == 1, err


def test_report_names_a_missing_store_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "mlruns"
    argv = [str(tmp_path / "multirun"), "--experiment", "study", "--tracking-dir", str(store)]
    assert run(main, ["report", *argv]) == 2
    assert "no experiment 'study'" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.parametrize("command", ["report", "register"])
def test_an_unreachable_server_is_one_line(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["/tmp/sweep", "--tracking-uri", "http://127.0.0.1:9"]  # port 9: nothing listens
    if command == "register":
        argv = ["--name", "m", "--sweep", *argv]
    assert run(main, [command, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: tracking.uri=http://127.0.0.1:9 is not reachable")
    assert len(err.splitlines()) == 1


def test_summary_table_orders_swept_numbers_by_value() -> None:
    from sparse_lstm_ad.report import summary_table

    l1s = ["0.1", "1e-05", "0.001", "0.0001", "0.001"]
    runs = pd.DataFrame(
        {
            "status": ["FINISHED"] * 6,
            "tags.model": ["sparse"] * 5 + ["standard"],
            "tags.data": ["case1"] * 6,
            "params.model.kind": ["sparse_gate"] * 5 + ["standard"],
            "params.model.l1": [*l1s, "0.1"],
            "metrics.auc_pr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }
    )
    table = summary_table(runs)
    assert list(table["model.l1"]) == ["1e-05", "0.0001", "0.001", "0.1", "-"]
    assert list(table["runs"]) == [1, 1, 2, 1, 1]
    assert table["AUC-PR"].iloc[2] == "0.4000 ± 0.1414"
    assert "alarm shift" not in table.columns  # runs from before the tag existed


def test_the_l1_plot_places_only_kinds_that_have_an_l1() -> None:
    from sparse_lstm_ad.report import plot_points

    runs = pd.DataFrame(
        {
            "status": ["FINISHED"] * 4,
            "tags.model": ["sparse", "sparse", "standard", "pca"],
            "tags.data": ["case1"] * 4,
            # Every kind logs model.l1 (the config's default, 1.0, where the kind ignores it).
            "params.model.kind": ["sparse_gate", "sparse_gate", "standard", "pca"],
            "params.model.l1": ["0.001", "0.1", "1.0", "1.0"],
            "metrics.auc_pr": [0.5, 0.6, 0.7, 0.4],
        }
    )
    points = plot_points(runs, "auc_pr").set_index("model")
    assert sorted(points.loc["sparse", "l1"]) == [0.001, 0.1]
    assert points.loc[["standard", "pca"], "l1"].isna().all()


def test_alarm_columns_show_where_runs_have_them() -> None:
    from sparse_lstm_ad.report import summary_table

    runs = RUNS.assign(
        **{
            "metrics.flagged_share": [0.02, 0.3, np.nan],
            "tags.alarm_shift": [None, "too_many_flagged", None],
        }
    )
    table = sweep_table(runs)
    assert table["flagged"].tolist()[:2] == [0.02, 0.3]
    assert table["alarm shift"].iloc[1] == "too_many_flagged"
    summary = summary_table(runs).set_index("model")
    assert summary.loc["sparse", "flagged share"] == "0.3000"
    assert summary.loc["sparse", "alarm shift"] == "1 too_many_flagged"
    assert summary.loc["standard", "alarm shift"] == "-"


def test_one_tool_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    assert run(main, ["--help"]) == 0
    listed = capsys.readouterr().out
    for command in ("report", "leaderboard", "reproduce", "score", "register", "server"):
        assert f"  {command} " in listed, command
    assert run(main, ["benchmark", "--help"]) == 0
    assert "detectors" in capsys.readouterr().out
    # `python -m sparse_lstm_ad` is the same tool (a fresh process: what is tested is -m).
    result = subprocess.run(
        [sys.executable, "-m", "sparse_lstm_ad", "score", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "Usage: sparse-lstm-ad score" in result.stdout
    assert result.stderr == ""
