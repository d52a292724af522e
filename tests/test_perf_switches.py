"""Each speed switch of issue 31 gives what the plain path gives (the timings themselves are
in experiments/benchmark, never asserted here)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.tracking import store


def _statement(sql: str | None) -> list[str]:
    """A CREATE statement's lines as a sorted list: MLflow's migrations write a table's
    constraints in an order that varies from one migration to the next."""
    return sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())


def _contents(path: Path) -> tuple[list, dict]:
    with closing(sqlite3.connect(path)) as db:
        master = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        schema = sorted(((kind, name, _statement(sql)) for kind, name, sql in master), key=str)
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return schema, {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in tables}


def test_a_store_copied_from_the_template_is_the_migrated_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPARSE_LSTM_AD_CACHE", str(tmp_path / "cache"))
    plain = tmp_path / "plain"
    plain.mkdir()
    store._migrated_store(plain / "mlflow.db", (plain / "artifacts").as_uri())
    for name in ("first", "second"):  # the first makes the template, the second copies it
        store._create_sqlite_store(TrackingConfig(dir=str(tmp_path / name)))
    assert (tmp_path / "cache" / f"mlflow-{store.mlflow.__version__}-empty.db").exists()

    plain_schema, plain_rows = _contents(plain / "mlflow.db")
    copy_schema, copy_rows = _contents(tmp_path / "second" / "mlflow.db")
    assert copy_schema == plain_schema
    assert {t: r for t, r in copy_rows.items() if t != "experiments"} == {
        t: r for t, r in plain_rows.items() if t != "experiments"
    }
    ((_, name, location, stage, *_), *others) = copy_rows["experiments"]
    ((_, plain_name, _, plain_stage, *_),) = plain_rows["experiments"]
    assert not others and (name, stage) == (plain_name, plain_stage)
    assert location == (tmp_path / "second" / "artifacts").resolve().as_uri() + "/0"


def test_without_a_writable_cache_the_store_is_migrated_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SPARSE_LSTM_AD_CACHE", str(blocker / "cache"))
    cfg = TrackingConfig(dir=str(tmp_path / "mlruns"), experiment="kept")
    experiment_id = store.prepare_store(cfg)
    assert store.mlflow.get_experiment(experiment_id).name == "kept"


# A tiny XLA fit; prints its trained weights. Run in a child: TensorFlow reads the cache flag
# once, when it starts.
_XLA_FIT = """
import atexit, gc; atexit.register(gc.freeze)  # conftest.QUICK_EXIT
import json, sys
from sparse_lstm_ad.cli.compile_cache import use_compile_cache
print(json.dumps({"cache": str(use_compile_cache())}))
sys.path.insert(0, "tests")
from test_perf_switches import tiny_xla_fit
print(json.dumps(tiny_xla_fit()))
"""


def tiny_xla_fit() -> list[float]:
    from conftest import compose_config

    from sparse_lstm_ad.data import Windows
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.pipeline import prepare_rows
    from sparse_lstm_ad.training import fit_autoencoder, make_repeatable

    cfg = compose_config("+experiment=fast", "model=sparse", "train.jit_compile=true")
    make_repeatable(cfg.seed, cfg.train.deterministic)
    rows = prepare_rows(cfg)
    windows = [Windows(part, cfg.data.window) for part in (rows.train, rows.val)]
    model = build_model(cfg.model, cfg.data.window, len(rows.channels))
    fit_autoencoder(model, *windows, cfg.train)
    return [float(x) for w in model.get_weights() for x in w.ravel()]


def _child_fit(cache: Path) -> tuple[str, list[float]]:
    env = {**os.environ, "SPARSE_LSTM_AD_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, "-c", _XLA_FIT], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return json.loads(out[-2])["cache"], json.loads(out[-1])


@pytest.mark.slow
def test_a_fit_from_the_xla_cache_equals_a_fresh_compile(tmp_path: Path) -> None:
    folder, cold = _child_fit(tmp_path)  # compiles as without a cache, and writes it
    written = sorted(Path(folder).iterdir())
    assert written, "the cold run left nothing in the XLA cache"
    _, warm = _child_fit(tmp_path)  # loads the executables
    assert sorted(Path(folder).iterdir()) == written  # loaded, not compiled again
    np.testing.assert_array_equal(warm, cold)


def test_the_xla_cache_is_trimmed_oldest_first(tmp_path: Path) -> None:
    from sparse_lstm_ad.cli.compile_cache import trim

    for age, name in enumerate(["new", "middle", "old"]):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 - age, 1000 - age))
    trim(tmp_path, 250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle", "new"]


def test_the_xla_cache_flag_is_set_once_and_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparse_lstm_ad.cli.compile_cache import FLAG, SWITCH, use_compile_cache

    monkeypatch.setenv("SPARSE_LSTM_AD_CACHE", str(tmp_path))
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as in a fresh process
    monkeypatch.setenv(SWITCH, "off")
    assert use_compile_cache() is None and "TF_XLA_FLAGS" not in os.environ
    monkeypatch.setenv(SWITCH, "on")
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    folder = use_compile_cache()
    assert folder is not None and folder.is_relative_to(tmp_path / "xla")
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {FLAG}={folder}"
    assert use_compile_cache() is None  # the user's (or an earlier job's) flag stands
    assert os.environ["TF_XLA_FLAGS"].count(FLAG) == 1
