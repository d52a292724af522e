"""The benchmark preset at test size, and its leaderboard read from MLflow and from its files."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from sparse_lstm_ad import leaderboard
from sparse_lstm_ad.cli import main as cli
from tests.conftest import ROOT, parent_and_children

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _runs(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["dataset", "detector", "seed", "auc_pr"])
    frame["vus_pr"] = frame["auc_pr"] / 2
    frame["auc_roc"] = 1 - frame["auc_pr"]  # reversed order: ranks per metric are independent
    frame["hit_rate_100"] = frame["mass_hit_rate_100"] = float("nan")
    return frame


def test_runs_repeating_a_seed_are_refused_not_pooled() -> None:
    """Two runs of one setting and seed (a sweep resumed after an input file changed): the
    cells pooled both as extra seeds, and the tests paired runs at random."""
    runs = _runs([("a", "x", 0, 0.9), ("a", "x", 0, 0.7), ("a", "y", 0, 0.6)])
    with pytest.raises(ValueError, match=r"x on a seed 0 \(2 runs\): the sweep holds runs of an"):
        leaderboard.check_one_run_per_seed(runs, "multirun/l1")
    leaderboard.check_one_run_per_seed(runs.iloc[1:], "multirun/l1")


def _mlflow_runs(cells: dict[tuple[str, str, str | None], float]) -> pd.DataFrame:
    """MLflow's frame of a sweep: (detector, kind, model.l1 or None) -> AUC-PR on two
    datasets, seeds 0-2, the model.l1 param logged by every kind (as the configs log it)."""
    rows = []
    for (detector, kind, l1), auc_pr in cells.items():
        for dataset, seed in ((d, s) for d in ("case1", "case2") for s in range(3)):
            rows.append(
                {
                    "status": "FINISHED",
                    "tags.model": detector,
                    "tags.data": dataset,
                    "params.seed": str(seed),
                    "params.model.kind": kind,
                    "params.model.l1": l1 or "1.0",
                    "params.model.hidden": "8",
                    "metrics.auc_pr": auc_pr + seed / 100,
                }
            )
    return pd.DataFrame(rows)


def test_a_sweep_over_l1_ranks_each_setting_apart() -> None:
    """The README's sweep, `model=standard,sparse,mahalanobis model.l1=1e-3,1e-2`: each L1 of
    the sparse model is a contestant of its own, where the leaderboard refused the sweep;
    the standard model and the baseline read no L1, ran once each, and keep their names."""
    cells = {
        ("standard", "standard", "0.001"): 0.8,
        ("sparse", "sparse_gate", "0.001"): 0.9,
        ("sparse", "sparse_gate", "0.01"): 0.7,
        ("mahalanobis", "mahalanobis", "0.001"): 0.6,
    }
    runs = leaderboard.from_mlflow(_mlflow_runs(cells))
    names = ["standard", "sparse model.l1=0.001", "sparse model.l1=0.01", "mahalanobis"]
    assert sorted(set(runs["detector"])) == sorted(names)
    leaderboard.check_one_run_per_seed(runs, "multirun/l1")  # one run per seed each
    assert list(leaderboard.per_dataset(runs, "auc_pr").columns) == names
    ranks = leaderboard.average_ranks(runs)["AUC-PR"]
    assert ranks.to_dict() == {names[1]: 1.0, names[0]: 2.0, names[2]: 3.0, names[3]: 4.0}
    # A sweep that varies nothing but the seed keeps the detectors' own names.
    one = leaderboard.from_mlflow(_mlflow_runs({("sparse", "sparse_gate", "0.01"): 0.7}))
    assert set(one["detector"]) == {"sparse"}


def test_a_detector_run_on_fewer_datasets_is_not_ranked_and_leaves_the_tests_whole() -> None:
    """w, run on dataset a alone (where it wins), was ranked first over 1 dataset beside the
    others' 3, and took b and c out of the tests, which then could not run."""
    rows = [("a", "w", 0, 0.99)]
    scores = {"x": 0.7, "y": 0.5, "z": 0.3}
    for dataset, shift in zip("abc", (0.0, 0.1, 0.2), strict=True):
        rows += [(dataset, d, 0, score + shift) for d, score in scores.items()]
    runs = _runs(rows)
    table = leaderboard.average_ranks(runs)
    assert list(table.index) == ["x", "y", "z"] and table["datasets"].tolist() == [3, 3, 3]
    assert table.loc["x", "AUC-PR"] == 1.0
    assert set(leaderboard.ranked_runs(runs)["detector"]) == {"x", "y", "z"}  # ranks.png too
    assert leaderboard.missing_datasets(runs) == (
        "Not ranked, scored on fewer datasets than the others: w (1 of 3)."
    )
    comparison = leaderboard.rank_comparisons(runs)["auc_pr"]
    assert comparison.not_run is None and comparison.datasets == 3 and comparison.detectors == 3


