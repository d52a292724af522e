"""Sparsity study helpers: L1 selection without test labels, and the study's tables and plots.

    study.py select SELECT_SWEEP_DIR      # writes l1_selection.md, prints "form l1 presets" lines
    study.py report SELECT_SWEEP_DIR FINAL_SWEEP_DIR   # writes results.md and the plots

Runs are read from MLflow (experiment `sparsity_study`, the repository's store mlruns/) by
their `sweep` tag: the sweep folders exactly as run.sh gave them to hydra.sweep.dir. A sweep
re-run skips configs that already FINISHED and notes the earlier run on its parent run
(`tags.skipped.<job>`); those runs are counted here too, as the report command does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from study_plots import plot_results, plot_selection

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.report import finished_runs
from sparse_lstm_ad.significance import paired_by_seed

HERE = Path(__file__).resolve().parent
EXPERIMENT = "sparsity_study"
STORE = TrackingConfig(dir=str(HERE.parents[1] / "mlruns"), experiment=EXPERIMENT)
L1S = (1e-4, 1e-3, 1e-2)
TOLERANCE = 0.05  # the largest L1 whose val MSE is within 5 % of the best at seed 0
MODELS = ["standard", "sparse_gate", "sparse_projection"]
MODEL_OPTION = {"sparse_gate": "sparse", "sparse_projection": "sparse_projection"}
# dataset name (params.data.name) -> preset suffix, in table order, with its part
DATASETS = {
    "case1": ("case1", "a"),
    "case2": ("case2", "a"),
    "corr-k5": ("corr5", "b"),
    "corr-k20": ("corr20", "b"),
    "corr-k100": ("corr100", "b"),
    "asd-omi-1": ("omi1", "c"),
    "asd-omi-2": ("omi2", "c"),
    "asd-omi-3": ("omi3", "c"),
    "asd-omi-4": ("omi4", "c"),
}
PARTS = {
    "a": "(a) seed cases",
    "b": "(b) correlated data, correlation breaks only",
    "c": "(c) ASD",
}


def sweep_runs(sweep: str) -> pd.DataFrame:
    """FINISHED runs of a sweep over all its invocations, skipped jobs answered by earlier runs."""
    runs = finished_runs(STORE, sweep)  # one per config: the newest
    runs = runs[runs["params.data.name"].notna()].copy()
    runs["dataset"] = runs["params.data.name"]
    runs["model"] = runs["params.model.kind"]
    runs["l1"] = pd.to_numeric(runs["params.model.l1"], errors="coerce").where(
        runs["model"] != "standard"
    )
    runs["seed"] = runs["params.seed"].astype(int)
    return runs.reset_index(drop=True)


def select(select_sweep: str) -> pd.DataFrame:
    runs = sweep_runs(select_sweep)
    runs = runs[runs["seed"] == 0]
    rows = []
    for (dataset, model), group in runs.groupby(["dataset", "model"]):
        mse = group.set_index("l1")["metrics.val_reconstruction_mse"].sort_index()
        best = mse.min()
        ok = mse[mse <= (1 + TOLERANCE) * best]
        chosen = ok.index.max()
        sparsity = group.set_index("l1")["metrics.sparsity"].sort_index()
        for l1, value in mse.items():
            rows.append(
                dict(
                    dataset=dataset,
                    model=model,
                    l1=l1,
                    val_mse=value,
                    ratio=value / best,
                    sparsity=sparsity.get(l1, np.nan),
                    chosen=l1 == chosen,
                )
            )
    table = pd.DataFrame(rows)
    table["order"] = table["dataset"].map(list(DATASETS).index)
    return table.sort_values(["order", "model", "l1"]).drop(columns="order")


def write_selection(table: pd.DataFrame) -> None:
    lines = [
        "| dataset | sparse form | val MSE at L1=1e-4 | 1e-3 | 1e-2 "
        "| sparsity at 1e-4 / 1e-3 / 1e-2 | chosen L1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for (dataset, model), group in table.groupby(["dataset", "model"], sort=False):
        cells = []
        for l1 in L1S:
            row = group[np.isclose(group["l1"], l1)]
            if row.empty:
                cells.append("missing")
                continue
            r = row.iloc[0]
            cells.append(f"{r.val_mse:.4f} ({100 * (r.ratio - 1):+.1f} %)")
        spars = " / ".join(
            f"{group[np.isclose(group['l1'], l1)]['sparsity'].iloc[0]:.2f}"
            if (np.isclose(group["l1"], l1)).any()
            else "-"
            for l1 in L1S
        )
        chosen = group[group["chosen"]]["l1"]
        lines.append(
            f"| {dataset} | {model} | {' | '.join(cells)} | {spars} | {chosen.iloc[0]:g} |"
        )
    (HERE / "l1_selection.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)


def groups_to_run(table: pd.DataFrame) -> None:
    """One line per (form, L1): the presets whose chosen L1 it is (one sweep invocation each)."""
    chosen = table[table["chosen"]]
    for (model, l1), group in chosen.groupby(["model", "l1"]):
        presets = ",".join(f"sparsity_study_{DATASETS[d][0]}" for d in group["dataset"])
        print(f"{MODEL_OPTION[model]} {l1:g} {presets}")


def _ms(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def final_runs(select_sweep: str, final_sweep: str) -> pd.DataFrame:
    """The final sweep's runs plus the selection's seed-0 runs at the chosen L1.

    The final sweep skips those (same config) and should note them on its parent run, but a
    parent whose sweep swept `+experiment` lands in the default MLflow experiment unless
    `tracking.experiment` is also given on the command line, and then the notes are lost: taking
    them from the selection sweep directly does not depend on that.
    """
    chosen = select(select_sweep)
    chosen = chosen[chosen["chosen"]].set_index(["dataset", "model"])["l1"]
    runs = pd.concat([sweep_runs(final_sweep), sweep_runs(select_sweep)])
    runs = runs.drop_duplicates("tags.config_hash").reset_index(drop=True)
    keep = [
        row.model == "standard" or np.isclose(row.l1, chosen.get((row.dataset, row.model), np.nan))
        for row in runs.itertuples()
    ]
    return runs[keep].reset_index(drop=True)


def report(select_sweep: str, final_sweep: str) -> None:
    runs = final_runs(select_sweep, final_sweep)
    runs.to_csv(
        HERE / "runs.csv",
        index=False,
        columns=[
            c
            for c in [
                "run_id",
                "dataset",
                "model",
                "l1",
                "seed",
                "metrics.auc_pr",
                "metrics.vus_pr",
                "metrics.auc_roc",
                "metrics.vus_roc",
                "metrics.f1",
                "metrics.hit_rate_100",
                "metrics.val_reconstruction_mse",
                "metrics.sparsity",
                "metrics.epochs_run",
                "metrics.fit_seconds",
            ]
            if c in runs.columns
        ],
    )
    order = [d for d in DATASETS if d in set(runs["dataset"])]
    out = ["# Sparsity study: results", ""]
    out += [
        "Mean ± std over seeds (n per cell in the per-part tables). L1 per dataset and sparse "
        "form as chosen in `l1_selection.md`.",
        "",
        "## Headline: AUC-PR and VUS-PR",
        "",
        "| dataset | standard AUC-PR | gate AUC-PR | projection AUC-PR "
        "| standard VUS-PR | gate VUS-PR | projection VUS-PR |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in order:
        sel = runs[runs["dataset"] == dataset]
        cells = [
            _ms(sel[sel["model"] == m][f"metrics.{metric}"])
            for metric in ("auc_pr", "vus_pr")
            for m in MODELS
        ]
        out.append(f"| {dataset} | {' | '.join(cells)} |")
    for part, title in PARTS.items():
        names = [d for d in order if DATASETS[d][1] == part]
        if not names:
            continue
        hit = part != "a"
        out += [
            "",
            f"## {title}",
            "",
            "| dataset | model | L1 | AUC-PR | VUS-PR | AUC-ROC | F1 | "
            + ("HitRate@100% | " if hit else "")
            + "Δ AUC-PR vs standard (paired by seed) | val MSE | sparsity | epochs | runs |",
            "|---|---|---|---|---|---|---|" + ("---|" if hit else "") + "---|---|---|---|---|",
        ]
        for dataset in names:
            sel = runs[runs["dataset"] == dataset]
            base = sel[sel["model"] == "standard"].set_index("seed")["metrics.auc_pr"]
            for m in MODELS:
                r = sel[sel["model"] == m]
                if r.empty:
                    continue
                l1 = "-" if m == "standard" else f"{r['l1'].iloc[0]:g}"
                scores = r.set_index("seed")["metrics.auc_pr"]
                delta = "-" if m == "standard" else _ms(paired_by_seed(scores, base))
                cells = [
                    dataset,
                    m,
                    l1,
                    _ms(r["metrics.auc_pr"]),
                    _ms(r["metrics.vus_pr"]),
                    _ms(r["metrics.auc_roc"]),
                    _ms(r["metrics.f1"]),
                ]
                if hit:
                    cells.append(_ms(r.get("metrics.hit_rate_100", pd.Series(dtype=float))))
                cells += [
                    delta,
                    _ms(r["metrics.val_reconstruction_mse"], 4),
                    "-" if m == "standard" else _ms(r["metrics.sparsity"], 2),
                    _ms(r["metrics.epochs_run"], 1),
                    str(len(r)),
                ]
                out.append("| " + " | ".join(cells) + " |")
    (HERE / "results.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))
    plot_results(runs, order, MODELS, HERE / "auc_pr_vus_pr.png")
    selection = select(select_sweep)
    datasets = [d for d in DATASETS if d in set(selection["dataset"])]
    plot_selection(selection, datasets, TOLERANCE, HERE / "l1_selection.png")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["select"] and len(argv) == 2:
            table = select(argv[1])
            write_selection(table)
            groups_to_run(table)
        elif argv[:1] == ["report"] and len(argv) == 3:
            report(argv[1], argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except LookupError as error:  # no such experiment, or no run has that sweep tag
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
