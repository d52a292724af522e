"""Label-free selection: the injected test never touches training rows or test labels, the
rank aggregate on a hand-made table, and a test-size selection sweep whose parent names the
selected model, registered with `register --selected` and scored unchanged."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.cli.main import main, run
from sparse_lstm_ad.config import SelectionConfig
from sparse_lstm_ad.data.sources import load_series
from sparse_lstm_ad.injection import inject_anomalies
from sparse_lstm_ad.pipeline import injected_validation, prepare_rows
from sparse_lstm_ad.pipeline.sweep_selection import selected_run
from sparse_lstm_ad.selection import aggregate, centrality
from tests.conftest import TRAIN, compose_config, store_runs, train_in_process


def test_injection_changes_only_a_copy_of_the_validation_rows_and_labels_what_it_changed() -> None:
    cfg = compose_config("data=case2", "data.every=4", "selection.enabled=true")
    rows = prepare_rows(cfg)
    before = {part: getattr(rows, part).copy() for part in ("train", "val", "test")}
    labels = rows.test_labels.copy()
    injected = injected_validation(cfg, rows)
    assert injected is not None
    for part, values in before.items():  # nothing of the run's own rows moved
        np.testing.assert_array_equal(getattr(rows, part), values)
    np.testing.assert_array_equal(rows.test_labels, labels)
    # 250 validation rows hold one or two 30-row anomalies at a share of 0.1: copies of
    # them, each with anomalies of its own, until 24 are in.
    assert len(injected.copies) == len(injected.labels) >= 12
    for copy, labels in zip(injected.copies, injected.labels, strict=True):
        assert copy.shape == rows.val.shape and len(labels) == len(rows.val)
        changed = (copy != rows.val).any(axis=1)
        assert not changed[labels == 0].any()  # a changed row is always labelled
        assert labels.any()
    starts = sum(int((np.diff(np.r_[0, labels]) == 1).sum()) for labels in injected.labels)
    assert starts >= 24
    # The same rows and seed give the same anomalies: every candidate gets the same test.
    again = injected_validation(cfg, rows)
    np.testing.assert_array_equal(np.concatenate(again.copies), np.concatenate(injected.copies))
    other = injected_validation(replace(cfg, seed=1), rows)
    assert not np.array_equal(other.all_labels, injected.all_labels)


def test_injection_is_off_unless_selection_is_enabled() -> None:
    cfg = compose_config("data=case2", "data.every=20")
    assert injected_validation(cfg, prepare_rows(cfg)) is None


def test_every_kind_is_injected_and_none_overlaps() -> None:
    clean = np.random.default_rng(0).standard_normal((2_000, 10))
    cfg = SelectionConfig(anomaly_share=0.2, length=20, anomalies=24)
    injected = inject_anomalies(clean, cfg, gap=15, seed=3)
    assert len(injected.copies) == 2  # 20 anomalies in one copy are short of 24: a second
    labels = injected.labels[0]
    starts = np.flatnonzero(np.diff(np.r_[0, labels]) == 1)
    ends = np.flatnonzero(np.diff(np.r_[labels, 0]) == -1)
    lengths = ends - starts + 1
    assert len(starts) == round(0.2 * 2_000 / 20)  # anomalies in turn, one share each
    assert set(lengths) == {1, 20}  # spikes one row, the other kinds `length` rows
    assert (starts[1:] - ends[:-1] > 15).all() and starts[0] >= 15 and ends[-1] < 2_000 - 15
    # Each anomaly touches round(0.1 * 10) = 1 channel.
    touched = (injected.copies[0] != clean)[labels == 1]
    assert (touched.sum(axis=1) <= 1).all()


def test_a_short_part_gets_every_kind_across_its_copies() -> None:
    """150 validation rows hold one anomaly a copy, and every copy started its kinds at the
    first: 24 copies of one spike each (labelled share 0.7 %), the same for every detector."""
    clean = np.random.default_rng(2).standard_normal((150, 6))
    injected = inject_anomalies(clean, SelectionConfig(), gap=15, seed=0)
    assert len(injected.copies) == 24  # one anomaly each
    lengths = [int(labels.sum()) for labels in injected.labels]
    assert lengths.count(1) == 4  # a spike in one copy of six, the kinds in turn
    assert set(lengths) == {1, SelectionConfig().length}
    varied = [copy.std(axis=0).max() for copy in injected.copies]  # a noise burst raises it
    assert max(varied) > 1.5 * min(varied)


@pytest.mark.parametrize("rows", [3, 15, 16, 31, 40])
def test_a_validation_part_as_short_as_the_window_still_gets_its_anomalies(rows: int) -> None:
    clean = np.random.default_rng(1).standard_normal((rows, 4))
    injected = inject_anomalies(clean, SelectionConfig(), gap=15, seed=0)
    starts = sum(int((np.diff(np.r_[0, labels]) == 1).sum()) for labels in injected.labels)
    assert starts >= 24 and all(labels.any() for labels in injected.labels)


def test_the_aggregate_of_a_hand_made_criteria_table() -> None:
    table = pd.DataFrame(
        {
            "candidate": ["a", "b", "c", "d"],
            "injected_auc_pr": [0.9, 0.8, 0.8, np.nan],
            "centrality": [0.1, 0.5, 0.3, 0.6],
        }
    )
    ranked = aggregate(table, {"injected_auc_pr": 1.0, "centrality": 1.0})
    # injected: a 1, b and c share 2.5, d (NaN) last 4; centrality: d 1, b 2, c 3, a 4.
    assert list(ranked["rank_injected_auc_pr"]) == [1.0, 2.5, 2.5, 4.0]
    assert list(ranked["rank_centrality"]) == [4.0, 2.0, 3.0, 1.0]
    assert list(ranked["aggregate_rank"]) == [2.5, 2.25, 2.75, 2.5]
    assert list(ranked["selected"]) == [False, True, False, False]
    # Weighted 3:1 towards the injected test, a wins; a tie goes to the first criterion.
    weighted = aggregate(table, {"injected_auc_pr": 3.0, "centrality": 1.0})
    assert list(weighted["aggregate_rank"]) == [1.75, 2.375, 2.625, 3.25]
    assert weighted.loc[weighted["selected"], "candidate"].item() == "a"
    tied = aggregate(table.iloc[:2], {"injected_auc_pr": 1.0, "centrality": 1.0})
    assert list(tied["aggregate_rank"]) == [1.5, 1.5]
    assert tied.loc[tied["selected"], "candidate"].item() == "a"  # the higher injected AUC-PR
    only = aggregate(table, {"injected_auc_pr": 0.0, "centrality": 1.0})
    assert (
        "rank_injected_auc_pr" not in only and only.loc[only["selected"], "candidate"].item() == "d"
    )


def test_centrality_is_the_mean_kendall_tau_with_the_others() -> None:
    base = np.arange(10.0)
    scores = {"up": base, "same": base * 2, "down": -base, "flat": np.zeros(10)}
    central = centrality(scores)
    # up-same 1, up-down -1, up-flat 0 (a constant ranks nothing): mean 0.
    assert central == pytest.approx({"up": 0.0, "same": 0.0, "down": -2 / 3, "flat": 0.0})
    with_gap = centrality({"a": np.r_[np.nan, base], "b": np.r_[5.0, base]})
    assert with_gap == pytest.approx({"a": 1.0, "b": 1.0})  # the uncovered row is left out


def test_the_selected_run_of_one_group_or_of_many() -> None:
    assert selected_run({"selected_run_id": "r1"}, None) == "r1"
    tags = {"selected_run_id.case1.seed0": "r1", "selected_run_id.case2.seed0": "r2"}
    assert selected_run(tags, "case2.seed0") == "r2"
    with pytest.raises(
        LookupError, match=re.escape("pass --group, one of case1.seed0, case2.seed0")
    ):
        selected_run(tags, None)
    with pytest.raises(LookupError, match=r"\+experiment=select"):
        selected_run({}, None)


@pytest.fixture(scope="module")
def selection_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test-size selection sweep: three candidates on case2, every 10th row."""
    folder = tmp_path_factory.mktemp("select")
    command = [sys.executable, str(TRAIN), "-m", "+experiment=select", "data=case2"]
    command += ["data.every=10", "train=fast", "scoring.vus_max_buffer=5"]
    command += ["model=standard,mahalanobis,iforest", f"tracking.dir={folder / 'mlruns'}"]
    command += [f"hydra.sweep.dir={folder / 'multirun'}"]
    result = train_in_process(command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "selection (no test labels):" in result.stdout
    return folder


@pytest.mark.slow
def test_the_parent_names_the_selected_model_and_logs_every_criterion(
    selection_sweep: Path,
) -> None:
    runs = store_runs(selection_sweep / "mlruns")
    (parent,) = [r for r in runs if "sweep_parent" in r.data.tags]
    jobs = {r.info.run_id: r for r in runs if r is not parent}
    assert len(jobs) == 3 and all("injected_auc_pr" in r.data.metrics for r in jobs.values())
    chosen = parent.data.tags["selected_run_id"]
    assert parent.data.tags["selected_model"] == jobs[chosen].data.tags["model"]
    client = MlflowClient(tracking_uri=f"sqlite:///{selection_sweep / 'mlruns' / 'mlflow.db'}")
    path = client.download_artifacts(parent.info.run_id, "selection/selection.csv")
    table = pd.read_csv(path)
    assert sorted(table["candidate"]) == ["iforest", "mahalanobis", "standard"]
    assert set(table["run_id"]) == set(jobs)
    for _, row in table.iterrows():  # each criterion as the run logged it
        assert row["injected_auc_pr"] == pytest.approx(
            jobs[row["run_id"]].data.metrics["injected_auc_pr"]
        )
    assert table["centrality"].notna().all()
    assert table.loc[table["selected"], "run_id"].item() == chosen
    assert table.loc[table["selected"], "aggregate_rank"].item() == table["aggregate_rank"].min()


@pytest.mark.slow
def test_register_selected_then_score_with_it(
    selection_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--tracking-dir", str(selection_sweep / "mlruns")]
    sweep = str(selection_sweep / "multirun")
    assert run(main, ["register", "--sweep", sweep, "--selected", "--name", "plant", *store]) == 0
    out = capsys.readouterr().out
    (parent,) = [r for r in store_runs(selection_sweep / "mlruns") if "sweep_parent" in r.data.tags]
    chosen = parent.data.tags["selected_run_id"]
    assert f"registered run {chosen} as models:/plant/1" in out and "no test labels" in out
    client = MlflowClient(tracking_uri=f"sqlite:///{selection_sweep / 'mlruns' / 'mlflow.db'}")
    version = client.get_model_version("plant", "1")
    assert version.run_id == chosen and "no test labels" in version.tags["chosen_by"]
    series = load_series(compose_config("data=case2", "data.every=10").data)
    csv = tmp_path / "new.csv"  # the test rows as a user's CSV: the channels by name
    pd.DataFrame(series.test, columns=series.channels).to_csv(csv, index=False)
    output = tmp_path / "scored.csv"
    argv = [
        "score",
        "--model",
        "models:/plant/latest",
        "--input",
        str(csv),
        "--output",
        str(output),
    ]
    assert run(main, [*argv, *store]) == 0
    scored = pd.read_csv(output)
    logged = pd.read_csv(client.download_artifacts(chosen, "scores/test_scores.csv"))
    np.testing.assert_allclose(scored["score"], logged["score"], rtol=1e-6, equal_nan=True)


@pytest.mark.slow
def test_a_failed_register_selected_leaves_no_registered_model(
    selection_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--tracking-dir", str(selection_sweep / "mlruns")]
    argv = ["register", "--selected", "--name", "nothing", *store]
    assert run(main, [*argv, "--sweep", str(tmp_path / "nosuch")]) == 2
    assert "no sweep" in capsys.readouterr().err
    assert run(main, [*argv, "--sweep", str(selection_sweep / "multirun"), "--group", "x"]) == 2
    assert "has no tag selected_run_id.x" in capsys.readouterr().err
    client = MlflowClient(tracking_uri=f"sqlite:///{selection_sweep / 'mlruns' / 'mlflow.db'}")
    assert not client.search_registered_models("name = 'nothing'")
