"""`python -m sparse_lstm_ad.report` for a sweep logged under a named MLflow experiment.

The report command has no --experiment option: it searches only the default experiment
(`sparse-lstm-ad`), so a sweep run with `tracking.experiment=<study>` is "not found".
This wrapper adds `--experiment NAME` and otherwise runs the report command unchanged.

Usage: .venv/bin/python experiments/seed_comparison/report_in.py --experiment seed_comparison \
           /work/main/multirun/seed_comparison/main --metric auc_pr --out experiments/seed_comparison
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sparse_lstm_ad import report, store_options

_store_config = store_options.store_config
_add_store_options = store_options.add_store_options


def _add(parser: argparse.ArgumentParser) -> None:
    _add_store_options(parser)
    parser.add_argument("--experiment", required=True, help="the MLflow experiment of the sweep")


def _config(args: argparse.Namespace):
    return dataclasses.replace(_store_config(args), experiment=args.experiment)


store_options.add_store_options = _add
store_options.store_config = _config

if __name__ == "__main__":
    sys.exit(report.main())
