"""Label-free selection, judged with the labels (issue 28, item 3).

Usage: python experiments/selection/study.py --tracking-dir DIR [--experiment selection]
           [--sweep multirun/selection] [--out DIR]

Reads the selection sweep of `run.sh` (six detectors, twelve data sets, seeds 0-4, every run
scored on its injected validation copies as well). In each group (data set, seed) the
candidates are ranked exactly as the sweep's parent ranks them (sweep_selection.criteria_table
and rank_groups, no test label), under the default weights and the other weightings compared
here. Only then do labels enter: each policy's test AUC-PR beside the oracle's, the best
candidate of the group chosen in hindsight (it sees the test labels: a ceiling, never a
policy), and the regret, oracle minus policy. The weights were chosen on the nine tuning data
sets; the three confirmation sets (confirm_*) judge them. Writes OUT/results.md and
OUT/groups.csv (one row per group and policy).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import SelectionConfig, TrackingConfig
from sparse_lstm_ad.pipeline.sweep_selection import criteria_table
from sparse_lstm_ad.selection import CANDIDATE, aggregate
from sparse_lstm_ad.significance import compare_detectors

OUT = Path(__file__).resolve().parent
CONFIRMATION = ("confirm_mixed", "confirm_breaks", "confirm_shifts")
DEFAULT = "selected"  # the policy of the default weights
WEIGHTINGS = {  # injected_auc_pr : centrality; the default (1:2) was chosen on the tuning sets
    DEFAULT: SelectionConfig().weights,
    "selected 1:1": {"injected_auc_pr": 1.0, "centrality": 1.0},
    "selected 2:1": {"injected_auc_pr": 2.0, "centrality": 1.0},
    "selected: injected only": {"injected_auc_pr": 1.0, "centrality": 0.0},
    "selected: centrality only": {"injected_auc_pr": 0.0, "centrality": 1.0},
}
NEAR = 0.02  # AUC-PR: a selection this close to the oracle on a data set counts as found
ORACLE = "oracle (hindsight, test labels)"


def load(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """One row per FINISHED run: group, data, seed, candidate, criteria and test auc_pr."""
    runs = tracking.sweep_results(cfg, sweep)
    criteria = criteria_table(cfg, runs)
    labelled = runs[["run_id", "tags.data", "params.seed", "metrics.auc_pr"]].rename(
        columns={"tags.data": "data", "params.seed": "seed", "metrics.auc_pr": "auc_pr"}
    )
    table = criteria.merge(labelled, on="run_id")
    # A group short of a candidate (a sweep still running, a failed job) compares fewer: left out.
    size = table.groupby("group")[CANDIDATE].transform("count")
    return table[size == size.max()].reset_index(drop=True)


def policies(table: pd.DataFrame) -> pd.DataFrame:
    """(data, seed, policy) -> the AUC-PR the policy's choice scored, and the regret."""
    rows = []
    for (data, seed), group in table.groupby(["data", "seed"]):
        oracle = group["auc_pr"].max()
        picks = {ORACLE: group["auc_pr"].idxmax()}
        for name, weights in WEIGHTINGS.items():
            ranked = aggregate(group, weights)
            picks[name] = ranked.index[ranked["selected"]][0]
        for index, run in group.iterrows():
            picks[f"always {run[CANDIDATE]}"] = index
        for policy, index in picks.items():
            picked = group.loc[index]
            rows.append(
                {
                    "data": data,
                    "seed": int(seed),
                    "policy": policy,
                    "picked": picked[CANDIDATE],
                    "auc_pr": picked["auc_pr"],
                    "regret": oracle - picked["auc_pr"],
                }
            )
    return pd.DataFrame(rows)


def summary(chosen: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Per policy over `datasets`: mean regret (± std over seeds of the per-seed mean), the
    data sets where its mean AUC-PR is within NEAR of the oracle's, and its mean AUC-PR."""
    part = chosen[chosen["data"].isin(datasets)]
    per_seed = part.groupby(["policy", "seed"])["regret"].mean().unstack()
    per_data = part.groupby(["policy", "data"])["regret"].mean().unstack()
    result = pd.DataFrame(
        {
            "regret": per_seed.mean(axis=1),
            "regret_std": per_seed.std(axis=1, ddof=1),
            "near_oracle": (per_data <= NEAR).sum(axis=1),
            "datasets": per_data.notna().sum(axis=1),
            "auc_pr": part.groupby("policy")["auc_pr"].mean(),
        }
    )
    return result.sort_values("regret")


def per_dataset(chosen: pd.DataFrame) -> pd.DataFrame:
    """data set x policy: mean ± std of the regret over seeds, and what the selection picked."""
    stats = chosen.groupby(["data", "policy"])["regret"].agg(["mean", "std"])
    cells = stats.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1).unstack()
    picks = (
        chosen[chosen["policy"] == DEFAULT]
        .groupby("data")["picked"]
        .agg(lambda p: ", ".join(f"{n}x {c}" for c, n in p.value_counts().items()))
    )
    best = (
        chosen[chosen["policy"].str.startswith("always ")]
        .groupby(["data", "policy"])["auc_pr"]
        .mean()
        .unstack()
        .idxmax(axis=1)
        .str.removeprefix("always ")
    )
    wanted = [DEFAULT, "always standard", "always mahalanobis", "always sparse"]
    return cells[[c for c in wanted if c in cells.columns]].assign(
        selection_picked=picks, best_fixed_in_hindsight=best
    )


