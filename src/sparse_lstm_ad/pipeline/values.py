"""The values the pipeline passes along: what the launcher knows of a job, the standardised
rows of a run's three parts, their scores, and what a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparse_lstm_ad.data import Standardizer
from sparse_lstm_ad.thresholds import ValidationFit


@dataclass(frozen=True)
class JobInfo:
    """What the launcher knows about this job, handed down by the CLI."""

    run_name: str
    config: dict[str, Any]  # the resolved config, logged as params
    config_files: list[Path] = field(default_factory=list)  # composed config, overrides
    sweep: str = ""  # the multirun this job belongs to, "" for a single run
    choices: dict[str, str] = field(default_factory=dict)  # config group -> option chosen
    tags: dict[str, str] = field(default_factory=dict)  # any further tags for the run
    identity: str = ""  # config hash: what the run computes (see config.config_identity)
    parent_run_id: str | None = None  # the sweep's parent run


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    metrics: dict[str, float]
    artifact_uri: str


@dataclass(frozen=True)
class Rows:
    """The standardised series, split into the three parts a run uses."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray | None
    channels: list[str]
    standardizer: Standardizer
    test_channel_labels: np.ndarray | None = None  # (test rows, channels): who is to blame
    test_times: Any = None  # a pandas Series: the test rows' time column, if the data has one


@dataclass(frozen=True)
class Scored:
    val: np.ndarray  # per validation row
    test: np.ndarray  # per test row
    test_contributions: np.ndarray  # (test rows, channels): shares of the squared score
    threshold: float
    validation: ValidationFit  # what the threshold rule read of the validation scores
    reconstruction_mse: dict[str, float]  # val, test: of a detector that reconstructs
    injected: np.ndarray | None = None  # per row of the injected validation copies (selection)
    injected_seconds: float = 0.0  # spent scoring them

    @property
    def has_contributions(self) -> bool:
        """False for a detector that does not split its score by channel (iforest)."""
        return not np.isnan(self.test_contributions).all()
