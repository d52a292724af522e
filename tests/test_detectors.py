"""One detector protocol, chosen in one place: the registry finds every kind that conf/model
offers, a kind it does not know stops before anything runs, every detector's logged files load
back to the same scores, and a detector added as one module and one YAML runs end to end."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from sparse_lstm_ad.data import Windows
from sparse_lstm_ad.detectors import family
from sparse_lstm_ad.detectors.registry import families
from sparse_lstm_ad.pipeline import prepare_rows
from tests import example_detector
from tests.conftest import CONF, compose_config, store_runs


def test_every_model_option_names_a_kind_the_registry_fits() -> None:
    options = {p.stem: yaml.safe_load(p.read_text()).get("kind") for p in CONF.glob("model/*")}
    assert set(options.values()) == set(families())
    for kind, found in families().items():
        assert kind in found.kinds  # each kind lists the model keys it reads


def test_a_kind_no_detector_fits_is_one_line_and_exit_2_before_any_run(run_cli, tmp_path) -> None:
    result = run_cli("-m", "model.kind=standard,lstm", "+experiment=fast")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: model.kind=lstm is not a detector: the kinds are ")
    assert store_runs(tmp_path / "mlruns") == []  # not even the sweep's first job ran


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=mahalanobis"],
        ["model=mahalanobis", "model.mahalanobis_scope=row"],
        ["model=pca", "scoring.scope=step"],
        ["model=pca", "scoring.scope=window"],
        ["model=iforest"],
        ["model=sparse", "train.epochs=1"],
    ],
    ids=lambda o: "-".join(x.split("=")[1] for x in o),
)
def test_saved_and_loaded_a_detector_scores_as_it_did(overrides, tmp_path: Path) -> None:
    cfg = compose_config("+experiment=fast", "data=case1", *overrides)
    rows = prepare_rows(cfg)
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    no_log = lambda step, epoch, figures: None  # noqa: E731 - nothing to log outside a run
    detector = family(cfg.model.kind).fit(cfg, rows.train, windows, no_log).detector
    loaded = family(cfg.model.kind).load(detector.save(tmp_path))
    before, after = detector.score(windows["test"]), loaded.score(windows["test"])
    np.testing.assert_array_equal(after[0].scores, before[0].scores)
    np.testing.assert_array_equal(after[0].contributions, before[0].contributions)
    np.testing.assert_array_equal(after[1], before[1])


def test_a_detector_added_as_one_module_and_one_yaml_runs_and_scores(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's `knn` example: its module (registered here, found by the registry in the
    package) and its conf/model/knn.yaml (here on Hydra's search path)."""
    monkeypatch.setitem(families(), "knn", example_detector.FAMILY)
    conf = tmp_path / "extra_conf" / "model"
    conf.mkdir(parents=True)
    (conf / "knn.yaml").write_text("kind: knn\noptions:\n  neighbours: 3\n")
    search = f"hydra.searchpath=[file://{conf.parent}]"
    result = run_cli("model=knn", "model.options.neighbours=2", "+experiment=fast", search)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (run,) = store_runs(tmp_path / "mlruns")
    assert run.info.status == "FINISHED" and 0 < run.data.metrics["auc_pr"] <= 1
    assert run.data.params["model.options.neighbours"] == "2"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    name = run.data.tags["scoring_model"]
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/{name}")
    channels = model.metadata.get_input_schema().input_names()
    values = np.random.default_rng(0).normal(size=(40, len(channels)))
    frame = pd.DataFrame(values, columns=channels)
    assert np.isfinite(model.predict(frame)["score"][14:]).all()
    # Its own check runs with the command's: one line, exit 2, and no run (not even FAILED).
    for value in ("0", "abc", "2.7"):  # "abc" said `invalid literal for int()`; 2.7 ran as 2
        bad = run_cli("model=knn", f"model.options.neighbours={value}", "+experiment=fast", search)
        assert bad.returncode == 2 and bad.stderr.strip() == (
            f"error: model.options.neighbours={value} is not allowed: a whole number >= 1"
        )
    assert len(store_runs(tmp_path / "mlruns")) == 1
    assert run.data.metrics["fit_seconds"] > 0  # the example times its fit, as README's does


@pytest.mark.parametrize("model", ["pca", "standard"])
def test_a_model_logged_before_kinds_were_stored_scores_as_it_did(
    model: str, tmp_path: Path
) -> None:
    """Then the step error model, and a baseline's linear map, lived in the scoring state; a
    network's `autoencoder.keras` lay beside it."""
    from sparse_lstm_ad.tracking.scoring_model import ScoringState, load_detector

    cfg = compose_config("+experiment=fast", f"model={model}", "data=case1", "scoring.scope=step")
    rows = prepare_rows(cfg)
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    no_log = lambda step, epoch, figures: None  # noqa: E731 - nothing to log outside a run
    detector = family(model).fit(cfg, rows.train, windows, no_log).detector
    files, errors = detector.save(tmp_path), detector.scores.errors.model  # the step scope's
    linear = getattr(detector, "linear", None)
    state = ScoringState(
        channels=rows.channels,
        mean=rows.standardizer.mean.tolist(),
        std=rows.standardizer.std.tolist(),
        window=cfg.data.window,
        stride=1,
        threshold=1.0,
        error_mean=errors.mean.tolist(),
        inv_cov=errors.inv_cov.tolist(),
        linear_mean=None if linear is None else linear.mean.tolist(),
        linear_basis=None if linear is None else linear.basis.tolist(),
    )
    state = ScoringState.load(state.save(tmp_path / "scoring.json"))  # through its JSON
    artifacts = {} if linear is not None else {"network": str(files["network"])}
    loaded = load_detector(state, artifacts)
    before, after = detector.score(windows["test"]), loaded.score(windows["test"])
    np.testing.assert_array_equal(after[0].scores, before[0].scores)


