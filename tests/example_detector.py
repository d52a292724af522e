"""README's worked example of adding a detector (its "Adding a detector"): `knn`, a window's
mean distance to its k nearest training windows. In a project it is one module in
src/sparse_lstm_ad/detectors/ (the registry finds it) and conf/model/knn.yaml; the tests
register it from here instead of adding it to the package."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.detectors.protocol import Family, Fitted, NothingToShow
from sparse_lstm_ad.detectors.window_gaussian import flat_windows, score_by_window
from sparse_lstm_ad.fitting import FitResult


@dataclass(frozen=True)
class KnnDetector(NothingToShow):
    train: np.ndarray  # the training windows, flattened
    window: int
    neighbours: int

    def score(self, windows):
        return score_by_window(self._distances, self.window, windows), float("nan")

    def _distances(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.neighbors import NearestNeighbors

        index = NearestNeighbors(n_neighbors=self.neighbours).fit(self.train)
        distances, _ = index.kneighbors(windows.reshape(len(windows), -1))
        no_shares = np.full((len(windows), windows.shape[2]), np.nan)  # not split by channel
        return distances.mean(axis=1), no_shares

    def save(self, folder: Path) -> dict[str, Path]:
        path = folder / "knn.npz"
        np.savez(path, train=self.train, window=self.window, neighbours=self.neighbours)
        return {"knn": path}


def neighbours(cfg) -> int:  # model.options.neighbours, read one way by check and fit
    value = cfg.model.options.get("neighbours", 5)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model.options.neighbours={value} is not allowed: a whole number >= 1")
    return value


def check(cfg) -> None:  # run by the command's checks, before any run: one line, exit 2
    neighbours(cfg)


def fit(cfg, train, windows, on_epoch) -> Fitted:
    started = time.perf_counter()
    detector = KnnDetector(flat_windows(windows["train"]), cfg.data.window, neighbours(cfg))
    return Fitted(detector, FitResult(seconds=time.perf_counter() - started))


def load(artifacts) -> KnnDetector:
    with np.load(artifacts["knn"]) as saved:
        return KnnDetector(saved["train"], int(saved["window"]), int(saved["neighbours"]))


FAMILY = Family(kinds={"knn": ("options",)}, fit=fit, load=load, check=check)
