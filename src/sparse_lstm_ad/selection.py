"""Which detector for this data: label-free criteria per candidate, and their rank aggregate.

After Goswami et al., "Unsupervised Model Selection for Time-series Anomaly Detection"
(ICLR 2023): no criterion is reliable alone, so each ranks the candidates and the ranks are
averaged (Borda), weighted by `selection.weights`. The criteria, all without test labels:

- injected_auc_pr: the detector's AUC-PR on a copy of its validation rows with anomalies
  injected (injection.py), scored by the fitted detector itself: nothing is trained again;
- centrality: the mean Kendall tau of its ranking of the test rows with every other
  candidate's; detectors that agree with the others are less likely to be the odd one out.

A candidate's criterion that is NaN (its run did not log it) ranks last on that criterion.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

CANDIDATE = "candidate"  # the table's column naming each candidate
AGGREGATE = "aggregate_rank"


def centrality(test_scores: Mapping[str, np.ndarray]) -> dict[str, float]:
    """candidate -> mean Kendall tau of its test-row scores with each other candidate's.

    Rows where any candidate has no score (NaN: no window covers them) are left out.
    """
    names = list(test_scores)
    if len(names) < 2:
        return {name: float("nan") for name in names}
    matrix = np.column_stack([np.asarray(test_scores[n], dtype=np.float64) for n in names])
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    taus = np.full((len(names), len(names)), np.nan)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            taus[i, j] = taus[j, i] = _tau(matrix[:, i], matrix[:, j])
    means = np.nanmean(taus, axis=1)  # the diagonal, NaN, is left out
    return {name: float(value) for name, value in zip(names, means, strict=True)}


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0  # a constant score ranks nothing: no agreement
    return float(kendalltau(a, b).statistic)


def aggregate(table: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """`table` (one row per candidate, a column per criterion, higher is better) with a rank
    column per weighted criterion (1 = best, ties share the mean rank, NaN last), the weighted
    mean of those ranks and `selected`: the lowest aggregate, ties to the higher criteria in
    `weights` order."""
    used = {name: w for name, w in weights.items() if w > 0}
    missing = [name for name in used if name not in table.columns]
    if missing:
        raise KeyError(f"the criteria table has no column {missing}")
    ranked = table.copy()
    for name in used:
        ranked[f"rank_{name}"] = ranked[name].rank(ascending=False, na_option="bottom")
    total = sum(used.values())
    ranked[AGGREGATE] = sum(w * ranked[f"rank_{name}"] for name, w in used.items()) / total
    order = ranked.sort_values(
        [AGGREGATE, *used], ascending=[True, *([False] * len(used))], na_position="last"
    )
    ranked["selected"] = False
    ranked.loc[order.index[0], "selected"] = True
    return ranked
