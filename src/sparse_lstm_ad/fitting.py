"""What a fit reports, for the networks and the baselines alike (no TensorFlow here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class StoppedBy(StrEnum):
    early_stopping = "early_stopping"
    max_epochs = "max_epochs"
    diverged = "diverged"


@dataclass
class FitResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_by: StoppedBy | None = None  # None: a baseline, fitted in closed form

    @property
    def still_improving(self) -> bool:
        """Hit the ceiling while the validation loss was still going down."""
        val = self.history.get("val_loss", [])
        return self.stopped_by == StoppedBy.max_epochs and len(val) > 1 and val[-1] < val[-2]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def raise_if_diverged(fit: FitResult) -> None:
    if fit.stopped_by == StoppedBy.diverged:
        raise TrainingDiverged(f"loss is not finite at epoch {fit.epochs_run}")
