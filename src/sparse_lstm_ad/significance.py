"""Whether detectors really differ: on one dataset beyond seed noise, and across datasets by
their ranks (Friedman, then Nemenyi and its critical-difference diagram, Demšar 2006) and by
pairs (Wilcoxon signed-rank, Holm-corrected).

Scores are "higher is better". The across-dataset tests take one mean score per dataset and
detector; scikit-posthocs gives the Nemenyi p-values (plots.py draws its diagram), statsmodels
Holm.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import matplotlib

matplotlib.use("Agg")  # files only, as in plots.py: scikit-posthocs imports pyplot

import numpy as np
import pandas as pd
import scikit_posthocs
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05
# Metrics lie in [0, 1]: differences below this are floating-point rounding, not results.
ROUNDING_PLACES = 12  # decimals means are rounded to before they are ranked
ROUNDING = 10.0**-ROUNDING_PLACES
MIN_DATASETS = 3
# A paired t test on one or two seeds (one degree of freedom: t > 12.7 at 5 %) calls nearly
# any difference noise: a detector worse on both seeds by 0.14 AUC-ROC was marked tied.
MIN_TIE_SEEDS = 3
MIN_DETECTORS = 3


# ---- One dataset: a difference counts only beyond seed noise ----


def paired_by_seed(scores: pd.Series, reference: pd.Series) -> pd.Series:
    """`scores - reference` on the seeds both have (each series indexed by seed)."""
    return (scores - reference).dropna()


def beyond_seed_noise(differences: pd.Series | np.ndarray, alpha: float = ALPHA) -> bool:
    """The sparsity study's rule: a paired t test on seed-paired differences, two-sided at
    `alpha`. Fewer than two pairs cannot show a difference; pairs that differ by the same
    amount every seed (deterministic detectors) differ beyond any noise unless that is 0,
    both read to `ROUNDING`: sums taken in another order are no difference."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return False
    mean, std = d.mean(), d.std(ddof=1)
    if std <= ROUNDING:
        return bool(abs(mean) > ROUNDING)
    t = mean / (std / np.sqrt(len(d)))
    return bool(abs(t) > stats.t.ppf(1 - alpha / 2, len(d) - 1))


def tied_with_best(runs: pd.DataFrame, metric: str, alpha: float = ALPHA) -> pd.Series:
    """(dataset, detector) -> whether the detector has its dataset's best mean `metric` or is
    within seed noise of it. `runs`: one row per run with dataset, detector, seed, `metric`.
    Fewer than MIN_TIE_SEEDS seeds paired with the best's are not called tied."""
    runs = runs.dropna(subset=[metric])
    means = runs.groupby(["dataset", "detector"])[metric].mean()
    per_seed = runs.pivot_table(index=["dataset", "seed"], columns="detector", values=metric)
    tied = {}
    for dataset, seeds in per_seed.groupby(level="dataset"):
        seeds = seeds.droplevel("dataset")
        best = means.loc[dataset].idxmax()
        for detector in means.loc[dataset].index:
            differences = paired_by_seed(seeds[detector], seeds[best])
            testable = len(differences) >= MIN_TIE_SEEDS or detector == best
            tied[(dataset, detector)] = testable and not beyond_seed_noise(differences, alpha)
    return pd.Series(tied, dtype=bool).rename_axis(["dataset", "detector"])


# ---- Across datasets: ranks and pairs ----


@dataclass(frozen=True)
class RankComparison:
    """Detectors compared over datasets by their per-dataset mean scores.

    `not_run` says why the tests were not run (too few datasets or detectors); then only the
    counts and average ranks are set. `pairs` has one row per pair of detectors: `a`, `b`,
    `a_wins` and `b_wins` (datasets where it scores higher), `wilcoxon_p`, `holm_p` (over
    the pairs) and `nemenyi_p`.
    """

    datasets: int
    detectors: int
    average_ranks: pd.Series  # detector -> mean rank, 1 = best, best first
    not_run: str | None = None
    alpha: float = ALPHA
    friedman_statistic: float = float("nan")
    friedman_p: float = float("nan")
    critical_difference: float = float("nan")
    nemenyi_p: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None

    @property
    def friedman_rejects(self) -> bool:
        """Whether the ranks differ at all: Nemenyi's post-hoc pairs are read only then."""
        return bool(self.friedman_p < self.alpha)

    def nemenyi_as_read(self) -> pd.DataFrame | None:
        """Nemenyi's p-values as the diagram draws them: every pair joined (p = 1) where
        Friedman does not reject, as the text reads no pair then."""
        if self.nemenyi_p is None or self.friedman_rejects:
            return self.nemenyi_p
        return pd.DataFrame(1.0, index=self.nemenyi_p.index, columns=self.nemenyi_p.columns)

    def significant_pairs(self, column: str) -> pd.DataFrame:
        """The pairs whose `column` p-value ('holm_p' or 'nemenyi_p') is below alpha; none of
        Nemenyi's where Friedman does not reject (Demšar 2006, 3.2.2: the post-hoc test
        follows a rejection). Holm's Wilcoxon pairs stand alone."""
        if self.pairs is None or (column == "nemenyi_p" and not self.friedman_rejects):
            return pd.DataFrame()
        return self.pairs[self.pairs[column] < self.alpha]