def test_average_rank_is_the_mean_of_per_dataset_ranks_of_seed_means() -> None:
    runs = _runs(
        [
            ("a", "x", 0, 0.9),
            ("a", "x", 1, 0.7),  # mean 0.8: first on a
            ("a", "y", 0, 0.6),
            ("a", "y", 1, 0.6),
            ("b", "x", 0, 0.5),
            ("b", "y", 0, 0.5),  # a tie on b: both 1.5
        ]
    )
    table = leaderboard.average_ranks(runs)
    assert table.loc["x", "AUC-PR"] == pytest.approx((1 + 1.5) / 2)
    assert table.loc["y", "AUC-PR"] == pytest.approx((2 + 1.5) / 2)
    assert table.loc["x", "AUC-ROC"] == pytest.approx((2 + 1.5) / 2)
    assert list(table.index) == ["x", "y"] and table["datasets"].tolist() == [2, 2]
    cells = leaderboard.per_dataset(runs, "auc_pr")
    assert (
        cells.loc["a", "x"] == "**0.800 ± 0.141 (2)**"
        and cells.loc["a", "y"] == "0.600 ± 0.000 (2)"  # 2 seeds: too few to call a tie
    )


def _benchmark(datasets: str, seeds: int = 2) -> pd.DataFrame:
    """Detectors x, y, z on `datasets` (one letter each): x best, then y, then z, with a
    little seed noise; all leaderboard columns, those not set empty."""
    rows = [
        (d, det, seed, 0.9 - 0.1 * k - 0.01 * i + 0.002 * seed)
        for i, d in enumerate(datasets)
        for k, det in enumerate("xyz")
        for seed in range(seeds)
    ]
    return leaderboard.with_run_columns(_runs(rows).assign(run_id="r"))


def test_confirmation_datasets_are_ranked_and_tested_apart() -> None:
    runs = _benchmark("abcd")
    markdown = leaderboard.leaderboard_markdown(runs, "t", ["d"])
    tuning = markdown.index("## Average rank across the 3 tuning datasets")
    confirmation = markdown.index("## Average rank across the 1 confirmation dataset")
    assert tuning < markdown.index("## Significance across the 3 tuning datasets") < confirmation
    assert "Friedman χ² = 6.00 (2 df) over 3 datasets" in markdown[tuning:confirmation]
    assert "`cd_auc_pr_tuning.png`" in markdown[tuning:confirmation]
    assert "Not tested: the tests need at least 3 datasets" in markdown[confirmation:]
    # Each per-dataset row names its set, tuning rows first.
    per_dataset = markdown[markdown.index("## AUC-PR") :]
    assert per_dataset.index("| c | tuning | **") < per_dataset.index("| d | confirmation | **")
    # Without confirmation datasets: one set, as before.
    whole = leaderboard.leaderboard_markdown(runs, "t")
    assert "## Average rank across the 4 datasets" in whole and "tuning" not in whole
    assert "Friedman χ² = 8.00 (2 df) over 4 datasets" in whole
    assert "`cd_auc_pr.png`" in whole and "| a | **" in whole
    with pytest.raises(LookupError, match="no runs of confirmation datasets e"):
        leaderboard.leaderboard_markdown(runs, "t", ["d", "e"])


