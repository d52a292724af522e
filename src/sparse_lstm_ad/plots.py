"""The figures a run logs, each written to a PNG file whose path is returned."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: runs are headless, often in worker processes

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sparse_lstm_ad.files import written_whole

# A long series is drawn from its envelope in this many bins: about the pixel columns of the
# score plot (10 inches at 110 dpi).
LINE_BINS = 1_100


def envelope(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The points a line of `y` shows in `bins` columns: each bin's first point, lowest and
    highest, and its first NaN (a gap stays a gap), in order. A spike keeps its height, and a
    million rows draw in a fraction of a second instead of seconds; a short series comes back
    whole."""
    if len(y) <= 3 * bins:
        return x, y
    size = -(-len(y) // bins)  # rows per bin; the last bin is padded with NaN
    rows = np.full(bins * size, np.nan)
    rows[: len(y)] = y
    rows = rows.reshape(bins, size)
    missing = np.isnan(rows)
    picks = (
        np.where(missing, np.inf, rows).argmin(axis=1),
        np.where(missing, -np.inf, rows).argmax(axis=1),
        missing.argmax(axis=1),  # the first NaN, or the bin's first point when there is none
    )
    keep = np.unique(np.concatenate([np.arange(bins) * size + pick for pick in picks]))
    keep = keep[keep < len(y)]
    return x[keep], y[keep]


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG whole or not at all: to a temporary name first, then renamed."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    try:
        with written_whole(path) as partial:
            fig.savefig(partial, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def learning_curves(history: dict[str, list[float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, style in [("loss", "-"), ("val_loss", "-"), ("mse", "--"), ("val_mse", "--")]:
        if key in history:
            ax.plot(epochs, history[key], style, label=key)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Learning curves")
    ax.legend()
    return _save(fig, path)


def _shade_anomalies(ax: plt.Axes, labels: np.ndarray, x: np.ndarray) -> None:
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        ax.axvspan(
            x[start],
            x[min(end, len(x) - 1)],
            color="tab:red",
            alpha=0.15,
            label="anomaly" if i == 0 else None,
        )


def _time_axis(times: pd.Series | None, rows: int) -> tuple[np.ndarray, str]:
    """The x values and their label: the time column when there is one (dates parsed)."""
    if times is None:
        return np.arange(rows), "test row"
    values = times.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        with warnings.catch_warnings():  # "could not infer format": labels that are not dates
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(times, errors="coerce")
        if parsed.notna().all():
            values = parsed.to_numpy()
        else:  # labels that are neither numbers nor dates: positions, named by the column
            return np.arange(rows), f"row ({times.name})"
    return values, str(times.name)


def score_series(
    scores: np.ndarray,
    labels: np.ndarray | None,
    threshold: float,
    path: Path,
    score_label: str,
    times: pd.Series | None = None,
) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.5))
    x, x_label = _time_axis(times, len(scores))
    ax.plot(*envelope(x, scores, LINE_BINS), lw=0.8, label="score")
    if labels is not None:
        _shade_anomalies(ax, labels, x)
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    ax.set(xlabel=x_label, ylabel=score_label, title="Anomaly score")
    ax.legend(loc="upper left")
    return _save(fig, path)


def error_histogram(
    normal_scores: np.ndarray,
    test_scores: np.ndarray,
    threshold: float,
    path: Path,
    score_label: str,
) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    both = np.concatenate([normal_scores, test_scores])
    bins = np.linspace(np.nanmin(both), np.nanmax(both), 80)
    # One polygon per histogram, not 80 bars: the same picture in a fraction of the draw time.
    for scores, label in ((normal_scores, "validation (normal)"), (test_scores, "test")):
        finite = scores[np.isfinite(scores)]
        ax.hist(finite, bins, alpha=0.6, density=True, histtype="stepfilled", label=label)
    ax.axvline(threshold, color="black", ls="--", lw=1, label="threshold")
    ax.set(xlabel=score_label, ylabel="density", yscale="log", title="Score distribution")
    ax.legend()
    return _save(fig, path)


def sparse_weights_heatmap(
    weights: np.ndarray, row_label: str, col_label: str, channels: Sequence[str], path: Path
) -> Path:
    """Gate (time step x channel) or projection kernel (channel x unit)."""
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * weights.shape[1] + 2), 4))
    limit = float(np.abs(weights).max()) or 1.0
    image = ax.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set(xlabel=col_label, ylabel=row_label, title="Sparse layer weights")
    if col_label == "channel":
        ax.set_xticks(range(len(channels)), channels, rotation=90)
    else:
        ax.set_yticks(range(len(channels)), channels)
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def metric_against_l1(points: pd.DataFrame, metric: str, path: Path) -> Path:
    """Mean ± std of a metric against the L1 coefficient, one line per model and case.

    A model without an L1 (the standard model, a baseline) is drawn as a flat band over the
    L1 range.
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    l1 = points["l1"].dropna()
    span = (l1.min(), l1.max()) if len(l1) else (1e-5, 1e-1)
    for i, ((model, case), rows) in enumerate(points.groupby(["model", "case"])):
        label, color = f"{model}, {case}", f"C{i}"
        if rows["l1"].isna().all():
            mean, std = rows["mean"].iloc[0], np.nan_to_num(rows["std"].iloc[0])
            ax.hlines(mean, *span, linestyles="--", color=color, label=label)
            ax.fill_between(span, mean - std, mean + std, alpha=0.15, color=color)
            continue
        rows = rows.sort_values("l1")
        ax.errorbar(
            rows["l1"],
            rows["mean"],
            yerr=rows["std"].fillna(0),
            marker="o",
            capsize=3,
            color=color,
            label=label,
        )
    ax.set(xscale="log", xlabel="model.l1", ylabel=metric, title=f"{metric} against L1")
    ax.legend(fontsize=8)
    return _save(fig, path)


def attribution_heatmap(
    contributions: np.ndarray,
    channels: Sequence[str],
    channel_labels: np.ndarray | None,
    path: Path,
) -> Path:
    """Each channel's share of the squared score over the test rows; the truth beneath."""
    panels = 2 if channel_labels is not None else 1
    height = min(12.0, 1.5 + 0.18 * len(channels)) * panels
    fig, axes = plt.subplots(
        panels, 1, figsize=(11, height), sharex=True, squeeze=False, layout="constrained"
    )
    # Shares can be negative (correlated channels offset each other): show the positive part.
    shown = np.clip(np.nan_to_num(contributions.T), 0, None)
    top = float(np.percentile(shown, 99.5)) or 1.0
    image = axes[0, 0].imshow(
        shown, aspect="auto", cmap="magma", vmin=0, vmax=top, interpolation="nearest"
    )
    axes[0, 0].set(ylabel="channel", title="Per-channel contribution to the score")
    fig.colorbar(image, ax=axes[:, 0].tolist())  # one bar for both: the panels stay aligned
    if channel_labels is not None:
        axes[1, 0].imshow(channel_labels.T, aspect="auto", cmap="Greys", interpolation="nearest")
        axes[1, 0].set(ylabel="channel", title="Channels labelled anomalous")
    step = -(-len(channels) // 40)  # at most 40 names, evenly spread: still readable
    for ax in axes[:, 0]:
        ax.set_yticks(range(0, len(channels), step), list(channels)[::step], fontsize=6)
    axes[-1, 0].set_xlabel("test row")
    return _save(fig, path)


def channel_mass_bars(mass: np.ndarray, channels: Sequence[str], path: Path) -> Path:
    """How much of each input channel the sparse layer lets through (L1 mass)."""
    fig, ax = plt.subplots(figsize=(max(5, 0.25 * len(channels) + 2), 3.5))
    ax.bar(range(len(channels)), mass)
    ax.set_xticks(range(len(channels)), channels, rotation=90, fontsize=7)
    ax.set(ylabel="L1 mass", title="Input channels kept by the sparse layer")
    return _save(fig, path)


def rank_plot(ranks: pd.DataFrame, metric: str, path: Path) -> Path:
    """Each detector's rank on each dataset (dots) and its average rank (bar), best on top."""
    order = ranks.mean().sort_values().index
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(order) + 1.5))
    y = np.arange(len(order))
    ax.barh(y, ranks.mean()[order], color="0.85", label="average rank")
    for i, detector in enumerate(order):
        values = ranks[detector].dropna()
        jitter = np.linspace(-0.25, 0.25, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(values, i + jitter, s=18, color="C0", zorder=3)
    ax.set_yticks(y, order)
    ax.invert_yaxis()
    ax.set(
        xlabel=f"rank by mean {metric} (1 = best), one dot per dataset",
        xlim=(0.5, len(order) + 0.5),
        title=f"Ranks over {len(ranks)} datasets",
    )
    return _save(fig, path)


def critical_difference_diagram(
    average_ranks: pd.Series,
    nemenyi_p: pd.DataFrame,
    cd: float,
    alpha: float,
    title: str,
    path: Path,
) -> Path:
    """Average ranks on an axis (1 = best), detectors the Nemenyi test cannot tell apart at
    `alpha` joined by a bar, and the critical difference `cd` drawn above: a
    significance.RankComparison whose tests ran."""
    import scikit_posthocs  # the leaderboard's alone: not on a run's path

    fig, ax = plt.subplots(figsize=(7, 0.5 * len(average_ranks) + 2))
    scikit_posthocs.critical_difference_diagram(average_ranks, nemenyi_p, ax=ax, alpha=alpha, cd=cd)
    bottom, _ = ax.get_ylim()
    ax.set_ylim(bottom, 1.5)  # room for the CD bar above the rank axis's labels
    ax.set_title(title)
    return _save(fig, path)
