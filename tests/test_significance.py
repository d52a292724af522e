"""Significance of detector differences, checked against the textbook formulas by hand."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparse_lstm_ad import significance

# Demšar (2006), Table 5(a): q_0.05 of the Nemenyi test for k = 3 classifiers.
Q_005_K3 = 2.343
# Student's t, two-sided 5 %: t_0.975 with 2 and 4 degrees of freedom.
T_DF2, T_DF4 = 4.303, 2.776


def _means() -> pd.DataFrame:
    """8 datasets x 3 detectors, no ties: A first everywhere; B second on 6, C on the last 2.
    B - C is +0.01 .. +0.06 on the first six and -0.07, -0.08 on the last two."""
    i = np.arange(8)
    c = 0.5 + 0.01 * i
    b = c + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, -0.07, -0.08])
    a = 0.9 + 0.003 * i
    return pd.DataFrame({"A": a, "B": b, "C": c}, index=[f"d{j}" for j in i])


def _exact_wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided exact signed-rank p by enumerating all 2^n sign patterns (distinct |d|)."""
    ranks = np.argsort(np.argsort(np.abs(differences))) + 1
    observed = ranks[differences > 0].sum()
    signs = np.array(list(itertools.product([0, 1], repeat=len(differences))))
    w_plus = signs @ ranks
    return min(1.0, 2 * min((w_plus <= observed).mean(), (w_plus >= observed).mean()))


def _holm(p: list[float]) -> np.ndarray:
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate([(m - i) * p[j] for i, j in enumerate(order)])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def test_friedman_nemenyi_and_holm_wilcoxon_match_the_formulas() -> None:
    means = _means()
    result = significance.compare_detectors(means)
    assert result.not_run is None and (result.datasets, result.detectors) == (8, 3)
    # Average ranks: A 1; B (6 * 2 + 2 * 3) / 8; C (6 * 3 + 2 * 2) / 8.
    assert result.average_ranks.to_dict() == {"A": 1.0, "B": 2.25, "C": 2.75}
    # Friedman: 12 N / (k (k + 1)) * (sum R_j^2 - k (k + 1)^2 / 4), chi-square with 2 df,
    # whose survival function is exp(-x / 2).
    chi2 = 12 * 8 / (3 * 4) * (1.0**2 + 2.25**2 + 2.75**2 - 3 * 4**2 / 4)
    assert chi2 == pytest.approx(13.0)
    assert result.friedman_statistic == pytest.approx(chi2)
    assert result.friedman_p == pytest.approx(np.exp(-chi2 / 2))
    # Nemenyi: CD = q_alpha sqrt(k (k + 1) / (6 N)); A is further than CD from B and C,
    # B and C are not.
    cd = Q_005_K3 * np.sqrt(3 * 4 / (6 * 8))
    assert result.critical_difference == pytest.approx(cd, rel=1e-3)
    nemenyi = result.significant_pairs("nemenyi_p")
    assert set(zip(nemenyi["a"], nemenyi["b"], strict=True)) == {("A", "B"), ("A", "C")}
    # Wilcoxon: A above B and C on all 8 datasets, p = 2 / 2^8; B - C by enumeration.
    pairs = result.pairs.set_index(["a", "b"])
    b_minus_c = (means["B"] - means["C"]).to_numpy()
    raw = [2 / 2**8, 2 / 2**8, _exact_wilcoxon_p(b_minus_c)]
    assert pairs["wilcoxon_p"].to_numpy() == pytest.approx(raw)
    assert pairs["holm_p"].to_numpy() == pytest.approx(_holm(raw))
    assert pairs.loc[("B", "C"), ["a_wins", "b_wins"]].tolist() == [6, 2]
    holm = result.significant_pairs("holm_p")
    assert set(zip(holm["a"], holm["b"], strict=True)) == {("A", "B"), ("A", "C")}


def test_nemenyi_pairs_are_read_only_where_friedman_rejects() -> None:
    """5 datasets x 6 detectors where Friedman does not reject (p = 0.082) yet one Nemenyi p
    falls below 0.05: the page said "the ranks do not differ", then named a pair that did."""
    from sparse_lstm_ad.leaderboard import significance_markdown

    means = pd.DataFrame(
        {
            "d0": [0.97, 0.11, 0.36, 0.38, 0.89],
            "d1": [0.92, 0.86, 0.14, 0.82, 0.8],
            "d2": [0.66, 0.08, 0.51, 0.22, 0.13],
            "d3": [0.96, 0.98, 0.97, 0.47, 0.92],
            "d4": [0.87, 0.82, 0.36, 0.32, 0.97],
            "d5": [0.01, 0.95, 0.88, 0.23, 0.26],
        }
    )
    result = significance.compare_detectors(means)
    assert result.friedman_p == pytest.approx(0.082, abs=1e-3) and not result.friedman_rejects
    assert result.pairs is not None and (result.pairs["nemenyi_p"] < 0.05).any()
    assert result.significant_pairs("nemenyi_p").empty
    assert (result.nemenyi_as_read() == 1.0).all().all()  # the diagram joins every pair
    text = significance_markdown(result, "AUC-PR", "cd.png")
    assert "do not differ" in text and "pairs that differ by more" not in text
    assert "no pair is read from it, since the Friedman test does not reject" in text
    rejected = significance.compare_detectors(_means())
    assert rejected.friedman_rejects and not rejected.significant_pairs("nemenyi_p").empty
    assert rejected.nemenyi_as_read() is rejected.nemenyi_p


