"""What the benchmark's parts share: a table row, child processes and their peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass
class Row:
    what: str
    reference: float | None  # seconds (or other unit in `unit`)
    ours: float | None
    target: str = ""
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.ours is None or self.ours == 0:
            return None
        return self.reference / self.ours


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_child(
    command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of that child alone, and its output.

    Through /usr/bin/time: a child forked straight from this large process would report this
    process's RSS as its own peak (Linux keeps ru_maxrss across fork and exec).
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_kb"
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak), *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{command} failed:\n{result.stderr[-3000:]}")
        return wall, int(peak.read_text().split()[-1]) / 1024, result.stdout + result.stderr


def child_json(command: list[str]) -> dict:
    """The JSON line a child mode of a benchmark script prints."""
    _, _, text = run_child(command)
    return json.loads(next(line for line in text.splitlines() if line.startswith("{")))
