"""Where the repository's files are: the package is installed in place (`pip install -e .`),
and what its commands read beside the code (Hydra's conf/, the benchmarks) stays in the
checkout. The one place that says so; standard library only, for the fast `--help`."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # REPO/src/sparse_lstm_ad/cli/checkout.py
# Absolute, so that Hydra finds it whichever file or process calls the application.
CONF = REPO / "conf"