def tests(chosen: pd.DataFrame, datasets: list[str]) -> str:
    """Friedman and Holm-Wilcoxon of the selection against every fixed policy, over data
    sets (each data set's mean AUC-PR over seeds)."""
    part = chosen[chosen["data"].isin(datasets)]
    fixed = [p for p in part["policy"].unique() if p.startswith("always ") or p == DEFAULT]
    means = part[part["policy"].isin(fixed)].groupby(["data", "policy"])["auc_pr"].mean()
    comparison = compare_detectors(means.unstack())
    if comparison.not_run:
        return f"tests not run: {comparison.not_run}"
    pairs = comparison.pairs
    mine = pairs[(pairs["a"] == DEFAULT) | (pairs["b"] == DEFAULT)]
    lines = [
        f"Friedman over {comparison.datasets} data sets and {comparison.detectors} policies: "
        f"p = {comparison.friedman_p:.3g}; average AUC-PR ranks: "
        + ", ".join(f"{k} {v:.2f}" for k, v in comparison.average_ranks.items()),
        "",
        "| selected vs | selected better on | worse on | Wilcoxon p | Holm p |",
        "|---|---|---|---|---|",
    ]
    for _, pair in mine.iterrows():
        other, wins, losses = (
            (pair["b"], pair["a_wins"], pair["b_wins"])
            if pair["a"] == DEFAULT
            else (pair["a"], pair["b_wins"], pair["a_wins"])
        )
        lines.append(
            f"| {other} | {wins} | {losses} | {pair['wilcoxon_p']:.3g} | {pair['holm_p']:.3g} |"
        )
    return "\n".join(lines)


def _markdown(frame: pd.DataFrame) -> str:
    """A plain Markdown table of `frame`, its index first (no tabulate needed)."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([str(index), *map(str, row)]) + " |")
    return "\n".join(lines)


def _summary_markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "mean regret ± std over seeds": [
                f"{r:.3f} ± {s:.3f}"
                for r, s in zip(table["regret"], table["regret_std"], strict=True)
            ],
            "data sets within 0.02 of the oracle": [
                f"{int(n)}/{int(d)}"
                for n, d in zip(table["near_oracle"], table["datasets"], strict=True)
            ],
            "mean AUC-PR": [f"{v:.3f}" for v in table["auc_pr"]],
        },
        index=table.index.rename("policy"),
    )
    return _markdown(shown)


def report(chosen: pd.DataFrame, table: pd.DataFrame, cost: str) -> str:
    all_sets = sorted(chosen["data"].unique())
    tuning = [d for d in all_sets if d not in CONFIRMATION]
    confirmation = [d for d in all_sets if d in CONFIRMATION]
    seeds = sorted(chosen["seed"].unique())
    parts = [
        "# Label-free selection against the labels",
        "",
        f"{len(all_sets)} data sets x seeds {', '.join(map(str, seeds))}, six candidates each "
        f"({len(table)} runs). Regenerate: `bash experiments/selection/run.sh`.",
        "",
    ]
    for title, sets in (
        ("Tuning data sets (the weights were chosen here)", tuning),
        ("Confirmation data sets (nothing was chosen here)", confirmation),
        ("All data sets", all_sets),
    ):
        if sets:
            parts += [
                f"## {title}: {', '.join(sets)}",
                "",
                _summary_markdown(summary(chosen, sets)),
                "",
            ]
            parts += [tests(chosen, sets), ""]
    parts += [
        "## Per data set: regret, mean ± std over seeds",
        "",
        _markdown(per_dataset(chosen)),
        "",
    ]
    parts += ["## Cost", "", cost, ""]
    return "\n".join(parts)


def cost(cfg: TrackingConfig, sweep: str) -> str:
    """What scoring the injected copies added: their seconds over the runs' own seconds."""
    runs = tracking.sweep_results(cfg, sweep)
    seconds = (runs["end_time"] - runs["start_time"]).dt.total_seconds()
    injected = runs["metrics.injected_seconds"].fillna(0.0)
    by_model = (
        pd.DataFrame({"model": runs["tags.model"], "injected": injected, "run": seconds})
        .groupby("model")
        .sum()
    )
    share = injected.sum() / (seconds.sum() - injected.sum())
    lines = [
        f"Scoring the injected copies took {injected.sum():.0f} s over {len(runs)} runs of "
        f"{seconds.sum():.0f} s in all: the selection adds {100 * share:.1f} % to the "
        "candidates' runs (nothing is trained twice; centrality reads the test scores the runs "
        "logged anyway).",
        "",
        "| model | injected scoring s | run s | share |",
        "|---|---|---|---|",
    ]
    for model, row in by_model.iterrows():
        lines.append(
            f"| {model} | {row['injected']:.1f} | {row['run']:.0f} | "
            f"{100 * row['injected'] / (row['run'] - row['injected']):.1f} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-dir", default="mlruns")
    parser.add_argument("--experiment", default="selection")
    parser.add_argument("--sweep", default="multirun/selection")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    cfg = TrackingConfig(dir=args.tracking_dir, experiment=args.experiment)
    table = load(cfg, args.sweep)
    chosen = policies(table)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen.to_csv(args.out / "groups.csv", index=False)
    text = report(chosen, table, cost(cfg, args.sweep))
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
