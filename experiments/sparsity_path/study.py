"""The sparsity path study's tables and plots, from its MLflow store.

Usage: python experiments/sparsity_path/study.py STORE_DIR [OUT_DIR]
Writes OUT_DIR/results.md (default: this folder), path_auc_pr.png, path_sparsity.png and
runs.csv. The label-free L1 is chosen per seed from validation reconstruction errors only;
the "oracle" L1 is the one with the best mean test AUC-PR: an upper bound, never a result.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

EXPERIMENT = "sparsity_path"
FORMS = ("sparse", "sparse_projection")
REFERENCES = ("standard", "mahalanobis", "pca")
# The label-free rule: the largest L1 whose validation reconstruction MSE is within this share
# of the smallest on the path (of that seed). Fixed before any test label was looked at.
MSE_TOLERANCE = 0.05
METRICS = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR"}


def _mass_share(artifact_uri: str, role: str) -> float:
    """The sparse layer's share of L1 mass on channels of `role` (`_n`: the noise channels)."""
    path = Path(unquote(urlparse(artifact_uri).path)) / "plots" / "sparse_channel_mass.csv"
    if not path.exists():
        return float("nan")
    mass = pd.read_csv(path)
    total = mass["mass"].sum()
    return (
        float(mass.loc[mass["channel"].str.endswith(role), "mass"].sum() / total) if total else 0.0
    )


def load(store: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{Path(store).resolve()}/mlflow.db")
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT], filter_string="status = 'FINISHED'")
    frame = frame[frame["tags.model"].notna()]  # the sweeps' parent runs have no model
    sparse = frame["tags.model"].isin(FORMS)
    runs = pd.DataFrame(
        {
            "run_id": frame["run_id"],
            "dataset": frame["params.data.name"],
            "detector": frame["tags.model"],
            "l1": pd.to_numeric(frame["params.model.l1"]).where(sparse),
            "seed": pd.to_numeric(frame["params.seed"]).astype(int),
            "auc_pr": frame["metrics.auc_pr"],
            "vus_pr": frame["metrics.vus_pr"],
            "val_mse": frame["metrics.val_reconstruction_mse"],
            "zero_share": frame.get("metrics.sparsity_exact"),
            "noise_mass": [
                _mass_share(uri, "_n") if s else np.nan
                for uri, s in zip(frame["artifact_uri"], sparse, strict=True)
            ],
        }
    )
    return runs.sort_values(["dataset", "detector", "l1", "seed"]).reset_index(drop=True)


def label_free(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, form, seed): the run at the label-free L1 of that seed's path."""
    chosen = []
    for _, path in runs[runs["detector"].isin(FORMS)].groupby(["dataset", "detector", "seed"]):
        near_best = path[path["val_mse"] <= (1 + MSE_TOLERANCE) * path["val_mse"].min()]
        chosen.append(near_best.loc[near_best["l1"].idxmax()])
    return pd.DataFrame(chosen)


