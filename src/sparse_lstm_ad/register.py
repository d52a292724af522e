"""Register a run's scoring model, or the best run of a sweep, in the MLflow model registry.

    sparse-lstm-ad register --name NAME --run RUN_ID
    sparse-lstm-ad register --name NAME --sweep multirun/DATE/TIME --selected
    sparse-lstm-ad register --name NAME --sweep multirun/DATE/TIME --metric auc_pr

`--selected` registers the run a selection sweep (`+experiment=select`) chose without the test
labels (sweep_selection.py); `--group <data>.seed<seed>` picks one where it chose per group.
A sweep logged with `tracking.experiment=STUDY` is found with `--experiment STUDY`. Its best
run by a test metric (auc_pr, the default) is an oracle choice: it sees the test labels, so it
is for comparison only. The version says how it was chosen in its tag `chosen_by`.

Afterwards `models:/NAME/latest` (or `models:/NAME/<version>`) works wherever a model URI does,
for instance in `sparse-lstm-ad score --model models:/NAME/latest ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from sparse_lstm_ad.config import TrackingConfig


def best_run(runs: pd.DataFrame, metric: str, lowest: bool) -> str:
    """The FINISHED run with the best value of `metric`."""
    column = f"metrics.{metric}"
    if runs.empty:
        raise LookupError(
            "no run has this sweep tag in this experiment (the tag is hydra.sweep.dir exactly "
            "as it was given; a sweep logged with tracking.experiment=NAME needs --experiment NAME)"
        )
    if column not in runs.columns:
        raise LookupError(f"no run of the sweep logged the metric {metric!r}")
    done = runs[(runs["status"] == "FINISHED") & runs[column].notna()]
    if done.empty:
        raise LookupError(f"no FINISHED run of the sweep has {metric!r}")
    ranked = done.sort_values(column, ascending=lowest)
    return str(ranked.iloc[0]["run_id"])


CHOSEN_BY_TAG = "chosen_by"  # on a version registered from a sweep: how its run was chosen
# The metrics logged without the test labels (pipeline.final_metrics, the training curves, the
# sparse layer's figures, MLflow's system metrics, and every `*_reconstruction_mse`); any other
# is taken to see them: a new metric errs on the side of the oracle warning.
LABEL_FREE = frozenset(
    {"fit_seconds", "threshold", "flagged_share", "epochs_run", "best_epoch", "l1_effective"}
    | {"loss", "val_loss", "mse", "val_mse", "epoch_seconds", "learning_rate"}
    | {"sparsity", "sparsity_exact", "sparse_l1", "sparse_layer_closed", "sparse_rank"}
    | {"injected_auc_pr", "injected_seconds"}
)


def sees_test_labels(metric: str) -> bool:
    """Whether choosing by `metric` is an oracle choice: one that saw the test labels."""
    label_free = metric.endswith("_reconstruction_mse") or metric.startswith("system/")
    return metric not in LABEL_FREE and not label_free


def chosen_by(metric: str, lowest: bool) -> str:
    """The `chosen_by` tag: `auc_pr (oracle: test labels)`."""
    rule = f"{metric}, lowest" if lowest else metric
    return f"{rule} ({'oracle: test labels' if sees_test_labels(metric) else 'no test labels'})"


SELECTED = "label-free selection (no test labels)"  # chosen_by of a selected run


def register(
    cfg: TrackingConfig,
    name: str,
    run_id: str | None,
    sweep: str | None,
    metric: str,
    lowest: bool,
    group: str | None = None,
    selected: bool = False,
) -> str:
    """Register `run_id`, the sweep's selected run, or its best run by `metric`, as `name`;
    the message."""
    from sparse_lstm_ad import tracking

    if sweep is None:
        version = tracking.register_model(cfg, run_id, name)
        return f"registered run {run_id} as models:/{name}/{version}"
    tracking.require_experiment(cfg)
    if selected:
        return _register_selected(cfg, name, str(Path(sweep)), group)
    # As `report` and `leaderboard` read a sweep: jobs skipped on a re-run are the earlier runs.
    runs = tracking.sweep_results(cfg, str(Path(sweep)))
    if runs.empty and not tracking.sweep_runs(cfg, str(Path(sweep))).empty:
        raise LookupError(f"no FINISHED run of the sweep has {metric!r}")
    run_id = best_run(runs, metric, lowest)
    version = tracking.register_model(cfg, run_id, name, {CHOSEN_BY_TAG: chosen_by(metric, lowest)})
    rule = f"the lowest {metric}" if lowest else metric
    if sees_test_labels(metric):
        how = f"chosen by {rule} on the test labels: an oracle choice, for comparison only"
    else:
        how = f"chosen by {rule}, without the test labels"
    return f"registered run {run_id} as models:/{name}/{version}, {how}"


def _register_selected(cfg: TrackingConfig, name: str, sweep: str, group: str | None) -> str:
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.pipeline.sweep_selection import selected_run

    parent = tracking.sweep_parent(cfg, sweep)
    if parent is None:
        raise LookupError(f"no sweep {sweep!r} in this experiment (its parent run is missing)")
    run_id = selected_run(tracking.run_tags(cfg, parent), group)
    version = tracking.register_model(cfg, run_id, name, {CHOSEN_BY_TAG: SELECTED})
    return f"registered run {run_id} as models:/{name}/{version}, the sweep's {SELECTED}"
