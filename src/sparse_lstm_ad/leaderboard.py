"""The benchmark's leaderboard: per dataset mean ± std of each detector, and average ranks.

Input is one row per FINISHED run (`RUN_COLUMNS`), read from MLflow or from the `runs.csv` a
previous leaderboard wrote: both give the same tables, so a committed leaderboard can be
checked against its store. `python -m sparse_lstm_ad.leaderboard SWEEP` prints it, writes it
to --out and logs it to the sweep's parent run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sparse_lstm_ad.config import TrackingConfig

# MLflow's run columns -> the leaderboard's; the tags are the config choices of the sweep.
RUN_COLUMNS = {
    "run_id": "run_id",
    "tags.data": "dataset",
    "tags.model": "detector",
    "params.seed": "seed",
    "metrics.auc_pr": "auc_pr",
    "metrics.vus_pr": "vus_pr",
    "metrics.auc_roc": "auc_roc",
    "metrics.hit_rate_100": "hit_rate_100",
    "metrics.mass_hit_rate_100": "mass_hit_rate_100",
    "metrics.sparsity_exact": "sparsity_exact",
    "metrics.epochs_run": "epochs_run",
    "metrics.best_epoch": "best_epoch",
    "tags.stopped_by": "stopped_by",
}
METRICS = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR", "auc_roc": "AUC-ROC"}
EXPLANATIONS = {
    "hit_rate_100": "HitRate@100 (error contributions)",
    "mass_hit_rate_100": "HitRate@100 (sparse layer mass)",
}
# The order detectors are listed in when nothing else orders them: networks, then baselines.
DETECTORS = ("standard", "sparse", "sparse_projection", "mahalanobis", "pca", "iforest")


def from_mlflow(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow's search_runs frame -> the leaderboard's run table, FINISHED runs only."""
    runs = runs[runs["status"] == "FINISHED"]
    table = pd.DataFrame({new: runs.get(old) for old, new in RUN_COLUMNS.items()})
    table["seed"] = pd.to_numeric(table["seed"]).astype(int)
    return table.sort_values(["dataset", "detector", "seed"], kind="stable").reset_index(drop=True)


def _detector_order(names: pd.Index) -> list[str]:
    known = [d for d in DETECTORS if d in names]
    return known + sorted(set(names) - set(known))


