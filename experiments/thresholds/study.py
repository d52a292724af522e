"""Label-free alarm thresholds compared on logged runs (issue 27, item 3).

Usage: python experiments/thresholds/study.py --store DIR --experiment NAME
           [--store DIR --experiment NAME ...] [--rows 500,1000] [--seeds 0,1,2]
           [--shifted DATASET,...] [--out DIR]

Every FINISHED run of each (store, experiment) pair logged `scores/val_scores.csv` (the normal
validation scores) and `scores/test_scores.csv` (score and label per test row). Each rule fits
its threshold without a label: a quantile or peaks over threshold (pot) of the validation
scores, or calibrated on the first N scored test rows (`scoring.calibrate_rows`). Labels
enter only the evaluation: F1, and F1 over `f1_best_oracle`, the best F1 over all thresholds,
an oracle that sees the test labels (an upper bound, never a result). Writes OUT/results.md,
OUT/runs.csv (one row per run and rule) and OUT/rules.png (default OUT: this folder).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from sparse_lstm_ad.config import Calibration, ScoringConfig, Threshold
from sparse_lstm_ad.metrics import precision_recall_f1
from sparse_lstm_ad.thresholds import best_f1, choose_threshold, flagged_share

OUT = Path(__file__).resolve().parent
CALIBRATION_ROWS = (500, 1000)
# A rule that flags none of the test rows, or more than half of them, raises no useful alarm.
TOO_MANY = 0.5


def rules(calibration_rows: tuple[int, ...] = CALIBRATION_ROWS) -> dict[str, ScoringConfig]:
    """The label-free rules at the project's defaults (quantile 0.99; pot 0.98 / 1e-3), on
    validation scores alone or calibrated on the first N scored test rows (recentred by their
    median, or the rule refitted on them)."""
    base = ScoringConfig()
    chosen = {}
    for rule in (Threshold.quantile, Threshold.pot):
        chosen[f"{rule.value} (val)"] = replace(base, threshold=rule)
    for n in calibration_rows:
        for calibration in (Calibration.recentre, Calibration.refit):
            for rule in (Threshold.quantile, Threshold.pot):
                chosen[f"{rule.value} ({calibration.value} {n})"] = replace(
                    base, threshold=rule, calibrate_rows=n, calibration=calibration
                )
    return chosen


def evaluate_rules(
    val_scores: np.ndarray,
    test_scores: np.ndarray,
    labels: np.ndarray,
    chosen: dict[str, ScoringConfig],
) -> pd.DataFrame:
    """One run: per rule its threshold, F1, flagged share and F1 / f1_best_oracle (oracle).

    Rows without a score (no window covers them) are left out everywhere: they are not
    calibration rows, so `first N` means the first N scored rows. The calibration rows stay in
    the evaluation, as in a run with `scoring.calibrate_rows`.
    """
    test_scores = np.asarray(test_scores, dtype=np.float64)
    scored = np.isfinite(test_scores)
    scores, positive = test_scores[scored], np.asarray(labels)[scored]
    oracle = best_f1(scores, positive)  # sees the labels: only ever the denominator
    table = []
    for name, cfg in chosen.items():
        threshold = choose_threshold(np.asarray(val_scores, dtype=np.float64), scores, cfg)
        _, _, f1 = precision_recall_f1(scores, positive, threshold)
        table.append(
            {
                "rule": name,
                "threshold": threshold,
                "f1": f1,
                "flagged_share": flagged_share(scores, threshold),
                "f1_best_oracle": oracle,
                "f1_of_oracle": f1 / oracle if oracle > 0 else np.nan,
                "unscored_rows": int((~scored).sum()),
                "unscored_at_start": int(np.argmax(scored)) if scored.any() else scored.size,
                "calibration_anomaly_share": (
                    float(positive[: cfg.calibrate_rows].mean()) if cfg.calibrate_rows else np.nan
                ),
            }
        )
    return pd.DataFrame(table)


def finished_runs(store: Path, experiment: str) -> tuple[MlflowClient, list, int]:
    """The FINISHED runs of a detector (a sweep's parent run has no `model` tag), the newest of
    each `config_hash` (a config run twice counts once), and how many older ones were left out.
    """
    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}/mlflow.db")
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"error: no experiment {experiment!r} in {store}")
    runs = client.search_runs(
        [found.experiment_id],
        "attributes.status = 'FINISHED'",
        max_results=50_000,
        order_by=["attributes.start_time DESC"],
    )
    kept, seen = [], set()
    for run in runs:
        identity = run.data.tags.get("config_hash") or run.info.run_id
        if run.data.tags.get("model") and identity not in seen:
            seen.add(identity)
            kept.append(run)
    duplicates = sum(1 for run in runs if run.data.tags.get("model")) - len(kept)
    return client, kept, duplicates


def study_store(
    store: Path,
    experiment: str,
    chosen: dict[str, ScoringConfig],
    seeds: set[int] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Every finished run of one store's experiment (of `seeds`, default all), evaluated under
    every rule; and the number of repeated runs left out."""
    client, runs, duplicates = finished_runs(store, experiment)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            if seeds is not None and int(run.data.params.get("seed", -1)) not in seeds:
                continue
            folder = Path(client.download_artifacts(run.info.run_id, "scores", tmp))
            test = pd.read_csv(folder / "test_scores.csv")
            val = pd.read_csv(folder / "val_scores.csv")
            if "label" not in test:
                continue
            table = evaluate_rules(val["score"], test["score"], test["label"], chosen)
            frames.append(
                table.assign(
                    store=str(store),
                    run_id=run.info.run_id,
                    dataset=run.data.tags["data"],
                    detector=run.data.tags["model"],
                    seed=int(run.data.params.get("seed", -1)),
                    alarm_shift=run.data.tags.get("alarm_shift", ""),
                    logged_f1=run.data.metrics.get("f1", np.nan),
                    logged_threshold=run.data.metrics.get("threshold", np.nan),
                )
            )
            for path in folder.iterdir():
                path.unlink()
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), duplicates


