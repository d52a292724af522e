"""A selection sweep's verdict, on its parent run: which candidate suits each data set.

The sweep's FINISHED runs (every invocation's: a resumed sweep selects among them all) are
grouped by data set and seed; in each group the candidates are ranked by the label-free
criteria of selection.py. The parent gets the table (`selection/selection.csv`) and the tags
`selected_model` and `selected_run_id`; a sweep over several groups gets one pair per group,
`selected_model.<data>.seed<seed>`. `sparse-lstm-ad register --sweep DIR --selected`
registers the selected run.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from sparse_lstm_ad import tracking
from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.selection import AGGREGATE, CANDIDATE, aggregate, centrality

log = logging.getLogger(__name__)

SELECTED_MODEL_TAG = "selected_model"
SELECTED_RUN_TAG = "selected_run_id"
TABLE = "selection/selection.csv"


def group_of(run: pd.Series) -> str:
    """`<data>.seed<seed>`: the candidates compared with one another."""
    return f"{run['tags.data']}.seed{run['params.seed']}"


def criteria_table(cfg: TrackingConfig, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per FINISHED run: its group, candidate, run id and label-free criteria."""
    rows = []
    for group, members in runs.groupby(runs.apply(group_of, axis=1), sort=True):
        scores = {
            run.run_id: tracking.run_csv(cfg, run.run_id, "scores/test_scores.csv")[
                "score"
            ].to_numpy()
            for run in members.itertuples()
        }
        central = centrality(scores)
        for _, run in members.iterrows():
            rows.append(
                {
                    "group": group,
                    CANDIDATE: run["tags.model"],
                    "run_id": run["run_id"],
                    "injected_auc_pr": run.get("metrics.injected_auc_pr", float("nan")),
                    "centrality": central[run["run_id"]],
                }
            )
    return pd.DataFrame(rows)


def rank_groups(table: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    parts = [aggregate(members, weights) for _, members in table.groupby("group", sort=True)]
    return pd.concat(parts).sort_values(["group", AGGREGATE]).reset_index(drop=True)


def select_in_sweep(
    cfg: TrackingConfig, sweep: str, parent_id: str, weights: Mapping[str, float]
) -> pd.DataFrame:
    """Rank the sweep's candidates, record the verdict on the parent; the ranked table."""
    runs = tracking.sweep_results(cfg, sweep)
    if runs.empty:
        log.warning("selection: no FINISHED run in the sweep, nothing to select from")
        return pd.DataFrame()
    ranked = rank_groups(criteria_table(cfg, runs), weights)
    chosen = ranked[ranked["selected"]]
    single = len(chosen) == 1
    tags = {}
    for _, row in chosen.iterrows():
        suffix = "" if single else f".{row['group']}"
        tags[SELECTED_MODEL_TAG + suffix] = str(row[CANDIDATE])
        tags[SELECTED_RUN_TAG + suffix] = str(row["run_id"])
    tracking.tag_run(cfg, parent_id, tags)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(TABLE).name
        ranked.to_csv(path, index=False)
        tracking.log_files_to(cfg, parent_id, [path], str(Path(TABLE).parent))
    return ranked


def selected_run(tags: Mapping[str, str], group: str | None) -> str:
    """The run a selection sweep's parent chose (for `group`, when it chose per group)."""
    if group is not None:
        key = f"{SELECTED_RUN_TAG}.{group}"
    elif SELECTED_RUN_TAG in tags:
        key = SELECTED_RUN_TAG
    else:
        prefix = f"{SELECTED_RUN_TAG}."
        groups = sorted(k.removeprefix(prefix) for k in tags if k.startswith(prefix))
        if not groups:
            raise LookupError(
                "the sweep's parent run has no selection: run it with +experiment=select "
                "(or selection.enabled=true)"
            )
        raise LookupError(f"the sweep selected per group; pass --group, one of {', '.join(groups)}")
    if key not in tags:
        raise LookupError(f"the sweep's parent run has no tag {key}")
    return tags[key]


def format_selection(ranked: pd.DataFrame) -> str:
    shown = ranked[["group", CANDIDATE, "injected_auc_pr", "centrality", AGGREGATE, "selected"]]
    return "selection (no test labels):\n" + shown.to_string(index=False, float_format="%.3f")
