"""The sparsity study's two figures: the final comparison and the L1 selection."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_results(runs: pd.DataFrame, order: list[str], models: list[str], path: Path) -> None:
    """AUC-PR and VUS-PR per data set and model: mean ± std over seeds, the seeds as dots."""
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    width = 0.27
    x = np.arange(len(order))
    for ax, metric in zip(axes, ["auc_pr", "vus_pr"], strict=True):
        for i, m in enumerate(models):
            stats = [
                runs[(runs["dataset"] == d) & (runs["model"] == m)][f"metrics.{metric}"]
                for d in order
            ]
            ax.bar(
                x + (i - 1) * width,
                [s.mean() for s in stats],
                width,
                yerr=[s.std(ddof=1) for s in stats],
                capsize=2,
                label=m,
                color=f"C{i}",
            )
            for j, s in enumerate(stats):  # the seeds themselves
                ax.plot([x[j] + (i - 1) * width] * len(s), s, ".", color="k", ms=3)
        ax.set_ylabel(metric)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=3)
    axes[1].set_xticks(x, order, rotation=20)
    axes[0].set_title("mean ± std over seeds (dots: single seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_selection(table: pd.DataFrame, datasets: list[str], tolerance: float, path: Path) -> None:
    """Validation MSE over the best, per L1, for each sparse form; the chosen L1 starred."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, model in zip(axes, ["sparse_gate", "sparse_projection"], strict=True):
        for i, dataset in enumerate(datasets):
            r = table[(table["dataset"] == dataset) & (table["model"] == model)]
            ax.plot(r["l1"], r["ratio"], "o-", color=f"C{i}", label=dataset)
            c = r[r["chosen"]]
            ax.plot(c["l1"], c["ratio"], "*", ms=14, color=f"C{i}")
        ax.axhline(1 + tolerance, ls="--", color="grey")
        ax.set(xscale="log", xlabel="model.l1", title=f"{model}: val MSE / best (seed 0)")
    axes[0].set_ylabel("val reconstruction MSE / best of the three")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
