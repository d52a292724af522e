"""Register a run's scoring model, or the best run of a sweep, in the MLflow model registry.

    python -m sparse_lstm_ad.register --name NAME --run RUN_ID
    python -m sparse_lstm_ad.register --name NAME --sweep multirun/DATE/TIME --metric auc_pr

A sweep logged with `tracking.experiment=STUDY` is found with `--experiment STUDY`.

Afterwards `models:/NAME/latest` (or `models:/NAME/<version>`) works wherever a model URI does,
for instance in `python -m sparse_lstm_ad.score --model models:/NAME/latest ...`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sparse_lstm_ad.store_options import add_store_options, require_experiment, store_config


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_lstm_ad.register",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", required=True, help="registered model name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a run id")
    which.add_argument("--sweep", help="a multirun directory (the runs' `sweep` tag)")
    parser.add_argument("--metric", default="auc_pr", help="what 'best' means (default auc_pr)")
    parser.add_argument("--lowest", action="store_true", help="lower is better for --metric")
    add_store_options(parser, experiment=True)  # --sweep searches one experiment
    args = parser.parse_args(argv)

    from sparse_lstm_ad import tracking

    cfg = store_config(args)
    try:
        if args.sweep:
            require_experiment(cfg)
        run_id = args.run or best_run(
            tracking.sweep_runs(cfg, str(Path(args.sweep))), args.metric, args.lowest
        )
        version = tracking.register_model(cfg, run_id, args.name)
    except (LookupError, tracking.StoreError) as error:  # one line, exit 2: a user's mistake
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"registered run {run_id} as models:/{args.name}/{version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
