"""Per-seed AUC-PR and VUS-PR of the seed comparison, one dot per run, and a VUS table.

(The report's metric-against-L1 plot needs two or more L1 values: with the single L1 of this
study the standard model's flat line has zero width and does not show.)

Usage: .venv/bin/python experiments/seed_comparison/seeds_plot.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402

HERE = Path(__file__).parent
mlflow.set_tracking_uri("sqlite:////work/main/mlruns/mlflow.db")
runs = mlflow.search_runs(
    experiment_names=["seed_comparison"],
    filter_string="tags.sweep = '/work/main/multirun/seed_comparison/main' and attributes.status = 'FINISHED'",
)
runs = runs.drop_duplicates("tags.config_hash")
groups = sorted(runs.groupby(["tags.model", "tags.data"]).groups)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, metric in zip(axes, ["auc_pr", "vus_pr"], strict=True):
    for i, (model, case) in enumerate(groups):
        values = runs[(runs["tags.model"] == model) & (runs["tags.data"] == case)][f"metrics.{metric}"]
        ax.plot([i] * len(values), values, "o", alpha=0.6, color=f"C{i}")
        ax.errorbar(i + 0.2, values.mean(), yerr=values.std(), fmt="s", color="k", capsize=3)
    ax.set_xticks(range(len(groups)), [f"{m}\n{c}" for m, c in groups], fontsize=8)
    ax.set_title(f"{metric} per seed (black: mean ± std)")
fig.tight_layout()
fig.savefig(HERE / "per_seed.png", dpi=100)

lines = ["| model | case | AUC-PR | VUS-PR | VUS-ROC | runs |", "|---|---|---|---|---|---|"]
for model, case in groups:
    sel = runs[(runs["tags.model"] == model) & (runs["tags.data"] == case)]
    cells = [f"{sel[f'metrics.{m}'].mean():.4f} ± {sel[f'metrics.{m}'].std():.4f}" for m in ("auc_pr", "vus_pr", "vus_roc")]
    lines.append(f"| {model} | {case} | {' | '.join(cells)} | {len(sel)} |")
(HERE / "vus_table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
