"""What L1 does to the gate: sparsity, gate L1 norm, reconstruction and VUS-PR per L1.

Reads the l1_sweep runs from MLflow; writes sparsity_vs_l1.md and sparsity_vs_l1.png.
Usage: .venv/bin/python experiments/l1_sweep/sparsity_vs_l1.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).parent
mlflow.set_tracking_uri("sqlite:////work/main/mlruns/mlflow.db")
runs = mlflow.search_runs(
    experiment_names=["l1_sweep"],
    filter_string="tags.sweep = '/work/main/multirun/l1_sweep/main' and attributes.status = 'FINISHED'",
)
runs = runs.drop_duplicates("tags.config_hash")
runs["l1"] = pd.to_numeric(runs["params.model.l1"]).where(runs["tags.model"] == "sparse")
metrics = {
    "sparsity": "sparsity",
    "sparse_l1": "gate L1 norm",
    "train_reconstruction_mse": "train MSE",
    "val_reconstruction_mse": "val MSE",
    "test_reconstruction_mse": "test MSE",
    "auc_pr": "AUC-PR",
    "vus_pr": "VUS-PR",
}
lines = [
    "| case | model | L1 | " + " | ".join(metrics.values()) + " | runs |",
    "|---|---|---|" + "---|" * len(metrics) + "---|",
]
for (case, model, l1), g in runs.groupby(["tags.data", "tags.model", "l1"], dropna=False):
    cells = []
    for m in metrics:
        col = g.get(f"metrics.{m}")
        if col is None or col.isna().all():
            cells.append("-")
        else:
            cells.append(f"{col.mean():.4g} ± {col.std():.2g}")
    lines.append(f"| {case} | {model} | {'-' if pd.isna(l1) else f'{l1:g}'} | {' | '.join(cells)} | {len(g)} |")
(HERE / "sparsity_vs_l1.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for i, case in enumerate(sorted(runs["tags.data"].unique())):
    sparse = runs[(runs["tags.data"] == case) & (runs["tags.model"] == "sparse")]
    std_runs = runs[(runs["tags.data"] == case) & (runs["tags.model"] == "standard")]
    for ax, m in zip(axes, ["sparsity", "val_reconstruction_mse", "vus_pr"], strict=True):
        agg = sparse.groupby("l1")[f"metrics.{m}"].agg(["mean", "std"])
        ax.errorbar(agg.index, agg["mean"], yerr=agg["std"], marker="o", capsize=3,
                    color=f"C{i}", label=f"sparse, {case}")
        if m != "sparsity":
            ax.axhline(std_runs[f"metrics.{m}"].mean(), ls="--", color=f"C{i}",
                       label=f"standard, {case}")
        ax.set(xscale="log", xlabel="model.l1", title=m)
axes[0].legend(fontsize=8)
axes[2].legend(fontsize=7)
fig.tight_layout()
fig.savefig(HERE / "sparsity_vs_l1.png", dpi=100)
