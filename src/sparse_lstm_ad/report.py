"""Tables that compare the runs of a sweep, from what MLflow recorded."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sparse_lstm_ad.config import TrackingConfig

COLUMNS = {
    "tags.model": "model",
    "tags.data": "case",
    "status": "status",
    "metrics.auc_roc": "AUC-ROC",
    "metrics.auc_pr": "AUC-PR",
    "metrics.vus_pr": "VUS-PR",
    "metrics.f1": "F1",
    "metrics.flagged_share": "flagged",
    "tags.alarm_shift": "alarm shift",
    "metrics.train_reconstruction_mse": "train MSE",
    "metrics.epochs_run": "epochs",
    "tags.stopped_by": "stopped by",
    "metrics.fit_seconds": "fit s",
}


def sweep_table(runs: pd.DataFrame, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: model, case, detection metrics, reconstruction MSE, epochs, seconds.
    `earlier`: the runs that answer the sweep's skipped jobs, each once, their status saying
    so; a job skipped for a run of this sweep (the same config twice) adds no row."""
    if earlier is not None and not earlier.empty:
        shown = runs["run_id"] if "run_id" in runs.columns else []
        earlier = earlier[~earlier["run_id"].isin(shown)].drop_duplicates("run_id")
        runs = pd.concat([runs, earlier.assign(status="skipped: FINISHED before")])
    present = [column for column in COLUMNS if column in runs.columns]
    table = runs[present].rename(columns=COLUMNS)
    if "tags.mlflow.runName" in runs.columns:
        table.insert(0, "run", runs["tags.mlflow.runName"])
    return table.reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "(no runs recorded for this sweep)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def job_counts(runs: pd.DataFrame, noted: dict[str, int]) -> dict[str, int]:
    """How the sweep's jobs ended: the runs' statuses plus jobs noted on the parent run.

    A job is noted "failed" whatever the stage it failed at (some fail before their run
    starts) and "skipped" when an earlier run of its config had FINISHED.
    """
    statuses = runs["status"].value_counts() if not runs.empty else pd.Series(dtype=int)
    return {
        "finished": int(statuses.get("FINISHED", 0)),
        "failed": noted.get("failed", 0),
        "killed": int(statuses.get("KILLED", 0)),
        "skipped": noted.get("skipped", 0),
    }


# ---- The comparison report of a sweep: `sparse-lstm-ad report SWEEP` ----

GROUP_TAGS = {"tags.model": "model", "tags.data": "case"}
REPORT_METRICS = {
    "metrics.auc_roc": "AUC-ROC",
    "metrics.auc_pr": "AUC-PR",
    "metrics.vus_pr": "VUS-PR",
    "metrics.f1": "F1",
    "metrics.flagged_share": "flagged share",
    "metrics.val_reconstruction_mse": "val MSE",
    "metrics.epochs_run": "epochs",
}
# Params that say how or where a run executed, or which repetition it is: never a group key.
_NOT_SWEPT = ("params.seed", "params.threads", "params.rerun", "params.tracking.")


def swept_params(runs: pd.DataFrame) -> list[str]:
    """Params that vary within a (model, case) pair: what the sweep compared besides those."""
    candidates = [
        c for c in runs.columns if c.startswith("params.") and not c.startswith(_NOT_SWEPT)
    ]
    groups = runs.groupby(list(GROUP_TAGS), dropna=False)
    return [c for c in candidates if groups[c].nunique(dropna=False).max() > 1]


