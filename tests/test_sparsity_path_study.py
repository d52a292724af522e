"""The sparsity path study's choices: the label-free L1 rule and the win/tie/loss verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

STUDY = Path(__file__).resolve().parents[1] / "experiments" / "sparsity_path" / "study.py"
_spec = importlib.util.spec_from_file_location("sparsity_path_study", STUDY)
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)  # type: ignore[union-attr]


def test_label_free_l1_is_the_largest_within_tolerance_of_the_best_validation_mse() -> None:
    path = pd.DataFrame(
        {
            "dataset": "d",
            "detector": "sparse",
            "seed": 0,
            "l1": [0.03, 0.3, 3.0, 30.0],
            "val_mse": [0.40, 0.39, 0.405, 0.80],  # 3 is within 5 % of 0.39; 30 is not
            "auc_pr": [0.1, 0.2, 0.3, 0.9],  # never looked at
        }
    )
    (chosen,) = study.label_free(path).itertuples()
    assert chosen.l1 == 3.0


def test_verdict_needs_more_than_twice_the_larger_seed_std() -> None:
    assert study.verdict(pd.Series([0.9, 0.9]), pd.Series([0.8, 0.8])).startswith("**win**")
    assert study.verdict(pd.Series([0.80, 0.82]), pd.Series([0.78, 0.80])).startswith("tie")
    assert study.verdict(pd.Series([0.5, 0.5]), pd.Series([0.6, 0.6])).startswith("loss")
