"""One setting's default against a candidate value, seed-paired on the benchmark's grid, judged
with labels.

Usage: python experiments/paired_study.py --setting KEY --detectors D1,D2,...
           --default LABEL STORE EXPERIMENT SWEEP --candidate LABEL STORE EXPERIMENT SWEEP
           [--seeds 0,1,2] [--title TEXT] --out DIR

Reads two sweeps of the benchmark's grid (conf/experiment/benchmark.yaml) that differ only in
KEY: the default side, the benchmark's (or the selection study's) runs, and the candidate side,
the same detectors, datasets and seeds with KEY changed. Writes OUT/results.md: per detector
and dataset the seed-paired difference candidate - default (mean ± std, and whether it is
beyond seed noise: the leaderboard's paired t test), the Wilcoxon signed-rank test over the
tuning datasets' mean differences, and the confirmation datasets apart (no default is chosen
on them); then the leaderboard of every (detector, value) pair beside the default side's
other detectors (the baselines KEY does not touch: on neither side of a difference), with its
critical-difference diagrams. OUT/runs.csv holds the runs. Used by experiments/inverse and
experiments/fit_on (their run.sh).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from sparse_lstm_ad.cli.benchmark import CONFIRMATION
from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.leaderboard import (
    critical_difference_diagrams,
    from_mlflow,
    leaderboard_markdown,
    to_markdown,
)
from sparse_lstm_ad.report import finished_runs
from sparse_lstm_ad.significance import beyond_seed_noise

METRICS = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR"}


@dataclass(frozen=True)
class Side:
    """One value of the setting and the sweep that ran with it."""

    label: str
    store: str
    experiment: str
    sweep: str

    def runs(self, seeds: list[int]) -> pd.DataFrame:
        tracking = TrackingConfig(dir=self.store, experiment=self.experiment)
        runs = from_mlflow(finished_runs(tracking, self.sweep))
        return runs[runs["seed"].isin(seeds)]


def differences(default: pd.DataFrame, candidate: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (detector, dataset): the seed-paired candidate - default differences."""
    keys = ["detector", "dataset", "seed"]
    paired = default[[*keys, metric]].merge(
        candidate[[*keys, metric]], on=keys, suffixes=("_d", "_c")
    )
    paired["d"] = paired[f"{metric}_c"] - paired[f"{metric}_d"]
    rows = []
    for (detector, dataset), group in paired.groupby(["detector", "dataset"]):
        rows.append(
            {
                "detector": detector,
                "dataset": dataset,
                "default": group[f"{metric}_d"].mean(),
                "candidate": group[f"{metric}_c"].mean(),
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


def per_dataset_table(diff: pd.DataFrame, detectors: list[str]) -> pd.DataFrame:
    """Datasets x detectors: the mean difference ± std over seeds, bold where beyond noise."""
    diff = diff.assign(cell=diff.apply(_cell, axis=1))
    table = diff.pivot(index="dataset", columns="detector", values="cell")
    order = [d for d in detectors if d in table.columns]
    tuning = sorted(d for d in table.index if d not in CONFIRMATION)
    confirmation = [d for d in CONFIRMATION if d in table.index]
    table = table.loc[tuning + confirmation, order]
    table.index = [f"{d} (confirmation)" if d in CONFIRMATION else d for d in table.index]
    return table


def _wilcoxon(means: pd.Series) -> float:
    return float(stats.wilcoxon(means).pvalue) if (means != 0).any() else np.nan


def summary_table(
    diff: pd.DataFrame, detectors: list[str], labels: tuple[str, str]
) -> pd.DataFrame:
    """Per detector and set: mean difference over datasets, better/worse beyond noise, and
    the Wilcoxon signed-rank p over the datasets' mean differences (tuning only: three
    confirmation datasets cannot reach p < 0.25)."""
    rows = []
    for detector in detectors:
        mine = diff[diff["detector"] == detector]
        confirming = mine["dataset"].isin(CONFIRMATION)
        for name, subset in (("tuning", mine[~confirming]), ("confirmation", mine[confirming])):
            if subset.empty:
                continue
            beyond = subset[subset["beyond"]]
            wilcoxon = _wilcoxon(subset["mean"]) if name == "tuning" else np.nan
            rows.append(
                {
                    "detector": detector,
                    "set": f"{name} ({len(subset)})",
                    f"mean {labels[0]}": f"{subset['default'].mean():.4f}",
                    f"mean {labels[1]}": f"{subset['candidate'].mean():.4f}",
                    "mean difference": f"{subset['mean'].mean():+.4f}",
                    "better / worse beyond noise": (
                        f"{(beyond['mean'] > 0).sum()} / {(beyond['mean'] < 0).sum()}"
                    ),
                    "Wilcoxon p": "" if np.isnan(wilcoxon) else f"{wilcoxon:.3f}",
                }
            )
    return pd.DataFrame(rows).set_index("detector")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setting", required=True, help="the key the two sweeps differ in")
    parser.add_argument("--detectors", required=True, help="those the setting changes, a,b,c")
    side = ("LABEL", "STORE", "EXPERIMENT", "SWEEP")
    parser.add_argument("--default", nargs=4, required=True, metavar=side)
    parser.add_argument("--candidate", nargs=4, required=True, metavar=side)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--title", default=None, help="results.md's heading")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    detectors, seeds = args.detectors.split(","), [int(s) for s in args.seeds.split(",")]
    default_side, candidate_side = Side(*args.default), Side(*args.candidate)
    labels = (default_side.label, candidate_side.label)
    default = default_side.runs(seeds)
    candidate = candidate_side.runs(seeds)
    candidate = candidate[candidate["detector"].isin(detectors)]
    title = args.title or f"`{args.setting}`: {labels[0]} (the default) against {labels[1]}"
    parts = [
        f"# Results: {title}",
        f"{labels[0]}: {len(default)} runs (the baselines' among them); {labels[1]}: "
        f"{len(candidate)} runs; seeds {args.seeds}. A cell: the seed-paired difference "
        f"{labels[1]} - {labels[0]}, mean ± std over seeds; **bold**: beyond seed noise "
        "(paired t test at 0.05, the leaderboard's rule).",
    ]
    for metric, name in METRICS.items():
        diff = differences(default, candidate, metric)
        parts += [
            f"## {name}: summary per detector",
            to_markdown(summary_table(diff, detectors, labels), "detector"),
            f"## {name}: per dataset",
            to_markdown(per_dataset_table(diff, detectors), "dataset"),
        ]
    both = pd.concat(
        [default, candidate.assign(detector=candidate["detector"] + f" + {labels[1]}")]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    both.to_csv(args.out / "runs.csv", index=False)
    critical_difference_diagrams(both, CONFIRMATION, args.out)  # the cd_*.png results.md names
    pairs = f"Every (detector, {args.setting}) pair and the baselines"
    board = leaderboard_markdown(both, pairs, CONFIRMATION)
    parts.append("\n".join("#" + ln if ln.startswith("#") else ln for ln in board.splitlines()))
    (args.out / "results.md").write_text("\n\n".join(parts) + "\n")
    print(f"wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