def test_a_diverged_projection_fit_says_so_and_is_not_refitted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its weights are not finite: read as a closed or collapsed layer they would start refits.
    from sparse_lstm_ad.fitting import TrainingDiverged

    overrides = ("data=case1", "model=sparse_projection", "model.projection_units=3")
    cfg = compose_config("+experiment=fast", *overrides)
    rows = prepare_rows(cfg)
    train = rows.train.copy()
    train[0, 0] = np.nan  # the first batch's loss is NaN: the fit stops at epoch 1
    windows = {"train": Windows(train, cfg.data.window), "val": Windows(rows.val, cfg.data.window)}
    no_log = lambda step, epoch, figures: None  # noqa: E731 - nothing to log outside a run
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        family(cfg.model.kind).fit(cfg, train, windows, no_log)
    assert "fitting again" not in caplog.text


def test_the_window_baseline_fits_the_windows_at_the_configured_stride() -> None:
    from sparse_lstm_ad.detectors.window_gaussian import flat_windows

    cfg = compose_config("+experiment=fast", "data=case1", "model=mahalanobis", "data.stride=4")
    rows = prepare_rows(cfg)
    windows = {p: Windows(getattr(rows, p), cfg.data.window, 4) for p in ("train", "val", "test")}
    no_log = lambda step, epoch, figures: None  # noqa: E731 - nothing to log outside a run
    detector = family(cfg.model.kind).fit(cfg, rows.train, windows, no_log).detector
    fitted_mean = detector.gaussian.model.mean
    strided = flat_windows(windows["train"]).astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(fitted_mean, strided, rtol=1e-5)
    every_row = flat_windows(Windows(rows.train, cfg.data.window)).astype(np.float64).mean(axis=0)
    assert np.abs(fitted_mean - every_row).max() > 1e-3


@pytest.mark.parametrize("fit_on", ["train", "val"])
def test_window_scope_reconstructs_each_window_once_and_its_mse_is_the_plain_one(
    fit_on: str,
) -> None:
    """Scoring by window took the MSE from a second pass of the network over every window."""
    from sparse_lstm_ad.config import ScoringScope
    from sparse_lstm_ad.detectors.reconstruction import ReconstructionScores, fit_errors
    from sparse_lstm_ad.error_scores import error_moments

    cfg = compose_config("+experiment=fast", "data=case1", f"scoring.fit_on={fit_on}")
    rows = prepare_rows(cfg)
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    mixing = np.random.default_rng(0).normal(size=(rows.train.shape[1],) * 2) * 0.3
    reconstructed: list[int] = []

    def reconstruct(batch: np.ndarray) -> np.ndarray:
        reconstructed.append(len(batch))
        return batch @ mixing

    fitted = fit_errors(reconstruct, cfg, windows, ScoringScope.window)
    fitted_once = {"train": len(windows["train"].view)}
    fitted_once["val"] = fitted_once["train"] + len(windows["val"].view)
    assert sum(reconstructed) == fitted_once[fit_on]
    plain = error_moments(windows["train"].view, reconstruct).mse
    assert fitted.train_mse == pytest.approx(plain, rel=1e-12)

    reconstructed.clear()
    rows_scored, mse = ReconstructionScores(reconstruct, fitted.errors).score(windows["test"])
    assert sum(reconstructed) == len(windows["test"].view)
    assert mse == pytest.approx(error_moments(windows["test"].view, reconstruct).mse, rel=1e-12)
    assert np.isfinite(rows_scored.scores).all()
    broken = lambda batch: np.full(batch.shape, np.nan)  # noqa: E731 - a diverged network's
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_errors(broken, cfg, windows, ScoringScope.window)


def test_a_network_that_learned_nothing_with_a_finite_loss_fails_as_diverged() -> None:
    """train.learning_rate=1e12 ends with a finite loss (MSE ~1e24) by early stopping: the run
    finished with the Mahalanobis baseline's scores and no word of it."""
    from sparse_lstm_ad.detectors.network import raise_if_unlearned
    from sparse_lstm_ad.fitting import TrainingDiverged

    cfg = compose_config("+experiment=fast", "data=case1", "train.learning_rate=1e12")
    rows = prepare_rows(cfg)
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    no_log = lambda step, epoch, figures: None  # noqa: E731 - nothing to log outside a run
    with pytest.raises(TrainingDiverged, match="learned nothing"):
        family(cfg.model.kind).fit(cfg, rows.train, windows, no_log)
    variance = float(np.var(rows.train, axis=0).mean())
    raise_if_unlearned(50 * variance, rows.train, cfg)  # poor, not absurd: left to the metrics
    with pytest.raises(TrainingDiverged, match=r"train.learning_rate=1e\+12"):
        raise_if_unlearned(101 * variance, rows.train, cfg)


def test_score_plots_say_what_each_detectors_scores_are() -> None:
    """Every run's score plots were labelled "Mahalanobis distance", the forest's too."""
    from sparse_lstm_ad.detectors import family

    assert "Mahalanobis" not in family("iforest").score_label
    for kind in ("standard", "sparse_gate", "sparse_projection", "pca"):
        assert family(kind).score_label.endswith("of the reconstruction errors"), kind
    assert family("mahalanobis").score_label.startswith("Mahalanobis distance of the windows")