def blank_unused(runs: pd.DataFrame) -> pd.DataFrame:
    """Model keys a kind ignores (l1 for the standard model, hidden for a baseline): '-'."""
    from sparse_lstm_ad.detectors.registry import families, unused_model_keys

    runs = runs.copy()
    kinds = runs.get("params.model.kind", pd.Series(index=runs.index, dtype=object))
    for kind in families():
        ignores = kinds == kind
        for name in unused_model_keys(kind):
            column = f"params.model.{name}"
            if column in runs.columns:
                runs[column] = runs[column].astype(object).where(~ignores, "-")
    return runs


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std (n runs) of each metric per model, case and swept value, over seeds; and
    where runs carry the tag, how many flagged far more or fewer rows than promised."""
    runs = blank_unused(runs[runs["status"] == "FINISHED"])
    keys = list(GROUP_TAGS) + swept_params(runs)
    metrics = [m for m in REPORT_METRICS if m in runs.columns]
    grouped = runs.groupby(keys, dropna=False)[metrics]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.size()
    table = pd.DataFrame(index=mean.index)
    for metric in metrics:
        shown = _count_mean_std if metric == "metrics.epochs_run" else _mean_std
        table[REPORT_METRICS[metric]] = [
            shown(m, s) for m, s in zip(mean[metric], std[metric], strict=True)
        ]
    if "tags.alarm_shift" in runs.columns:
        shifts = runs.groupby(keys, dropna=False)["tags.alarm_shift"]
        table["alarm shift"] = shifts.agg(_shift_counts)
    table["runs"] = count
    table = table.reset_index().sort_values(keys, key=_numbers_as_numbers, kind="stable")
    table = table.reset_index(drop=True)
    return table.rename(columns={**{k: k.removeprefix("params.") for k in keys}, **GROUP_TAGS})


def _shift_counts(tags: pd.Series) -> str:
    """'2 too_many_flagged', or '-' when no run of the group was tagged."""
    counts = tags.dropna().value_counts()
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "-"


def _numbers_as_numbers(column: pd.Series) -> pd.Series:
    """MLflow params are strings: sort a swept L1 as 1e-05 < 0.0001, not as text ('-' last)."""
    numbers = pd.to_numeric(column, errors="coerce")
    return column if numbers.isna().all() else numbers


def _mean_std(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def _count_mean_std(mean: float, std: float) -> str:
    """Epochs: 30, or 41.5 ± 2.1; never 30.0000."""
    if pd.isna(mean):
        return "-"
    text = f"{mean:g}" if float(mean).is_integer() else f"{mean:.1f}"
    return text if pd.isna(std) or std == 0 else f"{text} ± {std:.1f}"


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs tabulate, which we do not ship)."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def plot_points(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of `metric` per model, case and L1 (NaN L1 for a kind that has none: the
    standard model, the baselines)."""
    runs = blank_unused(runs[runs["status"] == "FINISHED"])
    runs["l1"] = pd.to_numeric(runs["params.model.l1"], errors="coerce")
    grouped = runs.groupby(["tags.model", "tags.data", "l1"], dropna=False)[f"metrics.{metric}"]
    points = grouped.agg(["mean", "std"]).reset_index()
    return points.rename(columns={"tags.model": "model", "tags.data": "case"})


def finished_runs(cfg: TrackingConfig, sweep: str) -> pd.DataFrame:
    """The sweep's FINISHED runs in cfg's experiment; LookupError saying why there are none."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.tracking import require_experiment

    require_experiment(cfg)
    runs = tracking.sweep_results(cfg, sweep)
    if runs.empty:
        raise LookupError(
            f"no FINISHED run in experiment {cfg.experiment!r} has the sweep tag {sweep!r} "
            "(the tag is hydra.sweep.dir exactly as it was given: relative or absolute)"
        )
    return runs


def staging(out: Path) -> tempfile.TemporaryDirectory[str]:
    """A scratch folder inside `out` for files `publish` moves there: on the same file system,
    where a rename is whole (the system's temp folder is often another: tmpfs)."""
    out.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=out, prefix=".partial-")


def publish(
    files: list[Path], out: Path, cfg: TrackingConfig | None, sweep: str, artifact_path: str
) -> None:
    """Log `files` to the sweep's parent run (if `cfg` and the parent exist), then move them
    into `out`: whole files only, written in `staging(out)` first."""
    from sparse_lstm_ad import tracking

    parent = tracking.sweep_parent(cfg, sweep) if cfg is not None else None
    if parent:
        tracking.log_files_to(cfg, parent, files, artifact_path)
    for path in files:
        path.replace(out / path.name)


def write_report(cfg: TrackingConfig, sweep: str, metric: str, out: Path | None) -> str:
    """The sweep's table and the plot of `metric` against L1, logged to its parent run and
    moved into `out` (default SWEEP/report); returns the Markdown."""
    from sparse_lstm_ad import plots

    runs = finished_runs(cfg, sweep)
    markdown = f"# Sweep `{sweep}`\n\n{to_markdown(summary_table(runs))}\n"
    out = out or Path(sweep) / "report"
    with staging(out) as tmp:
        draft = Path(tmp) / "report.md"
        draft.write_text(markdown)
        figure = plots.metric_against_l1(
            plot_points(runs, metric), metric, Path(tmp) / f"{metric}_vs_l1.png"
        )
        publish([draft, figure], out, cfg, sweep, "report")
    return markdown + f"\nwritten: {out / 'report.md'}, {out / figure.name}"
