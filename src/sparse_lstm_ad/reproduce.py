"""Re-run a logged run from its recorded config and check that its metrics come out the same.

    sparse-lstm-ad reproduce RUN_ID [--tracking-dir mlruns | --tracking-uri URI]

Logs a new run tagged `reproduces=RUN_ID`, prints each final metric beside the original's,
and exits 1 when any differs by more than the tolerance (timings are not compared).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sparse_lstm_ad.config import RETIRED_KEYS, Config, TrackingConfig, active_only
from sparse_lstm_ad.config_checks import validate

log = logging.getLogger("reproduce")


def config_from_yaml(text: str) -> Config:
    """The logged config, less its retired keys, checked against today's schema."""
    logged = OmegaConf.create(text)
    for key in RETIRED_KEYS:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(logged, parent)
        if isinstance(node, DictConfig) and leaf in node:
            log.info("%s: a retired key, not read any more (config.RETIRED_KEYS)", key)
            node.pop(leaf)
    merged = OmegaConf.merge(OmegaConf.structured(Config), logged)
    return validate(OmegaConf.to_object(merged))  # type: ignore[arg-type]


def compare_metrics(
    original: dict[str, float], again: dict[str, float], rtol: float, atol: float
) -> list[tuple[str, float, float, bool]]:
    """(name, original, reproduced, within tolerance) for every metric but timings and the
    machine's own figures (MLflow's `system/` metrics)."""
    rows = []
    for name in sorted(original):
        if "seconds" in name or name.startswith("system/"):
            continue
        before, after = original[name], again.get(name, float("nan"))
        same = abs(after - before) <= atol + rtol * abs(before) or (
            before != before and after != after
        )
        rows.append((name, before, after, same))
    return rows


def reproduce(run_id: str, tracking: TrackingConfig, rtol: float, atol: float) -> int:
    from sparse_lstm_ad import tracking as mlflow_tracking
    from sparse_lstm_ad.pipeline import JobInfo, run_experiment

    original = mlflow_tracking.load_run(tracking, run_id)
    logged = config_from_yaml(original.config_yaml)
    # The store is the one named here; the experiment stays the run's own.
    cfg = replace(logged, tracking=replace(tracking, experiment=logged.tracking.experiment))
    commit = mlflow_tracking.git_tags()["git_commit"]
    if commit != original.tags.get("git_commit"):
        log.warning(
            "code differs: run %s was made at commit %s, this is %s",
            run_id,
            original.tags.get("git_commit"),
            commit,
        )
    config = OmegaConf.structured(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "config.yaml"  # so the reproduction is reproducible too
        OmegaConf.save(config, config_file)
        job = JobInfo(
            run_name=f"reproduce {original.name}",
            config=active_only(OmegaConf.to_container(config, enum_to_str=True)),  # as train's
            config_files=[config_file],
            choices={k: original.tags[k] for k in ("model", "data") if k in original.tags},
            tags={"reproduces": run_id},
        )
        summary = run_experiment(cfg, job)
    # Read back from the store, like the original: last per-epoch values included.
    again = mlflow_tracking.load_run(tracking, summary.run_id).metrics
    rows = compare_metrics(original.metrics, again, rtol, atol)
    print(f"{'metric':<28}{'original':>16}{'reproduced':>16}  match")
    for name, before, after, same in rows:
        print(f"{name:<28}{before:>16.8g}{after:>16.8g}  {'yes' if same else 'NO'}")
    differing = [name for name, *_, same in rows if not same]
    if differing:
        print(
            f"run {run_id} NOT reproduced: {', '.join(differing)} differ "
            f"beyond rtol={rtol:g}, atol={atol:g} (new run {summary.run_id})"
        )
        return 1
    print(f"run {run_id} reproduced by run {summary.run_id}")
    return 0