def nemenyi_critical_difference(detectors: int, datasets: int, alpha: float = ALPHA) -> float:
    """Demšar's CD: the difference in average rank beyond which two of `detectors` differ
    (q_alpha is the studentized range's quantile over sqrt 2, his Table 5)."""
    q_alpha = stats.studentized_range.ppf(1 - alpha, detectors, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(detectors * (detectors + 1) / (6 * datasets)))


def smallest_wilcoxon_p(datasets: int) -> float:
    """The smallest two-sided p an exact Wilcoxon signed-rank test over `datasets` can give."""
    return 2.0 ** (1 - datasets)


def common_block(means: pd.DataFrame) -> pd.DataFrame:
    """The datasets x detectors block ranks and tests compare, every detector on every
    dataset: the detectors scored on every dataset, or the datasets every detector was scored
    on, whichever keeps more scores (the datasets on a tie). A detector run on one easy
    dataset is then not ranked first, nor does it take the other datasets out of the tests;
    a detector missing one dataset of many costs that dataset."""
    whole_detectors = means.loc[:, means.notna().all()]
    whole_datasets = means.dropna()
    return whole_detectors if whole_detectors.size > whole_datasets.size else whole_datasets


def compare_detectors(means: pd.DataFrame, alpha: float = ALPHA) -> RankComparison:
    """Friedman, Nemenyi and Holm-corrected pairwise Wilcoxon tests of `means` (datasets x
    detectors, higher is better) on their `common_block`."""
    # Rounded: means apart by a sum's order alone almost never split a rank or a tie.
    complete = common_block(means).round(ROUNDING_PLACES)
    n, k = complete.shape
    ranks = complete.rank(axis=1, ascending=False).mean().sort_values(kind="stable")
    counts = {"datasets": n, "detectors": k, "average_ranks": ranks, "alpha": alpha}
    if n < MIN_DATASETS or k < MIN_DETECTORS:
        reason = (
            f"the tests need at least {MIN_DATASETS} datasets and {MIN_DETECTORS} detectors "
            f"(every detector scored on each); here {_count(n, 'dataset')}, "
            f"{_count(k, 'detector')}"
        )
        return RankComparison(**counts, not_run=reason)
    friedman = stats.friedmanchisquare(*complete.to_numpy().T)
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(complete)
    return RankComparison(
        **counts,
        friedman_statistic=float(friedman.statistic),
        friedman_p=float(friedman.pvalue),
        critical_difference=nemenyi_critical_difference(k, n, alpha),
        nemenyi_p=nemenyi,
        pairs=_pairs(complete, nemenyi, alpha),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _pairs(means: pd.DataFrame, nemenyi: pd.DataFrame, alpha: float) -> pd.DataFrame:
    pairs = pd.DataFrame(list(combinations(means.columns, 2)), columns=["a", "b"])
    differences = [means[a] - means[b] for a, b in zip(pairs["a"], pairs["b"], strict=True)]
    pairs["a_wins"] = [int((d > 0).sum()) for d in differences]
    pairs["b_wins"] = [int((d < 0).sum()) for d in differences]
    pairs["wilcoxon_p"] = [_wilcoxon_p(d) for d in differences]
    pairs["holm_p"] = multipletests(pairs["wilcoxon_p"], alpha=alpha, method="holm")[1]
    pairs["nemenyi_p"] = [nemenyi.loc[a, b] for a, b in zip(pairs["a"], pairs["b"], strict=True)]
    return pairs


def _wilcoxon_p(differences: pd.Series) -> float:
    """Two-sided Wilcoxon signed-rank p; equal scores on every dataset: no evidence, 1."""
    if (differences == 0).all():
        return 1.0
    return float(stats.wilcoxon(differences).pvalue)
