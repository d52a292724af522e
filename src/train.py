"""The entry point: `python src/train.py [-m] [group=option ...] [key=value ...]`.

The Hydra application itself is `sparse_lstm_ad.cli.train` (also `sparse-lstm-ad train ...`).
"""

import sys
from pathlib import Path

if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    # Answered before Hydra, OmegaConf and NumPy load: the help is read off conf/ alone.
    from sparse_lstm_ad.cli.train_help import train_help

    print(train_help(Path(__file__).resolve().parents[1] / "conf"))
    raise SystemExit(0)

if __name__ == "__main__":
    # A started daemon runs the command, its imports paid (sparse-lstm-ad daemon start).
    from sparse_lstm_ad.cli.daemon_client import served

    if (code := served(sys.argv)) is not None:
        raise SystemExit(code)

from sparse_lstm_ad.cli.train import _label_job, cli, main

__all__ = ["_label_job", "cli", "main"]

if __name__ == "__main__":
    cli()
