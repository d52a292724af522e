"""Detectors without a network: what an LSTM autoencoder has to beat to earn its keep.

- `mahalanobis`: no model at all. By default (`model.mahalanobis_scope=window`) the distance of
  each window, flattened to window x channels values, from the training windows; a row gets
  the mean over the windows covering it. With `row`, the reconstruction is zero, so the error
  model is fitted on the standardised rows themselves: each row's distance from the training
  rows (the window alignment hands a row its own score back). Measured on the seven datasets
  of experiments/baselines (mahalanobis_scope.py): the window scope is the stronger baseline
  everywhere (AUC-PR 0.36 vs 0.09 on ASD omi-3, 0.96 vs 0.87 on correlation breaks, k = 100).
- `pca`: the reconstruction from the fewest principal components of the training rows that
  explain `model.pca_variance` of their variance; its errors go to the same error model.
- `iforest`: scikit-learn's IsolationForest on the rows. Its trees are kept as plain arrays
  (saved with the logged model as .npz, never pickled) and `ForestScorer` walks them,
  matching `-IsolationForest.score_samples` to 1e-15.

None of them imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparse_lstm_ad.config import CovarianceInverse, MahalanobisScope, ModelConfig, ModelKind
from sparse_lstm_ad.data import make_windows
from sparse_lstm_ad.error_scores import (
    ErrorModel,
    channel_contributions,
    fit_error_model,
    mahalanobis_scores,
)


@dataclass(frozen=True)
class LinearReconstruction:
    """x -> mean + (x - mean) B B^T, B orthonormal (k, c): PCA; with c = 0 and mean 0, zero."""

    mean: np.ndarray  # (k,)
    basis: np.ndarray  # (k, c)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        centred = np.asarray(windows, dtype=np.float64) - self.mean
        return self.mean + (centred @ self.basis) @ self.basis.T


def zero_reconstruction(n_channels: int) -> LinearReconstruction:
    return LinearReconstruction(np.zeros(n_channels), np.zeros((n_channels, 0)))


def fit_pca(train: np.ndarray, variance_share: float) -> LinearReconstruction:
    """The leading components of the training rows that explain `variance_share` of them."""
    from sklearn.decomposition import PCA

    # A float in (0, 1) asks PCA for the fewest components reaching that share.
    pca = PCA(n_components=None if variance_share >= 1 else variance_share, svd_solver="full")
    pca.fit(train)
    return LinearReconstruction(pca.mean_, pca.components_.T)


@dataclass(frozen=True)
class WindowMahalanobis:
    """N(mean, cov) of flattened training windows; scores windows, not reconstructions."""

    window: int
    model: ErrorModel  # over window x channels values, time step major

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, window, k) -> per-window distances (n,) and per-channel contributions (n, k)."""
        n, length, k = windows.shape
        flat = np.asarray(windows, dtype=np.float64).reshape(n, length * k)
        shares = channel_contributions(flat, self.model).reshape(n, length, k).sum(axis=1)
        return mahalanobis_scores(flat, self.model), shares

    def save(self, path: Path) -> Path:
        np.savez(path, window=self.window, mean=self.model.mean, inv_cov=self.model.inv_cov)
        return path

    @classmethod
    def load(cls, path: Path) -> WindowMahalanobis:
        with np.load(path, allow_pickle=False) as saved:
            return cls(int(saved["window"]), ErrorModel(saved["mean"], saved["inv_cov"]))


def fit_window_mahalanobis(
    train: np.ndarray, window: int, inverse: CovarianceInverse, shrinkage: float
) -> WindowMahalanobis:
    windows = make_windows(train, window)
    flat = windows.reshape(len(windows), -1)
    return WindowMahalanobis(window, fit_error_model(flat, inverse, shrinkage))


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
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        np.savez(path, **fields)
        return path

    @classmethod
    def load(cls, path: Path) -> ForestScorer:
        with np.load(path, allow_pickle=False) as saved:
            fields = {name: saved[name] for name in saved.files}
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


Baseline = LinearReconstruction | ForestScorer | WindowMahalanobis


def fit_baseline(
    cfg: ModelConfig,
    train: np.ndarray,
    seed: int,
    window: int,
    inverse: CovarianceInverse = CovarianceInverse.pinv,
    shrinkage: float = 0.1,
) -> Baseline:
    """The baseline `cfg.kind` fitted on the standardised training rows."""
    if cfg.kind == ModelKind.mahalanobis and cfg.mahalanobis_scope == MahalanobisScope.window:
        return fit_window_mahalanobis(train, window, inverse, shrinkage)
    if cfg.kind == ModelKind.mahalanobis:
        return zero_reconstruction(train.shape[1])
    if cfg.kind == ModelKind.pca:
        return fit_pca(train, cfg.pca_variance)
    if cfg.kind == ModelKind.iforest:
        return fit_forest(train, cfg.iforest_trees, seed)
    raise ValueError(f"model.kind={cfg.kind.value} is not a baseline")
