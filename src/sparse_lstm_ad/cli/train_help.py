"""`train.py --help`: what the tool does, the config groups and their options, examples.

Hydra's own help lists the groups by composing each of them (about 3 s here, most of it
deep copies of launcher configs); reading the names off conf/ answers at once.
`--hydra-help` still prints Hydra's.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

EXAMPLES = """\
  python src/train.py model=sparse model.l1=0.3                     # one run
  python src/train.py -m model=standard,sparse data=case1,case2 seed=0,1,2
  python src/train.py data=csv data.csv.train=plant.csv data.csv.test_from=20000"""


def train_help(conf: Path) -> str:
    groups = sorted(p for p in conf.iterdir() if p.is_dir() and not p.name.startswith("."))
    lines = [
        "usage: python src/train.py [-m] [GROUP=OPTION ...] [KEY=VALUE ...]",
        "",
        "Train and score an LSTM autoencoder (standard or sparse) or a baseline detector on a",
        "multivariate series; MLflow records the run (./mlruns unless tracking.dir or",
        "tracking.uri). -m sweeps every comma-separated value: one run per combination.",
        "",
        "Config groups (GROUP=OPTION; the default first):",
    ]
    defaults = _defaults(conf / "config.yaml")
    for group in groups:
        options = sorted(p.stem for p in group.glob("*.yaml"))
        if group.name in defaults and defaults[group.name] in options:
            options.remove(defaults[group.name])
            options.insert(0, defaults[group.name])
        prefix = "+" if group.name == "experiment" else ""
        lines += textwrap.wrap(
            ", ".join(options),
            90,
            initial_indent=f"  {prefix}{group.name}: ",
            subsequent_indent="      ",
            break_on_hyphens=False,
        )
    lines += [
        "",
        "Examples:",
        EXAMPLES,
        "",
        "  --cfg job      print the composed config (every key, its value)",
        "  -m ... hydra/launcher=joblib   the jobs on every core",
        "  --hydra-help   Hydra's own options",
        "",
        "The other commands (report, score, reproduce, register, ...): sparse-lstm-ad --help",
    ]
    return "\n".join(lines)


def _defaults(config: Path) -> dict[str, str]:
    """group -> option of conf/config.yaml's defaults list (plain `- group: option` lines)."""
    found = {}
    for line in config.read_text().splitlines():
        key, sep, value = line.strip().removeprefix("- ").partition(": ")
        if sep and line.strip().startswith("- ") and value and " " not in value.strip():
            found[key.strip()] = value.strip()
    return found