def stats(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def cell(values: pd.Series, digits: int = 3) -> str:
    if values.dropna().empty:
        return "-"
    mean, std = stats(values.dropna())
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def verdict(a: pd.Series, b: pd.Series) -> str:
    """win / tie / loss of a against b: means apart by more than twice the larger seed std."""
    if a.dropna().empty or b.dropna().empty:
        return "-"
    (ma, sa), (mb, sb) = stats(a.dropna()), stats(b.dropna())
    margin = 2 * max(sa, sb)
    if ma - mb > margin:
        return f"**win** (+{ma - mb:.3f})"
    if mb - ma > margin:
        return f"loss ({ma - mb:.3f})"
    return f"tie ({ma - mb:+.3f})"


def oracle_l1(runs: pd.DataFrame, dataset: str, form: str) -> float:
    path = runs[(runs["dataset"] == dataset) & (runs["detector"] == form)]
    return float(path.groupby("l1")["auc_pr"].mean().idxmax())


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def the_map(runs: pd.DataFrame, chosen: pd.DataFrame, metric: str) -> str:
    header = [
        "dataset",
        "form",
        "label-free L1 (per seed)",
        METRICS[metric],
        "vs standard",
        "vs mahalanobis",
        "oracle L1",
        f"oracle {METRICS[metric]}",
        "oracle vs standard",
    ]
    rows = []
    for (dataset, form), picked in chosen.groupby(["dataset", "detector"]):
        ref = runs[runs["dataset"] == dataset]
        standard = ref.loc[ref["detector"] == "standard", metric]
        mahalanobis = ref.loc[ref["detector"] == "mahalanobis", metric]
        best = oracle_l1(runs, dataset, form)
        at_best = ref.loc[(ref["detector"] == form) & (ref["l1"] == best), metric]
        l1s = ", ".join(f"{v:g}" for v in picked.sort_values("seed")["l1"])
        rows.append(
            [
                dataset,
                form,
                l1s,
                cell(picked[metric]),
                verdict(picked[metric], standard),
                verdict(picked[metric], mahalanobis),
                f"{best:g}",
                cell(at_best),
                verdict(at_best, standard),
            ]
        )
    return markdown_table(header, rows)


def path_tables(runs: pd.DataFrame) -> str:
    parts = []
    for dataset, part in runs.groupby("dataset"):
        rows = []
        for (detector, l1), cellruns in part.groupby(["detector", "l1"], dropna=False):
            rows.append(
                [
                    detector,
                    "-" if np.isnan(l1) else f"{l1:g}",
                    cell(cellruns["auc_pr"]),
                    cell(cellruns["vus_pr"]),
                    cell(cellruns["zero_share"], 2),
                    cell(cellruns["noise_mass"], 2),
                    cell(cellruns["val_mse"], 4),
                    str(len(cellruns)),
                ]
            )
        header = [
            "detector",
            "L1",
            "AUC-PR",
            "VUS-PR",
            "zero share",
            "noise-channel mass",
            "val MSE",
            "runs",
        ]
        parts.append(f"### {dataset}\n\n{markdown_table(header, rows)}")
    return "\n\n".join(parts)


def plot_paths(runs: pd.DataFrame, column: str, label: str, path: Path) -> None:
    datasets = sorted(runs["dataset"].unique())
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(3.2 * len(datasets), 3.4), sharey=True, squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = runs[runs["dataset"] == dataset]
        for i, form in enumerate(FORMS):
            points = part[part["detector"] == form].groupby("l1")[column].agg(["mean", "std"])
            ax.errorbar(
                points.index,
                points["mean"],
                points["std"],
                marker="o",
                capsize=3,
                label=form,
                color=f"C{i}",
            )
        if column in METRICS:
            for i, ref in enumerate(REFERENCES):
                values = part.loc[part["detector"] == ref, column]
                if not values.empty:
                    ax.axhline(values.mean(), ls="--", color=f"C{i + 2}", label=ref)
        ax.set(xscale="log", title=dataset, xlabel="model.l1")
    axes[0, 0].set_ylabel(label)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(store: str, out: Path) -> None:
    runs = load(store)
    chosen = label_free(runs)
    runs.to_csv(out / "runs.csv", index=False)
    seeds = runs.groupby(["dataset", "detector", "l1"], dropna=False).size()
    text = [
        "# Sparsity path: results (written by study.py)",
        f"{len(runs)} runs, {seeds.min()}-{seeds.max()} seeds per cell; mean ± std over seeds. "
        f"Label-free L1: per seed, the largest L1 whose validation reconstruction MSE is within "
        f"{MSE_TOLERANCE:.0%} of the path's smallest. Oracle L1: the best mean test AUC-PR (an "
        "upper bound). win/loss: means apart by more than twice the larger seed std.",
        "## The map (AUC-PR)",
        the_map(runs, chosen, "auc_pr"),
        "## The map (VUS-PR)",
        the_map(runs, chosen, "vus_pr"),
        "## The paths",
        path_tables(runs),
    ]
    (out / "results.md").write_text("\n\n".join(text) + "\n")
    plot_paths(runs, "auc_pr", "AUC-PR", out / "path_auc_pr.png")
    plot_paths(runs, "zero_share", "share of exact zeros", out / "path_sparsity.png")
    plot_paths(runs, "noise_mass", "layer mass on noise channels", out / "path_noise_mass.png")
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent)
