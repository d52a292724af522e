"""What the benchmark's parts share: a table row and its Markdown, timing, child processes and
their peak memory, the machine."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
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


def best_time(function: Callable[[], object], repeat: int = 5) -> float:
    """Fastest of `repeat` calls: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def load() -> str:
    """The load averages (1, 5, 15 minutes): how busy the machine was around a measurement."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores (nproc), {cpu}, {memory:.0f} GiB"


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:.4g} {unit}" if unit != "x" else f"{value:.1f}x"


def table(rows: list[Row]) -> str:
    lines = ["| what | reference | ours | reference / ours | target |", "|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.1f}x" if row.ratio is not None else ""
        lines.append(
            f"| {row.what} | {_cell(row.reference, row.unit)} | {_cell(row.ours, row.unit)} "
            f"| {ratio} | {row.target} |"
        )
    return "\n".join(lines)
