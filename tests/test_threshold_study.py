"""The threshold study's per-run computation (experiments/thresholds/study.py), on a shifted
series where the answer is known: the validation quantile flags every row, the rule calibrated
on the first scored rows does not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

STUDY = Path(__file__).resolve().parents[1] / "experiments" / "thresholds" / "study.py"
_spec = importlib.util.spec_from_file_location("threshold_study", STUDY)
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)  # type: ignore[union-attr]

UNSCORED = 14  # rows at the start that no window covers
ANOMALIES = slice(2000, 2100)  # of the scored rows


def shifted_run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validation scores ~ N(0, 1); test scores ~ N(10, 1), anomalies at 20, leading NaN."""
    rng = np.random.default_rng(0)
    val = rng.normal(0.0, 1.0, 2000)
    scored = rng.normal(10.0, 1.0, 3000)
    scored[ANOMALIES] = 20.0
    labels = np.zeros(UNSCORED + scored.size, dtype=int)
    labels[UNSCORED:][ANOMALIES] = 1
    return val, np.concatenate([np.full(UNSCORED, np.nan), scored]), labels


def test_validation_rules_flag_the_whole_shifted_series_calibrated_ones_do_not() -> None:
    val, test, labels = shifted_run()
    table = study.evaluate_rules(val, test, labels, study.rules((1000,))).set_index("rule")
    calibrated = [
        "quantile (recentre 1000)",
        "pot (recentre 1000)",
        "quantile (refit 1000)",
        "pot (refit 1000)",
    ]
    assert list(table.index) == ["quantile (val)", "pot (val)", *calibrated]
    assert (table["f1_best_oracle"] == 1.0).all()  # the anomalies stand apart: the oracle is 1
    for rule in ("quantile (val)", "pot (val)"):
        assert table.loc[rule, "flagged_share"] == 1.0
        # Every scored row flagged: precision 100 / 3000, recall 1.
        assert table.loc[rule, "f1"] == pytest.approx(2 * 100 / 3100)
    for rule in calibrated:
        assert 100 / 3000 <= table.loc[rule, "flagged_share"] < 0.05
        assert table.loc[rule, "f1_of_oracle"] > 0.7
        assert table.loc[rule, "calibration_anomaly_share"] == 0.0


def test_calibration_rows_are_the_first_scored_rows_not_the_unscored_ones() -> None:
    val, test, labels = shifted_run()
    table = study.evaluate_rules(val, test, labels, study.rules((500,))).set_index("rule")
    first_scored = test[UNSCORED : UNSCORED + 500]
    assert table.loc["quantile (refit 500)", "threshold"] == pytest.approx(
        np.quantile(first_scored, 0.99)
    )
    recentred = np.quantile(val, 0.99) + np.median(first_scored) - np.median(val)
    assert table.loc["quantile (recentre 500)", "threshold"] == pytest.approx(recentred)


def test_store_runs_are_the_newest_finished_run_of_each_config(tmp_path: Path) -> None:
    val, test, labels = shifted_run()
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("thresholds", str(store / "artifacts"))
    tables = tmp_path / "scores"
    tables.mkdir()
    pd.DataFrame({"row": np.arange(val.size), "score": val}).to_csv(
        tables / "val_scores.csv", index=False
    )
    pd.DataFrame({"row": np.arange(test.size), "score": test, "label": labels}).to_csv(
        tables / "test_scores.csv", index=False
    )
    # The same config run twice (the newer one is kept), and a run still going (left out).
    for start, status in ((1_000, "FINISHED"), (2_000, "FINISHED"), (3_000, "RUNNING")):
        tags = {"model": "pca", "data": "shifted", "config_hash": "abc"}
        run = client.create_run(experiment, start_time=start, tags=tags)
        client.log_param(run.info.run_id, "seed", 1)
        client.log_artifacts(run.info.run_id, str(tables), "scores")
        if start == 2_000:
            client.set_tag(run.info.run_id, "alarm_shift", "too_many_flagged")
        if status == "FINISHED":
            client.set_terminated(run.info.run_id, status)
    runs, repeats = study.study_store(store, "thresholds", study.rules((1000,)))
    assert runs["run_id"].nunique() == 1 and repeats == 1
    assert set(runs["dataset"]) == {"shifted"} and set(runs["seed"]) == {1}
    assert (runs["alarm_shift"] == "too_many_flagged").all()
    out = tmp_path / "out"
    out.mkdir()
    study.write_results(runs, [(store, "thresholds", 1, 1)], {"shifted"}, out)
    results = (out / "results.md").read_text()
    assert "f1_best_oracle" in results and "oracle" in results
    assert "| shifted | pca | quantile (val) | 1 | 100.0 % |" in results
