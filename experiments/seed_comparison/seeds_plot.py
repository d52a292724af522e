"""Per-seed AUC-PR and VUS-PR of the seed comparison, one dot per run, and a VUS table.

(The report's metric-against-L1 plot needs two or more L1 values: with the single L1 of this
study the standard model's flat line has zero width and does not show.)

Usage, from the repository root: .venv/bin/python experiments/seed_comparison/seeds_plot.py
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
SWEEP = "multirun/seed_comparison/main"
EXPERIMENT = "seed_comparison"


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


def groups_of(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(runs.groupby(["tags.model", "tags.data"]).groups)


def select(runs: pd.DataFrame, model: str, case: str) -> pd.DataFrame:
    return runs[(runs["tags.model"] == model) & (runs["tags.data"] == case)]


def plot_per_seed(runs: pd.DataFrame, path: Path) -> None:
    groups = groups_of(runs)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, metric in zip(axes, ["auc_pr", "vus_pr"], strict=True):
        for i, (model, case) in enumerate(groups):
            values = select(runs, model, case)[f"metrics.{metric}"]
            ax.plot([i] * len(values), values, "o", alpha=0.6, color=f"C{i}")
            ax.errorbar(i + 0.2, values.mean(), yerr=values.std(), fmt="s", color="k", capsize=3)
        ax.set_xticks(range(len(groups)), [f"{m}\n{c}" for m, c in groups], fontsize=8)
        ax.set_title(f"{metric} per seed (black: mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def vus_table(runs: pd.DataFrame) -> str:
    lines = ["| model | case | AUC-PR | VUS-PR | VUS-ROC | runs |", "|---|---|---|---|---|---|"]
    for model, case in groups_of(runs):
        sel = select(runs, model, case)
        cells = [
            f"{sel[f'metrics.{m}'].mean():.4f} ± {sel[f'metrics.{m}'].std():.4f}"
            for m in ("auc_pr", "vus_pr", "vus_roc")
        ]
        lines.append(f"| {model} | {case} | {' | '.join(cells)} | {len(sel)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = finished_runs(store_config(args), str(Path(args.sweep)))
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    plot_per_seed(runs, args.out / "per_seed.png")
    table = vus_table(runs)
    (args.out / "vus_table.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
