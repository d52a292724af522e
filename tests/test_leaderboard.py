"""The benchmark preset at test size, and its leaderboard read from MLflow and from its files."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from sparse_lstm_ad import leaderboard
from tests.conftest import parent_and_children

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _runs(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["dataset", "detector", "seed", "auc_pr"])
    frame["vus_pr"] = frame["auc_pr"] / 2
    frame["auc_roc"] = 1 - frame["auc_pr"]  # reversed order: ranks per metric are independent
    frame["hit_rate_100"] = frame["mass_hit_rate_100"] = float("nan")
    return frame


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
        and cells.loc["a", "y"] == "0.600 ± 0.000 (2)"
    )


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
        "hydra.sweeper.params.model='sparse,mahalanobis,pca,iforest'",
        "train=fast",
        "data.every=20",
        "data.correlated.length=6000",
        "scoring.vus_max_buffer=5",
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    store, sweep = tmp_path / "mlruns", tmp_path / "multirun"
    (parent,), children = parent_and_children(store)
    assert len(children) == 16 and {r.info.status for r in children} == {"FINISHED"}

    args = [str(sweep), "--tracking-dir", str(store)]
    assert leaderboard.main([*args, "--out", str(tmp_path / "from_mlflow")]) == 0
    written = (tmp_path / "from_mlflow" / "leaderboard.md").read_text()
    csv = tmp_path / "from_mlflow" / "runs.csv"
    assert leaderboard.main([*args, "--from-csv", str(csv), "--out", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "leaderboard.md").read_text() == written
    # Every detector ranked on both datasets; the explanations are there for the data that has
    # per-channel labels (corr_breaks_k5), the sparse layer's only for the sparse form.
    assert "16 runs: 4 detectors x 2 datasets x 2-2 seeds" in written
    runs = pd.read_csv(csv)
    assert runs.loc[runs["detector"] == "sparse", "mass_hit_rate_100"].notna().sum() == 2
    assert runs.loc[runs["detector"] != "sparse", "mass_hit_rate_100"].isna().all()
    assert "## HitRate@100 (sparse layer mass)" in written
    # The sweep's parent run holds the same files.
    logged = Path(parent.info.artifact_uri.removeprefix("file://")) / "leaderboard"
    assert (logged / "leaderboard.md").read_text() == written
    assert (logged / "ranks.png").stat().st_size > 0


def test_a_sweep_without_runs_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    code = leaderboard.main([str(tmp_path / "nothing"), "--tracking-dir", str(tmp_path / "s")])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