def cell_stats(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(dataset, detector) -> mean, std (over seeds, ddof 1) and n of `metric`."""
    grouped = runs.groupby(["dataset", "detector"])[metric]
    return grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"})


def ranks(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each detector's rank on each dataset by mean `metric` (1 = best, ties share), wide."""
    means = cell_stats(runs, metric)["mean"].unstack("detector")
    return means.rank(axis=1, ascending=False, method="average")


def average_ranks(runs: pd.DataFrame) -> pd.DataFrame:
    """Detector -> its mean rank over the datasets, per metric; best AUC-PR rank first."""
    table = pd.DataFrame({label: ranks(runs, m).mean() for m, label in METRICS.items()})
    table["datasets"] = ranks(runs, "auc_pr").notna().sum()
    return table.sort_values(["AUC-PR", "VUS-PR"], kind="stable").rename_axis("detector")


def _cell(mean: float, std: float, n: int) -> str:
    if pd.isna(mean):
        return "-"
    spread = "" if pd.isna(std) else f" ± {std:.3f}"
    return f"{mean:.3f}{spread} ({n})"


def per_dataset(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Datasets x detectors, each cell 'mean ± std (runs)' of `metric`; best mean in bold."""
    stats = cell_stats(runs, metric)
    best = stats["mean"].groupby(level="dataset").transform("max")
    cells = pd.Series(
        [
            f"**{_cell(m, s, n)}**" if m == b else _cell(m, s, n)
            for (m, s, n), b in zip(stats.itertuples(index=False), best, strict=True)
        ],
        index=stats.index,
    )
    wide = cells.unstack("detector").fillna("-")
    return wide[_detector_order(wide.columns)]


def to_markdown(table: pd.DataFrame, index: str) -> str:
    """A GitHub Markdown table of `table` with its index as the first column."""
    frame = table.reset_index().rename(columns={table.index.name or "index": index})
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(_text(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def health(runs: pd.DataFrame) -> pd.DataFrame:
    """Per network detector: how its runs ended, and the runs that are defects, not results:
    best at epoch 1 (the fit never improved on its first epoch), or a sparse layer closed."""
    nets = runs[runs["epochs_run"].notna()]
    closed = nets["sparsity_exact"] >= 1.0
    flagged = nets[(nets["best_epoch"] <= 1) | closed]
    grouped = nets.groupby("detector")
    table = pd.DataFrame(
        {
            "runs": grouped.size(),
            "early stopping": grouped["stopped_by"].agg(
                lambda s: int((s == "early_stopping").sum())
            ),
            "epoch cap": grouped["stopped_by"].agg(lambda s: int((s == "max_epochs").sum())),
            "median epochs": grouped["epochs_run"].median(),
            "best at epoch 1": grouped["best_epoch"].agg(lambda s: int((s <= 1).sum())),
            "layer closed": closed.groupby(nets["detector"]).sum().astype(int),
            "datasets of these": flagged.groupby("detector")["dataset"].agg(
                lambda s: ", ".join(sorted(set(s)))
            ),
        }
    ).fillna({"datasets of these": "-"})
    return table.loc[_detector_order(table.index)]


def leaderboard_markdown(runs: pd.DataFrame, title: str) -> str:
    """The whole leaderboard: average ranks, then a table per metric and per explanation."""
    seeds = runs.groupby(["dataset", "detector"]).size()
    parts = [
        f"# {title}",
        f"{len(runs)} runs: {runs['detector'].nunique()} detectors x "
        f"{runs['dataset'].nunique()} datasets x {seeds.min()}-{seeds.max()} seeds. "
        "Cells: mean ± std over seeds (runs); bold: the best mean of its row.",
        "## Average rank across datasets (1 = best; by each dataset's mean)",
        to_markdown(average_ranks(runs), "detector"),
    ]
    if runs["epochs_run"].notna().any():
        parts += ["## How the networks' runs ended", to_markdown(health(runs), "detector")]
    for metric, label in {**METRICS, **EXPLANATIONS}.items():
        if runs[metric].notna().any():
            parts += [
                f"## {label}",
                to_markdown(per_dataset(runs.dropna(subset=[metric]), metric), "dataset"),
            ]
    return "\n\n".join(parts) + "\n"


def write_leaderboard(
    cfg: TrackingConfig, sweep: str, out: Path | None, from_csv: Path | None
) -> str:
    """The leaderboard of the sweep's runs (or of a runs.csv it wrote), with runs.csv and the
    rank plot, logged to the sweep's parent and moved into `out` (default SWEEP/leaderboard)."""
    import tempfile

    from sparse_lstm_ad import plots
    from sparse_lstm_ad.report import finished_runs, publish

    if from_csv is not None:
        if not from_csv.is_file():
            raise FileNotFoundError(f"{from_csv}: no such file")
        runs = pd.read_csv(from_csv)
    else:
        runs = from_mlflow(finished_runs(cfg, sweep))
    markdown = leaderboard_markdown(runs, f"Leaderboard of `{sweep}`")
    out = out or Path(sweep) / "leaderboard"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "leaderboard.md").write_text(markdown)
        runs.to_csv(folder / "runs.csv", index=False)
        plot = plots.rank_plot(ranks(runs, "auc_pr"), "AUC-PR", folder / "ranks.png")
        files = [folder / "leaderboard.md", folder / "runs.csv", plot]
        publish(files, out, None if from_csv else cfg, sweep, "leaderboard")
    return markdown + f"\nwritten: {out}/leaderboard.md, runs.csv, ranks.png"


def main(argv: list[str] | None = None) -> int:
    """`python -m sparse_lstm_ad.leaderboard`: the `leaderboard` command of `sparse-lstm-ad`."""
    from sparse_lstm_ad.cli import commands, run

    return run(commands.leaderboard, argv)


if __name__ == "__main__":
    raise SystemExit(main())
