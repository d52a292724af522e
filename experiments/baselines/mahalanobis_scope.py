"""Which scope for the Mahalanobis baseline: each row, rows averaged over windows, or windows
flattened (window x channels values per vector)? AUC-PR per dataset; one command:

    .venv/bin/python experiments/baselines/mahalanobis_scope.py
"""

from __future__ import annotations

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sparse_lstm_ad.cli.hydra_schema import register_configs
from sparse_lstm_ad.config import ScoringConfig
from sparse_lstm_ad.config_checks import validate
from sparse_lstm_ad.data import make_windows, window_starts
from sparse_lstm_ad.error_scores import fit_error_model, mahalanobis_scores, time_step_scores
from sparse_lstm_ad.metrics import auc_pr
from sparse_lstm_ad.pipeline import prepare_rows

DATASETS = {
    "asd-omi-1": ["data=asd", "data.entity=omi-1"],
    "asd-omi-2": ["data=asd", "data.entity=omi-2"],
    "asd-omi-3": ["data=asd", "data.entity=omi-3"],
    "asd-omi-4": ["data=asd", "data.entity=omi-4"],
    "case2": ["data=case2"],
    "corr-breaks-k20": ["data=corr_breaks"],
    "corr-breaks-k100": [
        "data=corr_breaks",
        "data.correlated.channels=100",
        "data.correlated.groups=20",
    ],
}
WINDOW = 15
SCORING = ScoringConfig()  # a run's error model: its inverse and shrinkage


def rows_of(overrides: list[str]):
    register_configs()
    with initialize_config_dir(
        config_dir=str(__import__("pathlib").Path("conf").resolve()), version_base="1.3"
    ):
        cfg = compose(config_name="config", overrides=overrides)
    return prepare_rows(validate(OmegaConf.to_object(cfg)))


def to_rows(per_window: np.ndarray, n_rows: int) -> np.ndarray:
    """A score per window, given to each of its rows, averaged over the windows covering a row."""
    steps = np.repeat(per_window[:, None], WINDOW, axis=1)
    return time_step_scores(steps, window_starts(n_rows, WINDOW, 1), n_rows)


def error_model(errors: np.ndarray):
    return fit_error_model(errors, SCORING.inverse, SCORING.shrinkage)


def scores(rows) -> dict[str, np.ndarray]:
    per_row = mahalanobis_scores(rows.test, error_model(rows.train))
    steps = make_windows(per_row[:, None], WINDOW)[..., 0]
    averaged = time_step_scores(steps, window_starts(len(per_row), WINDOW, 1), len(per_row))
    flat = lambda part: make_windows(part, WINDOW).reshape(-1, WINDOW * part.shape[1])  # noqa: E731
    windows = mahalanobis_scores(flat(rows.test), error_model(flat(rows.train)))
    return {
        "row": per_row,
        "row, window mean": averaged,
        "window flattened": to_rows(windows, len(per_row)),
    }


def main() -> None:
    print("| dataset | row | row, window mean | window flattened |\n|---|---|---|---|")
    for name, overrides in DATASETS.items():
        rows = rows_of(overrides)
        found = {k: auc_pr(v, rows.test_labels) for k, v in scores(rows).items()}
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in found.values()) + " |")


if __name__ == "__main__":
    main()