def percent(share: float) -> str:
    return "n/a" if np.isnan(share) else f"{100 * share:.1f} %"


def ratio_and_share(runs: pd.DataFrame, keys: list[str], order: list[str]) -> pd.DataFrame:
    """Mean over runs of F1 / f1_best_oracle (oracle) and flagged share, per keys and rule."""
    return cells(
        runs.groupby([*keys, "rule"], sort=False)[["f1_of_oracle", "flagged_share"]].mean(), order
    )


def cells(means: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Mean ratio and share per (keys..., rule) -> one "0.82 (1.3 %)" cell per rule column."""
    if means.empty:
        return pd.DataFrame()
    text = means.apply(lambda m: f"{m.f1_of_oracle:.2f} ({percent(m.flagged_share)})", axis=1)
    return text.unstack("rule")[order]


def average_over_datasets(runs: pd.DataFrame, keys: list[str] = ()) -> pd.DataFrame:
    """Per rule: the mean over datasets of each dataset's mean over runs."""
    per_dataset = runs.groupby([*keys, "dataset", "rule"], sort=False)[
        ["f1_of_oracle", "flagged_share"]
    ].mean()
    return per_dataset.groupby([*keys, "rule"], sort=False).mean()


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    frame = frame.reset_index()
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |"]
    lines.append("|" + "---|" * len(frame.columns))
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def extremes(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs where a rule flags no test row or more than half of them, grouped over seeds."""
    odd = runs[(runs["flagged_share"] == 0) | (runs["flagged_share"] > TOO_MANY)]
    grouped = odd.groupby(["dataset", "detector", "rule"], sort=False)
    return pd.DataFrame(
        {
            "seeds": grouped["seed"].apply(lambda s: ",".join(map(str, sorted(s)))),
            "flagged": grouped["flagged_share"].apply(lambda s: ", ".join(map(percent, s))),
            "F1": grouped["f1"].apply(lambda s: ", ".join(f"{v:.2f}" for v in s)),
        }
    )


def summary_lines(runs: pd.DataFrame, shifted: set[str], order: list[str]) -> list[str]:
    """The headline: each rule averaged over the benchmark's datasets and over the shifted ones."""
    lines = [
        "| rule | F1 / f1_best_oracle (oracle), mean over datasets | flagged, mean over datasets"
        " | F1 / oracle, shifted | flagged, shifted |",
        "|---|---|---|---|---|",
    ]
    bench = average_over_datasets(runs[~runs["dataset"].isin(shifted)])
    moved = average_over_datasets(runs[runs["dataset"].isin(shifted)])
    for rule in order:
        b = bench.loc[rule] if rule in bench.index else None
        m = moved.loc[rule] if rule in moved.index else None
        lines.append(
            f"| {rule} | "
            + (f"{b.f1_of_oracle:.3f} | {percent(b.flagged_share)}" if b is not None else "- | -")
            + " | "
            + (f"{m.f1_of_oracle:.3f} | {percent(m.flagged_share)}" if m is not None else "- | -")
            + " |"
        )
    if not bench.empty:
        best = bench["f1_of_oracle"].idxmax()
        lines += ["", f"Best rule on average over the benchmark's datasets: **{best}** "]
        lines[-1] += f"(F1 / oracle {bench.loc[best, 'f1_of_oracle']:.3f})."
    if not moved.empty:
        best = moved["f1_of_oracle"].idxmax()
        lines[-1] += f" On the shifted series: **{best}** "
        lines[-1] += f"({moved.loc[best, 'f1_of_oracle']:.3f})."
    return lines


def write_results(
    runs: pd.DataFrame, sources: list[tuple[Path, str, int, int]], shifted: set[str], out: Path
) -> None:
    order = list(dict.fromkeys(runs["rule"]))
    runs = runs.sort_values(["dataset", "detector", "seed"], kind="stable")
    per_run = runs.drop_duplicates("run_id")
    benchmark = runs[~runs["dataset"].isin(shifted)]
    quantile = runs[runs["rule"] == "quantile (val)"]
    agree = np.isclose(quantile["f1"], quantile["logged_f1"], atol=1e-9).mean()
    lines = [
        "# Label-free alarm thresholds",
        "",
        f"Measured {date.today().isoformat()} by `bash experiments/thresholds/run.sh`"
        " (`experiments/thresholds/study.py`). Runs read (FINISHED, with labels):",
        "",
        *[
            f"- `{store}`, experiment `{name}`: {n} runs, seeds "
            + ", ".join(map(str, sorted(set(runs.loc[runs["store"] == str(store), "seed"]))))
            + (f" ({repeats} older repeats of the same config_hash left out)" if repeats else "")
            for store, name, n, repeats in sources
        ],
        "",
        "Cells: mean over runs of F1 / `f1_best_oracle` (the oracle: the best F1 over all"
        " thresholds, chosen with the test labels; only ever the denominator) and, in brackets,"
        " the share of scored test rows flagged. Every rule is label-free: fitted on the"
        " validation scores `(val)`, or calibrated on the first N scored test rows:"
        " `(recentre N)` moves the validation threshold by the median of those rows' scores"
        " minus the validation scores' median, `(refit N)` fits the rule on those rows alone.",
        "",
        f"Check: `quantile (val)` reproduces the run's logged `f1` in {100 * agree:.0f} % of"
        f" runs. Rows without a score: {(per_run['unscored_rows'] > 0).sum()} runs have any,"
        f" {(per_run['unscored_at_start'] > 0).sum()} at the start of the series (they would"
        " not count as calibration rows).",
        "",
        "## Average over datasets",
        "",
        "Benchmark datasets (each dataset's mean over its runs, then the mean over datasets) and"
        f" the shifted series ({', '.join(sorted(shifted)) or 'none'}) apart.",
        "",
        *summary_lines(runs, shifted, order),
        "",
        "## Per dataset, all detectors pooled",
        "",
        markdown(
            ratio_and_share(runs, ["dataset"], order).join(
                per_run.groupby("dataset").size().rename("runs")
            )
        ),
        "",
        "## Per detector, averaged over the benchmark's datasets",
        "",
        markdown(cells(average_over_datasets(benchmark, ["detector"]), order)),
        "",
        "## Per dataset and detector",
        "",
        markdown(ratio_and_share(runs, ["dataset", "detector"], order)),
        "",
        f"## Rules that flag 0 % or more than {100 * TOO_MANY:.0f} % of the test rows",
        "",
        markdown(extremes(runs)),
        "",
        "## Runs tagged alarm_shift (the run's own threshold, `quantile (val)`)",
        "",
        markdown(
            per_run.assign(tagged=per_run["alarm_shift"] != "")
            .groupby("dataset")
            .agg(runs=("run_id", "size"), tagged=("tagged", "sum"))
        ),
        "",
        "## Labelled anomalies in the calibration rows (evaluation only)",
        "",
        markdown(
            runs[runs["rule"].str.startswith("quantile (refit")]
            .groupby(["dataset", "rule"], sort=False)["calibration_anomaly_share"]
            .mean()
            .map(percent)
            .unstack("rule")
        ),
        "",
    ]
    (out / "results.md").write_text("\n".join(lines))
    runs.to_csv(out / "runs.csv", index=False)
    plot_rules(runs, shifted, order, out / "rules.png")


def plot_rules(runs: pd.DataFrame, shifted: set[str], order: list[str], path: Path) -> None:
    """Per rule: mean F1 / oracle and flagged share, benchmark datasets and shifted apart."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    parts = {"benchmark datasets": ~runs["dataset"].isin(shifted)}
    if shifted:
        parts["shifted series"] = runs["dataset"].isin(shifted)
    width = 0.8 / len(parts)
    for i, (label, mask) in enumerate(parts.items()):
        means = average_over_datasets(runs[mask]).reindex(order)
        x = np.arange(len(order)) + i * width
        axes[0].bar(x, means["f1_of_oracle"], width, label=label)
        axes[1].bar(x, 100 * means["flagged_share"], width, label=label)
    for ax, title in zip(
        axes, ("F1 / f1_best_oracle (oracle)", "flagged test rows (%)"), strict=True
    ):
        ax.set_xticks(np.arange(len(order)) + 0.4 - width / 2, order, rotation=30, ha="right")
        ax.set_title(title)
    axes[1].set_yscale("symlog", linthresh=1)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(parts))
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", required=True, type=Path)
    parser.add_argument("--experiment", action="append", required=True)
    parser.add_argument("--rows", default=",".join(map(str, CALIBRATION_ROWS)))
    parser.add_argument("--seeds", default="", help="only runs of these seeds, e.g. 0,1,2")
    parser.add_argument("--shifted", default="", help="datasets (tag data) shifted from training")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if len(args.store) != len(args.experiment):
        parser.error("give one --experiment per --store")
    chosen = rules(tuple(int(n) for n in args.rows.split(",")))
    seeds = {int(seed) for seed in args.seeds.split(",")} if args.seeds else None
    frames, sources = [], []
    for store, experiment in zip(args.store, args.experiment, strict=True):
        frame, repeats = study_store(store, experiment, chosen, seeds)
        sources.append((store, experiment, frame["run_id"].nunique() if len(frame) else 0, repeats))
        frames.append(frame)
    runs = pd.concat(frames, ignore_index=True)
    shifted = {name for name in args.shifted.split(",") if name}
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(runs, sources, shifted, args.out)
    print(f"{args.out / 'results.md'}: {runs['run_id'].nunique()} runs")


if __name__ == "__main__":
    main()