def test_alarms_at_the_label_free_threshold() -> None:
    runs = _benchmark("ab")
    assert "Alarms" not in leaderboard.leaderboard_markdown(runs, "t")
    first = (runs["dataset"] == "a") & (runs["detector"] == "x")
    runs.loc[first, ["flagged_share", "f1", "f1_best_oracle"]] = [
        [0.04, 0.3, 0.5],
        [0.06, 0.5, 0.5],
    ]
    runs.loc[first & (runs["seed"] == 1), "alarm_shift"] = "too_many_flagged"
    markdown = leaderboard.leaderboard_markdown(runs, "t")
    assert "## Alarms at the label-free threshold" in markdown
    # Means over the 2 seeds: share 0.05, F1 0.4, F1 / best (0.6 + 1.0) / 2; 1 run shifted.
    assert "| a | x | 0.050 | 0.400 | 0.800 | 1 | 2 |" in markdown
    assert "| b | z | - | - | - | 0 | 2 |" in markdown


def test_an_old_runs_csv_loads_and_gains_the_new_columns(tmp_path: Path) -> None:
    # The committed runs.csv as a leaderboard wrote it before the alarm columns existed.
    new_columns = ["flagged_share", "f1", "f1_best_oracle", "alarm_shift"]
    old = pd.read_csv(ROOT / "experiments" / "leaderboard" / "runs.csv").drop(columns=new_columns)
    csv = tmp_path / "old.csv"
    old[old["dataset"].isin(["case1", "case2", "asd_omi2"])].to_csv(csv, index=False)
    leaderboard.write_leaderboard(None, "sweep", tmp_path / "out", csv)  # type: ignore[arg-type]
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert written == {"leaderboard.md", "runs.csv", "ranks.png", "cd_auc_pr.png", "cd_vus_pr.png"}
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert list(runs.columns) == list(leaderboard.RUN_COLUMNS.values())
    assert runs["flagged_share"].isna().all() and runs["alarm_shift"].isna().all()
    markdown = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "### AUC-PR\n\nFriedman χ²" in markdown and "Alarms" not in markdown


def test_the_files_are_moved_whole_when_tmp_is_another_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /tmp on tmpfs: a rename from the system's temp folder into the sweep's fails (EXDEV).
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system other than the test's temp folder")
    other = Path(tempfile.mkdtemp(dir=shm))
    monkeypatch.setattr(tempfile, "tempdir", str(other))
    try:
        runs = pd.read_csv(ROOT / "experiments" / "leaderboard" / "runs.csv")
        csv = tmp_path / "runs.csv"
        runs[runs["dataset"].isin(["case1", "case2", "asd_omi2"])].to_csv(csv, index=False)
        leaderboard.write_leaderboard(None, "sweep", tmp_path / "out", csv)  # type: ignore[arg-type]
        written = {path.name for path in (tmp_path / "out").iterdir()}
        assert {"leaderboard.md", "runs.csv", "ranks.png"} <= written
        assert not any(name.startswith(".partial") for name in written)
    finally:
        shutil.rmtree(other)


