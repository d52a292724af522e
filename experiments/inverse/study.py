"""Which inverse of the error covariance: `pinv` (the default) or `shrinkage`, judged with labels.

Usage: python experiments/inverse/study.py --pinv STORE EXPERIMENT SWEEP
           --shrinkage STORE EXPERIMENT SWEEP [--seeds 0,1,2] [--out DIR]

Reads two sweeps of the benchmark's grid that differ only in `scoring.inverse` (run.sh): the
five detectors whose scores are a Mahalanobis distance (standard, sparse, sparse_projection,
mahalanobis, pca; iforest has no covariance), twelve datasets, the same seeds. Writes
OUT/results.md: per detector and dataset the seed-paired difference shrinkage - pinv (mean ±
std, and whether it is beyond seed noise: the leaderboard's paired t test), the Wilcoxon
signed-rank test over the tuning datasets' mean differences, and the confirmation datasets
apart (no choice is made on them); then the leaderboard of the ten (detector, inverse) pairs
and iforest (ranks, Friedman, Nemenyi) with its critical-difference diagrams. OUT/runs.csv
holds the runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.leaderboard import (
    critical_difference_diagrams,
    from_mlflow,
    leaderboard_markdown,
    to_markdown,
)
from sparse_lstm_ad.report import finished_runs
from sparse_lstm_ad.significance import beyond_seed_noise

OUT = Path(__file__).resolve().parent
CONFIRMATION = ("confirm_mixed", "confirm_breaks", "confirm_shifts")
DETECTORS = ("standard", "sparse", "sparse_projection", "mahalanobis", "pca")
METRICS = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR"}
SHRUNK = " + shrinkage"  # the shrinkage runs' detector names in the leaderboard


def load(store: str, experiment: str, sweep: str, seeds: list[int]) -> pd.DataFrame:
    """The sweep's FINISHED runs of these seeds, of the five detectors and iforest (the
    baseline without a covariance: in the leaderboard, on neither side of a difference)."""
    runs = from_mlflow(finished_runs(TrackingConfig(dir=store, experiment=experiment), sweep))
    return runs[runs["seed"].isin(seeds) & runs["detector"].isin([*DETECTORS, "iforest"])]


def differences(pinv: pd.DataFrame, shrunk: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (detector, dataset): the seed-paired shrinkage - pinv differences."""
    keys = ["detector", "dataset", "seed"]
    paired = pinv[[*keys, metric]].merge(shrunk[[*keys, metric]], on=keys, suffixes=("_p", "_s"))
    paired["d"] = paired[f"{metric}_s"] - paired[f"{metric}_p"]
    rows = []
    for (detector, dataset), group in paired.groupby(["detector", "dataset"]):
        rows.append(
            {
                "detector": detector,
                "dataset": dataset,
                "pinv": group[f"{metric}_p"].mean(),
                "shrinkage": group[f"{metric}_s"].mean(),
                "mean": group["d"].mean(),
                "std": group["d"].std(ddof=1),
                "seeds": len(group),
                "beyond": beyond_seed_noise(group["d"]),
            }
        )
    return pd.DataFrame(rows)


def _cell(row: pd.Series) -> str:
    mark = "**" if row["beyond"] else ""
    return f"{mark}{row['mean']:+.4f}{mark} ± {row['std']:.4f}"


def per_dataset_table(diff: pd.DataFrame) -> pd.DataFrame:
    """Datasets x detectors: the mean difference ± std over seeds, bold where beyond noise."""
    diff = diff.assign(cell=diff.apply(_cell, axis=1))
    table = diff.pivot(index="dataset", columns="detector", values="cell")
    order = [d for d in DETECTORS if d in table.columns]
    tuning = sorted(d for d in table.index if d not in CONFIRMATION)
    confirmation = [d for d in CONFIRMATION if d in table.index]
    table = table.loc[tuning + confirmation, order]
    table.index = [f"{d} (confirmation)" if d in CONFIRMATION else d for d in table.index]
    return table


def summary_table(diff: pd.DataFrame) -> pd.DataFrame:
    """Per detector and set: mean difference over datasets, better/worse beyond noise, and
    the Wilcoxon signed-rank p over the datasets' mean differences (tuning only: three
    confirmation datasets cannot reach p < 0.25)."""
    rows = []
    for detector in DETECTORS:
        mine = diff[diff["detector"] == detector]
        for label, subset in (
            ("tuning", mine[~mine["dataset"].isin(CONFIRMATION)]),
            ("confirmation", mine[mine["dataset"].isin(CONFIRMATION)]),
        ):
            if subset.empty:
                continue
            beyond = subset[subset["beyond"]]
            wilcoxon = (
                float(stats.wilcoxon(subset["mean"]).pvalue)
                if label == "tuning" and (subset["mean"] != 0).any()
                else np.nan
            )
            rows.append(
                {
                    "detector": detector,
                    "set": f"{label} ({len(subset)})",
                    "mean pinv": f"{subset['pinv'].mean():.4f}",
                    "mean shrinkage": f"{subset['shrinkage'].mean():.4f}",
                    "mean difference": f"{subset['mean'].mean():+.4f}",
                    "better / worse beyond noise": (
                        f"{(beyond['mean'] > 0).sum()} / {(beyond['mean'] < 0).sum()}"
                    ),
                    "Wilcoxon p": "" if np.isnan(wilcoxon) else f"{wilcoxon:.3f}",
                }
            )
    return pd.DataFrame(rows).set_index("detector")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pinv", nargs=3, required=True, metavar=("STORE", "EXPERIMENT", "SWEEP"))
    parser.add_argument(
        "--shrinkage", nargs=3, required=True, metavar=("STORE", "EXPERIMENT", "SWEEP")
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    pinv, shrunk = load(*args.pinv, seeds), load(*args.shrinkage, seeds)
    parts = [
        "# Results: `scoring.inverse=pinv` (the default) against `shrinkage` (0.1)",
        f"pinv: {len(pinv)} runs (iforest's among them); shrinkage: {len(shrunk)} runs; seeds "
        f"{args.seeds}. A cell: "
        "the seed-paired difference shrinkage - pinv, mean ± std over seeds; **bold**: beyond "
        "seed noise (paired t test at 0.05, the leaderboard's rule).",
    ]
    for metric, label in METRICS.items():
        diff = differences(pinv, shrunk, metric)
        parts += [
            f"## {label}: summary per detector",
            to_markdown(summary_table(diff), "detector"),
            f"## {label}: per dataset",
            to_markdown(per_dataset_table(diff), "dataset"),
        ]
    shrunk = shrunk[shrunk["detector"].isin(DETECTORS)]
    both = pd.concat([pinv, shrunk.assign(detector=shrunk["detector"] + SHRUNK)])
    args.out.mkdir(parents=True, exist_ok=True)
    both.to_csv(args.out / "runs.csv", index=False)
    critical_difference_diagrams(both, CONFIRMATION, args.out)  # the cd_*.png results.md names
    board = leaderboard_markdown(
        both, "The ten (detector, inverse) pairs and iforest", CONFIRMATION
    )
    parts.append("\n".join("#" + ln if ln.startswith("#") else ln for ln in board.splitlines()))
    (args.out / "results.md").write_text("\n\n".join(parts) + "\n")
    print(f"wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
