"""The benchmark's leaderboard: per dataset mean ± std of each detector, average ranks, and
whether the differences are real (significance.py): within a dataset beyond seed noise,
across datasets by the Friedman, Nemenyi and Holm-corrected Wilcoxon tests.

Input is one row per FINISHED run (`RUN_COLUMNS`), read from MLflow or from the `runs.csv` a
previous leaderboard wrote: both give the same tables, so a committed leaderboard can be
checked against its store. `sparse-lstm-ad leaderboard SWEEP` prints it, writes it
to --out and logs it to the sweep's parent run. Datasets named as confirmation datasets are
ranked and tested apart from the others (the tuning datasets, where choices were made).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from sparse_lstm_ad import plots, significance
from sparse_lstm_ad.significance import ALPHA, RankComparison

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
    "metrics.flagged_share": "flagged_share",
    "metrics.f1": "f1",
    "metrics.f1_best_oracle": "f1_best_oracle",
    "tags.alarm_shift": "alarm_shift",
}
METRICS = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR", "auc_roc": "AUC-ROC"}
# The metrics whose ranks are tested across datasets.
TESTED = {"auc_pr": "AUC-PR", "vus_pr": "VUS-PR"}
EXPLANATIONS = {
    "hit_rate_100": "HitRate@100 (error contributions)",
    "mass_hit_rate_100": "HitRate@100 (sparse layer mass)",
}
# The order detectors are listed in when nothing else orders them: networks, then baselines.
DETECTORS = ("standard", "sparse", "sparse_projection", "mahalanobis", "pca", "iforest")
TUNING, CONFIRMATION = "tuning", "confirmation"


def from_mlflow(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow's search_runs frame -> the leaderboard's run table, FINISHED runs only."""
    runs = runs[runs["status"] == "FINISHED"]
    table = pd.DataFrame({new: runs.get(old) for old, new in RUN_COLUMNS.items()})
    table["detector"] = contestants(runs)
    table["seed"] = pd.to_numeric(table["seed"]).astype(int)
    table = with_run_columns(table)
    return table.sort_values(["dataset", "detector", "seed"], kind="stable").reset_index(drop=True)


def contestants(runs: pd.DataFrame) -> pd.Series:
    """Each run's name in the tables: its detector, then every setting the sweep varied that
    the detector reads (`sparse model.l1=0.01`). A sweep over model.l1 ranks and tests each
    L1 apart instead of pooling them; the standard model, which reads no L1, ran once and
    stays `standard`."""
    from sparse_lstm_ad.report import blank_unused, swept_params

    shown = blank_unused(runs)
    names = runs["tags.model"].astype(str)
    for key in swept_params(shown):
        values = shown[key]
        used = values.notna() & (values.astype(str) != "-")
        setting = f" {key.removeprefix('params.')}=" + values.astype(str)
        names = names.where(~used, names + setting)
    return names


def check_one_run_per_seed(runs: pd.DataFrame, sweep: str) -> None:
    """ValueError where runs repeat a (dataset, detector, seed): runs of one setting that
    differ in what their identity hashes (an input file or the package's version), which the
    cells would pool as extra seeds and the seed-paired tests would pair at random."""
    repeats = runs.groupby(["dataset", "detector", "seed"]).size()
    repeats = repeats[repeats > 1]
    if repeats.empty:
        return
    (dataset, detector, seed), count = next(iter(repeats.items()))
    raise ValueError(
        f"{sweep}: {len(repeats)} (dataset, detector, seed) have more than one run, e.g. "
        f"{detector} on {dataset} seed {seed} ({count} runs): the sweep holds runs of an "
        "earlier version of their config or data (a sweep resumed after an upgrade or an edit "
        "of an input file: use a new sweep folder)"
    )