def test_the_diagrams_are_logged_to_the_sweep_parent(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.config import TrackingConfig

    cfg = TrackingConfig(dir=str(tmp_path / "mlruns"), experiment="benchmark")
    sweep = str(tmp_path / "multirun")
    parent = tracking.start_sweep(cfg, sweep, "parent")
    client = MlflowClient()
    experiment = tracking.prepare_store(cfg)
    for i, run in _benchmark("abc", seeds=1).iterrows():
        tags = {"sweep": sweep, "config_hash": str(i), "data": run.dataset, "model": run.detector}
        child = client.create_run(experiment, tags=tags).info.run_id
        client.log_param(child, "seed", run.seed)
        for metric in ("auc_pr", "vus_pr", "auc_roc"):
            client.log_metric(child, metric, run[metric])
        client.set_terminated(child)
    leaderboard.write_leaderboard(cfg, sweep, tmp_path / "out", None)
    logged = {a.path for a in client.list_artifacts(parent, "leaderboard")}
    assert {"leaderboard/cd_auc_pr.png", "leaderboard/cd_vus_pr.png"} <= logged
    assert (tmp_path / "out" / "cd_auc_pr.png").stat().st_size > 0


@pytest.mark.slow
def test_benchmark_at_test_size_gives_the_same_leaderboard_from_mlflow_and_files(
    run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli(
        "-m",
        "+experiment=benchmark",
        "hydra.launcher.n_jobs=1",  # the preset's joblib launcher, in this process
        "hydra.sweeper.params.seed='0,1'",
        "hydra.sweeper.params.data='case1,corr_breaks_k5'",
        # Three detectors: the sparse one (its layer's mass is explained), two without a network.
        "hydra.sweeper.params.model='sparse,mahalanobis,iforest'",
        "train=fast",
        "data.every=20",
        "data.correlated.length=6000",
        "scoring.vus_max_buffer=5",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    store, sweep = tmp_path / "mlruns", tmp_path / "multirun"
    (parent,), children = parent_and_children(store)
    assert len(children) == 12 and {r.info.status for r in children} == {"FINISHED"}

    args = [str(sweep), "--tracking-dir", str(store)]
    assert cli.run(cli.main, ["leaderboard", *args, "--out", str(tmp_path / "from_mlflow")]) == 0
    written = (tmp_path / "from_mlflow" / "leaderboard.md").read_text()
    csv = tmp_path / "from_mlflow" / "runs.csv"
    assert (
        cli.run(
            cli.main, ["leaderboard", *args, "--from-csv", str(csv), "--out", str(tmp_path / "csv")]
        )
        == 0
    )
    assert (tmp_path / "csv" / "leaderboard.md").read_text() == written
    # Every detector ranked on both datasets; the explanations are there for the data that has
    # per-channel labels (corr_breaks_k5), the sparse layer's only for the sparse form.
    assert "12 runs: 3 detectors x 2 datasets x 2 seeds" in written
    runs = pd.read_csv(csv)
    assert runs.loc[runs["detector"] == "sparse", "mass_hit_rate_100"].notna().sum() == 2
    assert runs.loc[runs["detector"] != "sparse", "mass_hit_rate_100"].isna().all()
    assert "## HitRate@100 (sparse layer mass)" in written
    # The sweep's parent run holds the same files.
    logged = Path(parent.info.artifact_uri.removeprefix("file://")) / "leaderboard"
    assert (logged / "leaderboard.md").read_text() == written
    assert (logged / "ranks.png").stat().st_size > 0


def test_a_sweep_without_runs_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.config import TrackingConfig

    # The store and its experiment exist: what is missing is the sweep's runs, not the store.
    tracking.prepare_store(TrackingConfig(dir=str(tmp_path / "s"), experiment="benchmark"))
    argv = [str(tmp_path / "nothing"), "--tracking-dir", str(tmp_path / "s")]
    code = cli.run(cli.main, ["leaderboard", *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: no FINISHED run in experiment 'benchmark' has the sweep tag"), err


def test_the_benchmark_command_reads_its_store_and_sweep_folder_from_the_overrides() -> None:
    from sparse_lstm_ad.cli.benchmark import store_and_sweep

    store, sweep = store_and_sweep(())
    assert (store.dir, store.experiment, sweep) == ("mlruns", "benchmark", "multirun/benchmark")
    overrides = ("seed=0,1", "tracking.dir=/x/mlruns", "hydra.sweep.dir=/y/sweep")
    store, sweep = store_and_sweep(overrides)
    assert (store.dir, store.experiment, sweep) == ("/x/mlruns", "benchmark", "/y/sweep")
