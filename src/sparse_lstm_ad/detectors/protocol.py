"""What every detector is to the pipeline and to the logged model, whatever its kind.

As scikit-learn's estimators: a family's `fit` turns the standardised training rows (and the
windows of every part) into a fitted `Detector`; the detector `score`s windows to per-row
scores, `save`s itself into files for the logged model, and the family `load`s it back. A
reconstruction detector carries the error model fitted on its normal errors, so scores come
out of one call whatever the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from sparse_lstm_ad.config import Config
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.error_scores import RowScores
from sparse_lstm_ad.fitting import FitResult

# (tracking step, epoch of this fit, figures): a network reports each epoch through it.
EpochHook = Callable[[int, int, dict[str, float]], None]


class Detector(Protocol):
    def score(self, windows: Windows) -> tuple[RowScores, float]:
        """Per-row scores and channel contributions of the rows under `windows`, and the
        reconstruction MSE (NaN for a detector that reconstructs nothing)."""
        ...

    def save(self, folder: Path) -> dict[str, Path]:
        """Write the fitted state into `folder`: artifact name -> file, for `Family.load`."""
        ...

    def figures(self, channel_labels: np.ndarray | None) -> dict[str, float]:
        """Run metrics of the fitted detector itself (the sparse layer's), beside the scores'."""
        ...

    def plots(self, channels: list[str], folder: Path) -> list[Path]:
        """Files that show the fitted detector (the sparse layer's weights), for the run."""
        ...


class NothingToShow:
    """figures and plots of a detector with no inner layer worth a metric or a plot."""

    def figures(self, channel_labels: np.ndarray | None) -> dict[str, float]:
        return {}

    def plots(self, channels: list[str], folder: Path) -> list[Path]:
        return []


@dataclass(frozen=True)
class Fitted:
    detector: Detector
    fit: FitResult
    figures: dict[str, float] = field(default_factory=dict)  # of the fit: train MSE, l1 used
    tags: dict[str, str] = field(default_factory=dict)  # how it scores: `scoring_scope`


FitFunction = Callable[[Config, np.ndarray, dict[str, Windows], EpochHook], Fitted]


ANOMALY_SCORE = "anomaly score"  # a family's scores, unless it says what they are


@dataclass(frozen=True)
class Family:
    """Detectors fitted and loaded alike: one module of this package holds each (`FAMILY`).

    `kinds` maps each `model.kind` it fits to the model keys that kind reads: the others are
    left out of a run's identity and blanked in reports.
    """

    kinds: Mapping[str, tuple[str, ...]]
    fit: FitFunction  # (config, training rows, windows of each part, epoch hook) -> Fitted
    load: Callable[[Mapping[str, Path]], Detector]  # the files `Detector.save` wrote
    # The heavy modules `fit` imports inside itself: a joblib sweep's workers load them while
    # the command is checked (cli.warm_workers).
    fit_imports: tuple[str, ...] = ()
    # What the kind's own settings (model.options) must be: a ValueError naming the key, raised
    # by the command's checks before any run starts (one line, exit 2, no FAILED run).
    check: Callable[[Config], None] | None = None
    # What its scores are, as the run's score plots label them.
    score_label: str = ANOMALY_SCORE
