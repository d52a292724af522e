"""The paired studies' arithmetic (experiments/paired_study.py) on runs whose answer is known:
a detector better by the same amount on every seed is better beyond noise, one whose seeds
disagree is not, and the summary counts them apart per set of datasets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

STUDY = Path(__file__).resolve().parents[1] / "experiments" / "paired_study.py"
_spec = importlib.util.spec_from_file_location("paired_study", STUDY)
study = importlib.util.module_from_spec(_spec)
sys.modules["paired_study"] = study  # its dataclass looks its module up there
_spec.loader.exec_module(study)  # type: ignore[union-attr]


def _runs(shift: dict[tuple[str, str], list[float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Default runs at 0.5 and candidate runs moved by `shift[(detector, dataset)]` per seed."""
    default, candidate = [], []
    for (detector, dataset), moves in shift.items():
        for seed, move in enumerate(moves):
            row = {"detector": detector, "dataset": dataset, "seed": seed}
            default.append({**row, "auc_pr": 0.5})
            candidate.append({**row, "auc_pr": 0.5 + move})
    return pd.DataFrame(default), pd.DataFrame(candidate)


def test_differences_are_seed_paired_and_marked_beyond_noise_only_when_seeds_agree() -> None:
    default, candidate = _runs(
        {
            ("standard", "case1"): [0.1, 0.1, 0.1],  # the same gain on every seed
            ("standard", "case2"): [0.2, -0.2, 0.01],  # seeds disagree: noise
            ("standard", "confirm_mixed"): [-0.05, -0.05, -0.05],
        }
    )
    diff = study.differences(default, candidate, "auc_pr").set_index("dataset")
    assert abs(diff.loc["case1", "mean"] - 0.1) < 1e-12 and diff.loc["case1", "beyond"]
    assert not diff.loc["case2", "beyond"]
    summary = study.summary_table(diff.reset_index(), ["standard"], ("pinv", "shrinkage"))
    summary = summary.reset_index()
    tuning = summary[summary["set"] == "tuning (2)"].iloc[0]
    confirmation = summary[summary["set"] == "confirmation (1)"].iloc[0]
    assert tuning["better / worse beyond noise"] == "1 / 0"
    assert confirmation["better / worse beyond noise"] == "0 / 1"
    assert confirmation["Wilcoxon p"] == ""  # one dataset: no test
    assert tuning["mean pinv"] == "0.5000" and tuning["mean shrinkage"] == "0.5517"
    table = study.per_dataset_table(diff.reset_index(), ["standard"])
    assert table.loc["case1", "standard"].startswith("**+0.1000**")
    assert list(table.index) == ["case1", "case2", "confirm_mixed (confirmation)"]
