"""`iforest`: scikit-learn's IsolationForest on the standardised rows (seeded by `seed`);
each row is scored alone. Its trees are kept as plain arrays (saved with the logged model as
.npz, never pickled) and `ForestScorer` walks them, matching `-IsolationForest.score_samples`
to 1e-15. No TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import Config
from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors.protocol import EpochHook, Family, Fitted, NothingToShow
from sparse_lstm_ad.error_scores import RowScores, score_row_detector
from sparse_lstm_ad.files import load_fields, save_fields
from sparse_lstm_ad.fitting import FitResult


@dataclass(frozen=True)
class ForestScorer:
    """An isolation forest as arrays: every tree's nodes, concatenated; roots at `roots`.

    `leaf_depth` is, at each leaf, its depth plus the average path length of the training
    samples left there (IsolationForest's own per-leaf term); -1 marks an inner node's child.
    """

    roots: np.ndarray  # (trees,) index of each tree's first node
    left: np.ndarray  # (nodes,) global index of the left child, -1 at a leaf
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    leaf_depth: np.ndarray
    normaliser: float  # average path length of `max_samples` points

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """(n, k) -> (n,) anomaly scores 2^(-mean depth / c) in (0, 1]: higher is stranger."""
        # The trees compare float32 inputs, as scikit-learn's do.
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        samples = np.arange(len(x))[:, None]
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                break
            go_left = x[samples, self.feature[node]] <= self.threshold[node]
            child = np.where(go_left, self.left[node], self.right[node])
            node = np.where(inner, child, node)
        depth = self.leaf_depth[node].sum(axis=1)
        return 2.0 ** (-depth / (len(self.roots) * self.normaliser))

    def save(self, path: Path) -> Path:
        return save_fields(self, path)

    @classmethod
    def load(cls, path: Path) -> ForestScorer:
        fields = load_fields(path)
        return cls(**{**fields, "normaliser": float(fields["normaliser"])})


def fit_forest(train: np.ndarray, trees: int, seed: int) -> ForestScorer:
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(train)
    parts, offset = [], 0
    for i, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        shift = np.where(tree.children_left >= 0, offset, 0)
        per_leaf = forest._decision_path_lengths[i] + forest._average_path_length_per_tree[i] - 1
        parts.append(
            (
                tree.children_left + shift,
                tree.children_right + shift,
                tree.feature,
                tree.threshold,
                per_leaf,
            )
        )
        offset += tree.node_count
    left, right, feature, threshold, leaf_depth = (
        np.concatenate(a) for a in zip(*parts, strict=True)
    )
    roots = np.cumsum([0] + [t.tree_.node_count for t in forest.estimators_[:-1]])
    return ForestScorer(
        roots=roots,
        left=left,
        right=right,
        feature=np.maximum(feature, 0),  # leaves hold -2: never read, kept a valid index
        threshold=threshold,
        leaf_depth=leaf_depth.astype(np.float64),
        normaliser=float(_average_path_length(forest._max_samples)),
    )


def _average_path_length(n: int) -> float:
    """c(n): the mean path length of an unsuccessful search in a binary tree of n points."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


@dataclass(frozen=True)
class ForestDetector(NothingToShow):
    forest: ForestScorer

    def score(self, windows: Windows) -> tuple[RowScores, float]:
        return score_row_detector(self.forest(windows.rows), windows), float("nan")

    def save(self, folder: Path) -> dict[str, Path]:
        return {"forest": self.forest.save(folder / "forest.npz")}


def fit(cfg: Config, train: np.ndarray, windows: dict[str, Windows], _: EpochHook) -> Fitted:
    started = time.perf_counter()
    forest = fit_forest(train, cfg.model.iforest_trees, cfg.seed)
    return Fitted(ForestDetector(forest), FitResult(seconds=time.perf_counter() - started))


def load(artifacts: Mapping[str, Path]) -> ForestDetector:
    return ForestDetector(ForestScorer.load(Path(artifacts["forest"])))


FAMILY = Family(
    kinds={"iforest": ("iforest_trees",)},
    fit=fit,
    load=load,
    fit_imports=("sklearn.ensemble",),
    score_label="isolation score (higher: isolated in fewer splits)",
)