def with_run_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with exactly the leaderboard's columns, metrics as numbers and tags as text or
    NaN: runs logged before a column existed (and their leaderboards' runs.csv) lack it."""
    table = runs.reindex(columns=list(RUN_COLUMNS.values()))
    for old, new in RUN_COLUMNS.items():
        if old.startswith("metrics."):
            table[new] = pd.to_numeric(table[new])
        elif old.startswith("tags."):
            table[new] = table[new].astype(object)
    return table


def dataset_sets(runs: pd.DataFrame, confirmation: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The runs of each set of datasets: {"": all} without confirmation datasets, else the
    tuning set (every other dataset) and the confirmation set; LookupError for a name that
    no run has."""
    if not confirmation:
        return {"": runs}
    unknown = sorted(set(confirmation) - set(runs["dataset"]))
    if unknown:
        known = ", ".join(sorted(set(runs["dataset"])))
        raise LookupError(
            f"no runs of confirmation datasets {', '.join(unknown)}; datasets: {known}"
        )
    confirming = runs["dataset"].isin(confirmation)
    return {TUNING: runs[~confirming], CONFIRMATION: runs[confirming]}


def _detector_order(names: pd.Index) -> list[str]:
    """DETECTORS' order, each detector's settings (`sparse model.l1=...`) after it, others last."""

    def key(name: str) -> tuple[int, str]:
        base = name.split(" ")[0]
        return (DETECTORS.index(base) if base in DETECTORS else len(DETECTORS), name)

    return sorted(names, key=key)


def cell_stats(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """(dataset, detector) -> mean, std (over seeds, ddof 1) and n of `metric`."""
    grouped = runs.groupby(["dataset", "detector"])[metric]
    return grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"})


def ranks(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each detector's rank on each dataset by mean `metric` (1 = best, ties share), wide."""
    means = cell_stats(runs, metric)["mean"].unstack("detector")
    rounded = means.round(significance.ROUNDING_PLACES)  # as the tests rank them
    return rounded.rank(axis=1, ascending=False, method="average")


def ranked_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the AUC-PR tests' block of datasets and detectors (significance.
    common_block): what the rank table and the rank plot rank."""
    block = significance.common_block(cell_stats(runs, "auc_pr")["mean"].unstack("detector"))
    return runs[runs["dataset"].isin(block.index) & runs["detector"].isin(block.columns)]


def average_ranks(runs: pd.DataFrame) -> pd.DataFrame:
    """Detector -> its mean rank per metric over `ranked_runs`; best AUC-PR rank first.
    `datasets`: how many were ranked; a detector left out is named by `missing_datasets`."""
    kept = ranked_runs(runs)
    table = pd.DataFrame({label: ranks(kept, m).mean() for m, label in METRICS.items()})
    table["datasets"] = kept["dataset"].nunique()
    return table.sort_values(["AUC-PR", "VUS-PR"], kind="stable").rename_axis("detector")


def missing_datasets(runs: pd.DataFrame) -> str:
    """A sentence on the detectors `average_ranks` leaves out, or ""."""
    means = cell_stats(runs, "auc_pr")["mean"].unstack("detector")
    block = significance.common_block(means)
    left_out = sorted(set(means.columns) - set(block.columns))
    dropped = sorted(set(means.index) - set(block.index))
    if left_out:
        scored = means[left_out].notna().sum()
        names = ", ".join(f"{d} ({scored[d]} of {len(means)})" for d in left_out)
        return f"Not ranked, scored on fewer datasets than the others: {names}."
    if dropped:
        return f"Not ranked on {', '.join(dropped)}: some detector was not scored there."
    return ""


def _cell(mean: float, std: float, n: int) -> str:
    if pd.isna(mean):
        return "-"
    spread = "" if pd.isna(std) else f" ± {std:.3f}"
    return f"{mean:.3f}{spread} ({n})"


def per_dataset(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Datasets x detectors, each cell 'mean ± std (runs)' of `metric`; best mean in bold,
    '≈' before the means within seed noise of it (significance.tied_with_best)."""
    stats = cell_stats(runs, metric)
    best = stats["mean"].groupby(level="dataset").transform("max")
    tied = significance.tied_with_best(runs, metric).reindex(stats.index, fill_value=False)
    cells = pd.Series(
        [
            f"**{_cell(m, s, n)}**" if m == b else f"≈ {_cell(m, s, n)}" if t else _cell(m, s, n)
            for (m, s, n), b, t in zip(stats.itertuples(index=False), best, tied, strict=True)
        ],
        index=stats.index,
    )
    wide = cells.unstack("detector").fillna("-")
    return wide[_detector_order(wide.columns)]


def to_markdown(table: pd.DataFrame, index: str) -> str:
    """A GitHub Markdown table of `table` with its index as the first column."""
    from sparse_lstm_ad.report import to_markdown as markdown_table

    frame = table.reset_index().rename(columns={table.index.name or "index": index})
    return markdown_table(frame.map(_text))


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


def alarms(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and detector at the label-free threshold: the mean share of test rows
    flagged, F1, F1 over the oracle's best F1, and the runs tagged alarm_shift."""
    oracle = runs["f1_best_oracle"].where(runs["f1_best_oracle"] > 0)
    runs = runs.assign(f1_of_best=runs["f1"] / oracle, shifted=runs["alarm_shift"].notna())
    grouped = runs.groupby(["dataset", "detector"])
    table = pd.DataFrame(
        {
            "flagged share": grouped["flagged_share"].mean().map(_share),
            "F1": grouped["f1"].mean().map(_share),
            "F1 / best F1": grouped["f1_of_best"].mean().map(_share),
            "alarm_shift runs": grouped["shifted"].sum().astype(int),
            "runs": grouped.size(),
        }
    )
    order = _detector_order(table.index.unique("detector"))
    return table.loc[sorted(table.index, key=lambda key: (key[0], order.index(key[1])))]


def _share(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.3f}"


# ---- Significance across datasets, as text ----


def rank_comparisons(runs: pd.DataFrame, alpha: float = ALPHA) -> dict[str, RankComparison]:
    """Per tested metric: the detectors compared by their per-dataset means."""
    return {
        metric: significance.compare_detectors(cell_stats(runs, metric)["mean"].unstack(), alpha)
        for metric in TESTED
        if runs[metric].notna().any()
    }


def diagram_name(metric: str, dataset_set: str) -> str:
    return f"cd_{metric}{f'_{dataset_set}' if dataset_set else ''}.png"


def significance_markdown(comparison: RankComparison, label: str, diagram: str) -> str:
    """What the tests of one metric say, in sentences, and the Holm-corrected p-values."""
    c, n = comparison, comparison.datasets
    if c.not_run:
        return f"### {label}\n\nNot tested: {c.not_run}."
    verdict = "differ" if c.friedman_rejects else "do not differ"
    posthoc = (
        _pair_list(c, "nemenyi_p", " by more")
        if c.friedman_rejects
        else "no pair is read from it, since the Friedman test does not reject."
    )
    lines = [
        f"### {label}",
        f"Friedman χ² = {c.friedman_statistic:.2f} ({c.detectors - 1} df) over {n} datasets and "
        f"{c.detectors} detectors, p = {c.friedman_p:.3g}: the detectors' ranks {verdict} at "
        f"alpha {c.alpha:g}.",
        f"Nemenyi critical difference: {c.critical_difference:.2f} in average rank "
        f"(`{diagram}`); " + posthoc,
        "Wilcoxon signed-rank between pairs, Holm-corrected over "
        f"{len(c.pairs)} pairs: " + _pair_list(c, "holm_p", "") + _wilcoxon_floor(c),
        to_markdown(_holm_table(c), "Holm p"),
    ]
    return "\n\n".join(lines)


def _pair_list(c: RankComparison, column: str, beyond: str) -> str:
    """The pairs whose `column` p is below alpha, the better (lower average rank) first."""
    found = c.significant_pairs(column)
    if found.empty:
        return f"no pair differs{beyond} at alpha {c.alpha:g} over {c.datasets} datasets."
    pairs = []
    for a, b, a_wins, b_wins, p in found[["a", "b", "a_wins", "b_wins", column]].itertuples(
        index=False
    ):
        better, worse, wins = (
            (a, b, a_wins) if c.average_ranks[a] <= c.average_ranks[b] else (b, a, b_wins)
        )
        pairs.append(f"{better} > {worse} (p = {p:.2g}; higher on {wins} of {c.datasets})")
    return f"pairs that differ{beyond} at alpha {c.alpha:g}: " + "; ".join(pairs) + "."


def _wilcoxon_floor(c: RankComparison) -> str:
    """Why no pair can pass Holm when the datasets are too few for it."""
    floor, first = significance.smallest_wilcoxon_p(c.datasets), c.alpha / len(c.pairs)
    if floor <= first:
        return ""
    return (
        f" (With {c.datasets} datasets the smallest p the test can give is {floor:.2g}, above "
        f"the {first:.2g} Holm asks of the first of {len(c.pairs)} pairs: no pair could.)"
    )


def _holm_table(c: RankComparison) -> pd.DataFrame:
    """Detectors in rank order; below the diagonal each pair's Holm p, bold below alpha."""
    order = list(c.average_ranks.index)
    table = pd.DataFrame("", index=pd.Index(order, name="Holm p"), columns=order[:-1])
    for a, b, p in c.pairs[["a", "b", "holm_p"]].itertuples(index=False):
        row, column = sorted((a, b), key=order.index, reverse=True)
        table.loc[row, column] = f"**{p:.3f}**" if p < c.alpha else f"{p:.3f}"
    return table.iloc[1:]


# ---- The whole leaderboard ----


def _set_title(dataset_set: str, count: int) -> str:
    """'the 9 datasets', 'the 7 tuning datasets', 'the 1 confirmation dataset'."""
    words = ["the", str(count), dataset_set, "dataset" if count == 1 else "datasets"]
    return " ".join(word for word in words if word)


def _with_set(table: pd.DataFrame, sets: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """With confirmation datasets: a first column naming each row's set, tuning rows first."""
    if len(sets) == 1:
        return table
    confirming = set(sets[CONFIRMATION]["dataset"])
    datasets = table.index.get_level_values("dataset")
    table = table.assign(set=[CONFIRMATION if d in confirming else TUNING for d in datasets])
    table = table[["set", *table.columns[:-1]]]
    return table.sort_values("set", key=lambda s: s == CONFIRMATION, kind="stable")


def _count_range(counts: pd.Series) -> str:
    """'5', or '3-5' where the cells differ."""
    low, high = counts.min(), counts.max()
    return f"{low}" if low == high else f"{low}-{high}"


def leaderboard_markdown(runs: pd.DataFrame, title: str, confirmation: Sequence[str] = ()) -> str:
    """The whole leaderboard: average ranks and their tests per set of datasets, how the
    networks' runs ended, a table per metric and per explanation, the alarms."""
    sets = dataset_sets(runs, confirmation)
    seeds = runs.groupby(["dataset", "detector"]).size()
    parts = [
        f"# {title}",
        f"{len(runs)} runs: {runs['detector'].nunique()} detectors x "
        f"{runs['dataset'].nunique()} datasets x {_count_range(seeds)} seeds. "
        "Cells: mean ± std over seeds (runs); bold: the best mean of its row; ≈: within seed "
        f"noise of it (paired by seed, t test at alpha {ALPHA:g}; with fewer than "
        f"{significance.MIN_TIE_SEEDS} seeds, none is).",
    ]
    if confirmation:
        parts.append(
            f"Confirmation datasets: {', '.join(sorted(set(confirmation)))}; the tuning "
            "datasets are the others. Each set is ranked and tested on its own."
        )
    for name, subset in sets.items():
        parts += _ranks_and_tests(subset, name)
    if runs["epochs_run"].notna().any():
        parts += ["## How the networks' runs ended", to_markdown(health(runs), "detector")]
    for metric, label in {**METRICS, **EXPLANATIONS}.items():
        if runs[metric].notna().any():
            table = _with_set(per_dataset(runs.dropna(subset=[metric]), metric), sets)
            parts += [f"## {label}", to_markdown(table, "dataset")]
    if runs[["flagged_share", "f1"]].notna().any().any():
        parts += [
            "## Alarms at the label-free threshold",
            "Mean over seeds of the share of scored test rows flagged, of F1, and of F1 over "
            "the best F1 any threshold reaches (the oracle's, which sees the test labels); "
            "alarm_shift runs: flagged far more or far fewer rows than the threshold promises.",
            to_markdown(_with_set(alarms(runs), sets), "dataset"),
        ]
    return "\n\n".join(parts) + "\n"


def _ranks_and_tests(runs: pd.DataFrame, dataset_set: str) -> list[str]:
    where = _set_title(dataset_set, runs["dataset"].nunique())
    if runs.empty:
        return [f"## Average rank across {where}", "No runs."]
    parts = [
        f"## Average rank across {where} (1 = best; by each dataset's mean)",
        to_markdown(average_ranks(runs), "detector"),
        *filter(None, [missing_datasets(runs)]),
        f"## Significance across {where}",
        "Each detector's mean over seeds per dataset; the Friedman test of their ranks, the "
        "Nemenyi post-hoc test and its critical difference (Demšar 2006), and Wilcoxon "
        f"signed-rank tests between pairs, Holm-corrected; alpha {ALPHA:g}.",
    ]
    for metric, comparison in rank_comparisons(runs).items():
        diagram = diagram_name(metric, dataset_set)
        parts.append(significance_markdown(comparison, TESTED[metric], diagram))
    return parts


def critical_difference_diagrams(
    runs: pd.DataFrame, confirmation: Sequence[str], folder: Path
) -> list[Path]:
    """A critical-difference diagram per tested metric and set where the tests ran."""
    written = []
    for name, subset in dataset_sets(runs, confirmation).items():
        for metric, comparison in rank_comparisons(subset).items():
            if comparison.nemenyi_p is None:  # the tests did not run (comparison.not_run)
                continue
            title = f"{TESTED[metric]}: average rank over {_set_title(name, comparison.datasets)}"
            written.append(
                plots.critical_difference_diagram(
                    comparison.average_ranks,
                    comparison.nemenyi_as_read(),
                    comparison.critical_difference,
                    comparison.alpha,
                    title,
                    folder / diagram_name(metric, name),
                )
            )
    return written


def write_leaderboard(
    cfg: TrackingConfig,
    sweep: str,
    out: Path | None,
    from_csv: Path | None,
    confirmation: Sequence[str] = (),
) -> str:
    """The leaderboard of the sweep's runs (or of a runs.csv it wrote), with runs.csv, the
    rank plot and the critical-difference diagrams, logged to the sweep's parent and moved
    into `out` (default SWEEP/leaderboard)."""
    from sparse_lstm_ad.report import finished_runs, publish, staging

    if from_csv is not None:
        if not from_csv.is_file():
            raise FileNotFoundError(f"{from_csv}: no such file")
        runs = with_run_columns(pd.read_csv(from_csv))
    else:
        runs = from_mlflow(finished_runs(cfg, sweep))
    check_one_run_per_seed(runs, sweep)
    markdown = leaderboard_markdown(runs, f"Leaderboard of `{sweep}`", confirmation)
    out = out or Path(sweep) / "leaderboard"
    with staging(out) as tmp:
        folder = Path(tmp)
        (folder / "leaderboard.md").write_text(markdown)
        runs.to_csv(folder / "runs.csv", index=False)
        plot = plots.rank_plot(ranks(ranked_runs(runs), "auc_pr"), "AUC-PR", folder / "ranks.png")
        diagrams = critical_difference_diagrams(runs, confirmation, folder)
        files = [folder / "leaderboard.md", folder / "runs.csv", plot, *diagrams]
        publish(files, out, None if from_csv else cfg, sweep, "leaderboard")
    names = ", ".join(path.name for path in files[1:])
    return markdown + f"\nwritten: {out}/leaderboard.md, {names}"
