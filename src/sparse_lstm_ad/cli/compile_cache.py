"""XLA's persistent compilation cache for the jobs of this process, on by default, bounded.

A fresh process XLA-compiles its epoch graphs again: about 1.2 s of a 3-4 s first epoch on
seed case 2 (experiments/benchmark). TensorFlow can keep the compiled executables on disk
(`--tf_xla_persistent_cache_directory`, read from TF_XLA_FLAGS once, when TensorFlow starts)
and load them in the next process: the same executable, so the same numbers. The folder is
per TensorFlow version and per CPU (an executable built for another machine's instructions
must never be loaded here), and trimmed to MAX_MB at each start, oldest files first.
`SPARSE_LSTM_AD_XLA_CACHE=off` turns it off; the cache folder is
`tracking.store.cache_dir()`/xla.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SWITCH = "SPARSE_LSTM_AD_XLA_CACHE"
MAX_MB = float(os.environ.get("SPARSE_LSTM_AD_XLA_CACHE_MB", "200"))
FLAG = "--tf_xla_persistent_cache_directory"


def use_compile_cache() -> Path | None:
    """Point TensorFlow at the cache, if it is on and TensorFlow has not started yet (its
    flags are read once); returns the folder in use, or None."""
    if os.environ.get(SWITCH, "on").lower() in ("off", "0", "false"):
        return None
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if FLAG in flags or "tensorflow" in sys.modules:  # the user's own cache, or too late
        return None
    from sparse_lstm_ad.tracking.store import cache_dir

    folder = cache_dir() / "xla" / machine_key()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        trim(folder, int(MAX_MB * 2**20))
    except OSError as error:
        log.debug("no XLA cache in %s: %s", folder, error)
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={folder}".strip()
    return folder


def machine_key() -> str:
    """TensorFlow's version and this CPU's model and instruction sets, hashed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tf_version = version("tensorflow")
    except PackageNotFoundError:
        tf_version = version("tensorflow-cpu")
    cpu = [
        line
        for line in _cpuinfo().splitlines()
        if line.startswith(("model name", "flags", "Features"))
    ][:2]
    text = "\n".join([tf_version, platform.machine(), *cpu])
    return f"tf{tf_version}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the processor's name is what there is
        return platform.processor()


def trim(folder: Path, max_bytes: int) -> None:
    """Delete the oldest files until the folder holds at most `max_bytes`."""
    files = sorted((f for f in folder.iterdir() if f.is_file()), key=lambda f: f.stat().st_mtime)
    total = sum(f.stat().st_size for f in files)
    for old in files:
        if total <= max_bytes:
            break
        total -= old.stat().st_size
        old.unlink(missing_ok=True)
