"""The key a command-line override sets, read the one way every check of a command reads it.

Standard library only: the daemon's client reads it before anything heavy loads.
"""

from __future__ import annotations


def override_key(override: str) -> str:
    """`model.l1` of `model.l1=1e-3`, `+threads=1` and `~model.l1`; `-m` of a flag."""
    return override.split("=", 1)[0].lstrip("+~")
