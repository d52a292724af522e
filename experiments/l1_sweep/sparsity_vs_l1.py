"""What L1 does to the gate: sparsity, gate L1 norm, reconstruction and VUS-PR per L1.

Reads the l1_sweep runs from MLflow; writes sparsity_vs_l1.md and sparsity_vs_l1.png.
Usage, from the repository root: .venv/bin/python experiments/l1_sweep/sparsity_vs_l1.py
(`--help` for the sweep, store and output folder; the defaults are those of README.md.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.report import finished_runs

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# The runs' sweep tag is hydra.sweep.dir exactly as README.md's command gives it.
SWEEP = "multirun/l1_sweep/main"
EXPERIMENT = "l1_sweep"
METRICS = {
    "sparsity": "sparsity",
    "sparse_l1": "gate L1 norm",
    "train_reconstruction_mse": "train MSE",
    "val_reconstruction_mse": "val MSE",
    "test_reconstruction_mse": "test MSE",
    "auc_pr": "AUC-PR",
    "vus_pr": "VUS-PR",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=SWEEP, help="the runs' sweep tag (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the plot and table")
    # The repository's store wherever this runs from, and the study's experiment.
    parser.add_argument("--tracking-dir", default=str(REPO / "mlruns"), help="local store")
    parser.add_argument("--tracking-uri", default=None, help="a tracking server or database URI")
    parser.add_argument("--experiment", default=EXPERIMENT, help="the study's MLflow experiment")
    return parser.parse_args(argv)


def store_config(args: argparse.Namespace) -> TrackingConfig:
    return TrackingConfig(dir=args.tracking_dir, uri=args.tracking_uri, experiment=args.experiment)


def with_l1(runs: pd.DataFrame) -> pd.DataFrame:
    """An `l1` column: the sparse model's L1, NaN for the standard model (which ignores it)."""
    runs = runs.copy()
    runs["l1"] = pd.to_numeric(runs["params.model.l1"]).where(runs["tags.model"] == "sparse")
    return runs


def _cell(column: pd.Series | None) -> str:
    if column is None or column.isna().all():
        return "-"
    return f"{column.mean():.4g} ± {column.std():.2g}"


def sparsity_table(runs: pd.DataFrame) -> str:
    lines = [
        "| case | model | L1 | " + " | ".join(METRICS.values()) + " | runs |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for (case, model, l1), g in runs.groupby(["tags.data", "tags.model", "l1"], dropna=False):
        cells = " | ".join(_cell(g.get(f"metrics.{m}")) for m in METRICS)
        l1_text = "-" if pd.isna(l1) else f"{l1:g}"
        lines.append(f"| {case} | {model} | {l1_text} | {cells} | {len(g)} |")
    return "\n".join(lines) + "\n"


def plot_against_l1(runs: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i, case in enumerate(sorted(runs["tags.data"].unique())):
        sparse = runs[(runs["tags.data"] == case) & (runs["tags.model"] == "sparse")]
        std_runs = runs[(runs["tags.data"] == case) & (runs["tags.model"] == "standard")]
        for ax, m in zip(axes, ["sparsity", "val_reconstruction_mse", "vus_pr"], strict=True):
            agg = sparse.groupby("l1")[f"metrics.{m}"].agg(["mean", "std"])
            ax.errorbar(
                agg.index,
                agg["mean"],
                yerr=agg["std"],
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=f"sparse, {case}",
            )
            if m != "sparsity":
                mean = std_runs[f"metrics.{m}"].mean()
                ax.axhline(mean, ls="--", color=f"C{i}", label=f"standard, {case}")
            ax.set(xscale="log", xlabel="model.l1", title=m)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = with_l1(finished_runs(store_config(args), str(Path(args.sweep))))
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    table = sparsity_table(runs)
    (args.out / "sparsity_vs_l1.md").write_text(table)
    print(table, end="")
    plot_against_l1(runs, args.out / "sparsity_vs_l1.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
