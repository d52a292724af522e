"""The baselines study's table from its MLflow store: mean ± std over seeds per dataset."""

from __future__ import annotations

import sys

import mlflow
import pandas as pd

from sparse_lstm_ad.report import to_markdown

MODELS = [
    "standard",
    "sparse",
    "sparse_projection",
    "mahalanobis",
    "mahalanobis_row",
    "pca",
    "iforest",
]


def runs(store: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
    frame = mlflow.search_runs(experiment_names=["baselines"], filter_string="status = 'FINISHED'")
    frame = frame[frame["tags.sweep_parent"].isna()] if "tags.sweep_parent" in frame else frame
    frame["dataset"] = frame["params.data.name"]
    # Runs before the window scope existed, and those asking for it, scored rows alone.
    scope = frame.get("params.model.mahalanobis_scope", pd.Series(index=frame.index, dtype=object))
    row_scope = (frame["tags.model"] == "mahalanobis") & (scope.fillna("row") == "row")
    frame.loc[row_scope, "tags.model"] = "mahalanobis_row"
    return frame


def cell(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} ({len(values)})"


def table(frame: pd.DataFrame, metric: str) -> str:
    grouped = frame.groupby(["dataset", "tags.model"])[f"metrics.{metric}"].apply(cell)
    wide = grouped.unstack("tags.model").reindex(columns=MODELS).astype(object)
    means = frame.groupby(["dataset", "tags.model"])[f"metrics.{metric}"].mean().unstack()
    wide.loc["mean over datasets"] = [
        f"{means[m].mean():.3f}" if m in means else "-" for m in MODELS
    ]
    return to_markdown(wide.reset_index())


def capacity(frame: pd.DataFrame) -> str:
    """The standard model's AUC-PR by layers and window (capacity.sh adds the variants)."""
    standard = frame[(frame["tags.model"] == "standard") & (frame["scope"] == "window")]
    standard = standard[standard["params.seed"].isin(["0", "1"])]
    keys = ["dataset", "params.model.layers", "params.data.window"]
    grouped = standard.groupby(keys)[["metrics.auc_pr", "metrics.val_reconstruction_mse"]]
    table = grouped.agg(cell).reset_index()
    table = table[
        table["dataset"].isin(standard.loc[standard["params.model.layers"] == "2", "dataset"])
    ]
    return to_markdown(table.rename(columns=lambda c: c.split(".")[-1]))


def scopes(frame: pd.DataFrame) -> str:
    """AUC-PR of the LSTMs scored per step (EncDec-AD) and by window, seeds 0-2, and the
    window Mahalanobis baseline beside them."""
    seeds = frame["params.seed"].isin(["0", "1", "2"])
    plain = (frame["params.data.window"] == "15") & (
        frame["params.model.layers"].fillna("1") == "1"
    )
    lstm = frame[frame["tags.model"].isin(MODELS[:3]) & seeds & plain]
    label = lstm["tags.model"] + " / " + lstm["scope"]
    table = lstm.groupby([lstm["dataset"], label])["metrics.auc_pr"].apply(cell).unstack()
    baseline = frame[frame["tags.model"] == "mahalanobis"].groupby("dataset")["metrics.auc_pr"]
    table["mahalanobis (window)"] = baseline.apply(cell)
    return to_markdown(table.reset_index())


def main(store: str) -> None:
    everything = runs(store)
    # The scope a run used: its tag (auto resolved), else its setting; before both, step.
    nothing = pd.Series(index=everything.index, dtype=object)
    scope = everything.get("tags.scoring_scope", nothing)
    setting = everything.get("params.scoring.scope", nothing)
    everything["scope"] = scope.fillna(setting).fillna("step")
    # The scope means nothing to the baselines that score rows or windows themselves.
    own = everything["tags.model"].isin(["mahalanobis", "mahalanobis_row", "iforest"])
    everything.loc[own, "scope"] = "step"
    default = (
        (everything["params.model.layers"].fillna("1") == "1")
        & (everything["params.data.window"] == "15")
        & (everything["scope"] == "step")
    )
    frame = everything[default]
    print(f"# The detectors with their defaults, {frame['params.seed'].nunique()} seeds\n")
    for metric in ("auc_pr", "vus_pr", "auc_roc"):
        print(f"## {metric} (mean ± std (runs) over seeds)\n\n{table(frame, metric)}\n")
    lstm = frame[frame["tags.model"].isin(MODELS[:3])]
    stopped = lstm["tags.stopped_by"].value_counts().to_dict()
    print(f"## How the LSTM runs stopped\n\n{stopped} of {len(lstm)} runs\n")
    seconds = frame.groupby("tags.model")["metrics.fit_seconds"].median().reindex(MODELS)
    wall = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    walls = wall.groupby(frame["tags.model"]).median().reindex(MODELS)
    timing = pd.DataFrame({"fit s (median)": seconds, "run s (median)": walls}).round(2)
    print(f"## Time per run\n\n{to_markdown(timing.reset_index())}\n")
    sparse = frame[frame["tags.model"].isin(MODELS[1:3])]
    share = sparse.groupby(["dataset", "tags.model"])["metrics.sparsity_exact"].mean().unstack()
    share = to_markdown(share.round(3).reset_index())
    print(f"## Share of exactly-zero sparse weights (mean)\n\n{share}\n")
    heading = "## Standard model, scored by window: layers and window length (seeds 0-1)"
    print(f"{heading}\n\n{capacity(everything)}\n")
    print(f"## AUC-PR scored per step or by window (seeds 0-2)\n\n{scopes(everything)}")


if __name__ == "__main__":
    main(sys.argv[1])