def test_too_few_datasets_or_detectors_are_not_tested() -> None:
    for means in (_means().iloc[:2], _means()[["A", "B"]]):
        result = significance.compare_detectors(means)
        assert result.not_run is not None and "at least 3 datasets" in result.not_run
        assert result.pairs is None and result.significant_pairs("holm_p").empty
    # A dataset a detector lacks is left out: the tests need complete blocks, and 7 datasets
    # of 3 detectors keep more scores than 8 of the 2 whole ones.
    gappy = _means().astype(float)
    gappy.iloc[0, 1] = np.nan
    assert significance.compare_detectors(gappy).datasets == 7
    assert significance.compare_detectors(gappy).detectors == 3


def test_a_difference_counts_beyond_seed_noise_by_the_paired_t_test() -> None:
    # mean 0.2, sd 0.1, n 3: t = 0.2 / (0.1 / sqrt 3) = 3.46 < 4.303
    assert 0.2 / (0.1 / np.sqrt(3)) < T_DF2
    assert not significance.beyond_seed_noise(np.array([0.1, 0.2, 0.3]))
    # mean 0.2, sd sqrt(0.005), n 5: t = 6.3 > 2.776
    assert 0.2 / (np.sqrt(0.005) / np.sqrt(5)) > T_DF4
    assert significance.beyond_seed_noise(np.array([0.1, 0.2, 0.3, 0.2, 0.2]))
    assert significance.beyond_seed_noise(np.array([0.4, 0.4, 0.4]))  # no spread, not 0
    assert not significance.beyond_seed_noise(np.zeros(3))
    rounding = np.full(5, 5.55e-17)  # the same sums in another order: no difference
    assert not significance.beyond_seed_noise(rounding)
    assert not significance.beyond_seed_noise(rounding * np.array([1, -1, 1, 0, 1]))
    assert not significance.beyond_seed_noise(np.array([0.5]))  # one pair shows nothing
    # Paired on the seeds both have.
    paired = significance.paired_by_seed(
        pd.Series([0.5, 0.6, 0.7], index=[0, 1, 2]), pd.Series([0.4, 0.4], index=[1, 2])
    )
    assert paired.to_dict() == pytest.approx({1: 0.2, 2: 0.3})


def test_tied_with_best_within_seed_noise() -> None:
    scores = {"x": [0.90, 0.91, 0.92], "y": [0.50, 0.51, 0.52], "z": [0.92, 0.89, 0.91]}
    runs = pd.DataFrame(
        [("a", d, seed, v) for d, values in scores.items() for seed, v in enumerate(values)],
        columns=["dataset", "detector", "seed", "auc_pr"],
    )
    tied = significance.tied_with_best(runs, "auc_pr")
    # x is best; y is 0.4 below on every seed; z - x is +0.02, -0.02, -0.01: noise.
    assert tied.to_dict() == {("a", "x"): True, ("a", "y"): False, ("a", "z"): True}
    # One seed tests nothing: no detector is called tied with the best on it.
    one_seed = significance.tied_with_best(runs[runs["seed"] == 0], "auc_pr")
    assert one_seed.to_dict() == {("a", "x"): False, ("a", "y"): False, ("a", "z"): True}


def test_the_critical_difference_diagram_is_written(tmp_path: Path) -> None:
    from sparse_lstm_ad.plots import critical_difference_diagram

    result = significance.compare_detectors(_means())
    assert result.nemenyi_p is not None
    path = critical_difference_diagram(
        result.average_ranks,
        result.nemenyi_p,
        result.critical_difference,
        result.alpha,
        "AUC-PR",
        tmp_path / "cd.png",
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert list(tmp_path.iterdir()) == [path]  # written whole: no scratch file left
    too_few = significance.compare_detectors(_means().iloc[:2])
    assert too_few.nemenyi_p is None and "at least 3 datasets" in str(too_few.not_run)


def test_rounding_splits_no_rank() -> None:
    """Means equal but for the order of a sum (one ulp apart) share their rank and win
    nothing over each other, in the tests as in the leaderboard's table."""
    means = _means()
    means["D"] = np.nextafter(means["C"], 1.0)  # C's scores, summed in another order
    result = significance.compare_detectors(means)
    assert result.average_ranks["C"] == result.average_ranks["D"]
    assert result.pairs is not None
    pair = result.pairs[(result.pairs["a"] == "C") & (result.pairs["b"] == "D")].iloc[0]
    assert pair["a_wins"] == pair["b_wins"] == 0 and pair["wilcoxon_p"] == 1.0
