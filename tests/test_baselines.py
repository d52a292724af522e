"""The baselines: each one's scores against a direct computation, and through the pipeline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from sparse_lstm_ad.data import Windows, make_windows, window_starts
from sparse_lstm_ad.detectors import family
from sparse_lstm_ad.detectors.forest import ForestScorer, fit_forest
from sparse_lstm_ad.detectors.pca import fit_pca
from sparse_lstm_ad.detectors.reconstruction import WindowGaussian
from sparse_lstm_ad.error_scores import time_step_scores
from sparse_lstm_ad.pipeline import prepare_rows, score_parts, train_model
from tests.conftest import QUICK_EXIT, ROOT, compose_config


def _rows(n: int = 600, k: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    return latent @ rng.normal(size=(2, k)) + 0.3 * rng.normal(size=(n, k))


def test_forest_arrays_score_as_scikit_learn_does(tmp_path: Path) -> None:
    train, test = _rows(), 2 * _rows(seed=1)
    scorer = fit_forest(train, trees=20, seed=3)
    expected = -IsolationForest(n_estimators=20, random_state=3).fit(train).score_samples(test)
    np.testing.assert_allclose(scorer(test), expected, rtol=0, atol=1e-12)
    loaded = ForestScorer.load(scorer.save(tmp_path / "forest.npz"))
    np.testing.assert_array_equal(loaded(test), scorer(test))


def test_pca_keeps_the_fewest_components_reaching_the_share() -> None:
    train = _rows(k=6)
    reconstruction = fit_pca(train, 0.9)
    pca = PCA().fit(train)
    expected = int(np.searchsorted(np.cumsum(pca.explained_variance_ratio_), 0.9) + 1)
    assert reconstruction.basis.shape == (6, expected)
    reference = PCA(n_components=expected).fit(train)
    np.testing.assert_allclose(
        reconstruction(train), reference.inverse_transform(reference.transform(train)), atol=1e-9
    )


def test_pca_leaves_a_residual_and_scores_it_not_the_rows() -> None:
    """From float32 rows PCA kept a float32 basis; its rounding errors along the kept
    components (~1e-7) went to the error model as directions of tiny variance, and they swamp
    the residual: PCA scored as the window Mahalanobis baseline, to the digit, on case 1, case 2
    and correlation breaks at k = 5. Keeping every direction the rows vary in (every channel,
    or every one but a copy) leaves only that noise."""
    cfg = compose_config("data=case2", "model=pca", "data.every=4")
    rows = prepare_rows(cfg)
    assert rows.train.dtype == np.float32
    linear = fit_pca(rows.train, cfg.model.pca_variance)
    # case 2's rows have rank 2 (four copies of one channel): one component leaves a residual.
    assert linear.basis.dtype == np.float64 and linear.basis.shape == (5, 1)
    along_kept = (rows.train - linear(rows.train)) @ linear.basis
    assert np.abs(along_kept).max() < 1e-10
    a = np.random.default_rng(0).normal(size=(500, 2))
    total = np.c_[a, a.sum(axis=1)]  # a channel that is the others' total: rank 2 of 3
    standardised = ((total - total.mean(axis=0)) / total.std(axis=0)).astype(np.float32)
    assert fit_pca(standardised, 0.9999).basis.shape == (3, 1)
    assert fit_pca(np.ones((50, 4), dtype=np.float32), 0.9).basis.shape == (4, 0)  # rank 0
    windows = {p: Windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    scores = {}
    for kind in ("pca", "mahalanobis"):
        kind_cfg = compose_config("data=case2", f"model={kind}", "data.every=4")
        fitted = family(kind).fit(kind_cfg, rows.train, windows, lambda s, e, f: None)
        scores[kind] = fitted.detector.score(windows["test"])[0].scores
    scored = ~np.isnan(scores["pca"])
    assert np.corrcoef(scores["pca"][scored], scores["mahalanobis"][scored])[0, 1] < 0.999


def _window_average(per_row: np.ndarray, window: int) -> np.ndarray:
    steps = make_windows(per_row[:, None], window)[..., 0]
    return time_step_scores(steps, window_starts(len(per_row), window, 1), len(per_row))


def _scored(*overrides: str):
    """The config, rows, scores and fitted detector of a baseline run's parts."""
    cfg = compose_config("+experiment=fast", *overrides)
    rows = prepare_rows(cfg)
    windows = _windows(rows, cfg.data.window)
    fitted = train_model(cfg, rows.train, windows)
    assert fitted.fit.stopped_by is None and fitted.fit.epochs_run == 0  # in closed form
    return cfg, rows, score_parts(fitted.detector, cfg, windows), fitted


def _windows(rows, length: int) -> dict[str, Windows]:
    return {part: Windows(getattr(rows, part), length) for part in ("train", "val", "test")}


def _pooled(rows: np.ndarray, window: int) -> np.ndarray:
    """Every (window, step) row, as the error model pools them (edge rows count less)."""
    return make_windows(rows, window).reshape(-1, rows.shape[1])


def test_mahalanobis_is_the_distance_of_each_row_from_the_training_rows() -> None:
    cfg, rows, scored, fitted = _scored(
        "model=mahalanobis", "model.mahalanobis_scope=row", "data=case1", "scoring.inverse=pinv"
    )
    train = _pooled(rows.train, cfg.data.window)
    centred = rows.test - train.mean(axis=0)
    inverse = np.linalg.pinv(np.cov(train, rowvar=False), hermitian=True)
    per_row = np.sqrt(np.einsum("ij,jk,ik->i", centred, inverse, centred))
    np.testing.assert_allclose(scored.test, _window_average(per_row, cfg.data.window), rtol=1e-5)
    assert fitted.figures["train_reconstruction_mse"] == pytest.approx(np.mean(train**2))


def test_window_mahalanobis_is_the_distance_of_each_flattened_window() -> None:
    cfg, rows, scored, _ = _scored("model=mahalanobis", "data=case1", "scoring.inverse=pinv")
    flat = make_windows(rows.train, cfg.data.window).reshape(-1, cfg.data.window * 2)
    test = make_windows(rows.test, cfg.data.window).reshape(-1, cfg.data.window * 2)
    centred = test - flat.mean(axis=0)
    inverse = np.linalg.pinv(np.cov(flat, rowvar=False), hermitian=True)
    per_window = np.sqrt(np.einsum("ij,jk,ik->i", centred, inverse, centred))
    steps = np.repeat(per_window[:, None], cfg.data.window, axis=1)
    starts = window_starts(len(rows.test), cfg.data.window, 1)
    expected = time_step_scores(steps, starts, len(rows.test))
    np.testing.assert_allclose(scored.test, expected, rtol=1e-6)
    # The channels' shares of each squared distance add up to it.
    squared = time_step_scores(steps**2, starts, len(rows.test))
    np.testing.assert_allclose(scored.test_contributions.sum(axis=1), squared, rtol=1e-6)


def test_isolation_forest_scores_rows_then_averages_over_windows() -> None:
    cfg, rows, scored, _ = _scored("model=iforest", "seed=4")
    forest = IsolationForest(n_estimators=cfg.model.iforest_trees, random_state=4)
    per_row = -forest.fit(rows.train).score_samples(rows.test)
    np.testing.assert_allclose(scored.test, _window_average(per_row, cfg.data.window), atol=1e-12)
    assert not scored.reconstruction_mse and np.isnan(scored.test_contributions).all()


def test_pca_errors_go_to_the_error_model() -> None:
    # PCA's errors lie in the discarded components: a singular covariance, inverted with
    # shrinkage here so that rounding in it cannot decide the comparison.
    overrides = ("model=pca", "model.pca_variance=0.5", "data=case1", "scoring.inverse=shrinkage")
    overrides += ("scoring.scope=step",)
    cfg, rows, scored, _ = _scored(*overrides)
    reconstruction = fit_pca(rows.train, 0.5)
    assert reconstruction.basis.shape[1] == 1
    errors = reconstruction(rows.test) - rows.test
    train = _pooled(rows.train, cfg.data.window)
    train_errors = reconstruction(train) - train
    centred = errors - train_errors.mean(axis=0)
    cov = np.cov(train_errors, rowvar=False)
    inverse = np.linalg.inv(0.9 * cov + 0.1 * np.trace(cov) / 2 * np.eye(2))
    per_row = np.sqrt(np.einsum("ij,jk,ik->i", centred, inverse, centred))
    np.testing.assert_allclose(scored.test, _window_average(per_row, cfg.data.window), rtol=1e-5)


def test_a_window_of_one_scores_each_row_alone() -> None:
    cfg = compose_config("+experiment=fast", "model=mahalanobis", "data.window=1")
    rows = prepare_rows(cfg)
    windows = _windows(rows, 1)
    scored = score_parts(train_model(cfg, rows.train, windows).detector, cfg, windows)
    assert np.isfinite(scored.test).all() and len(scored.test) == len(rows.test)


BASELINE_RUNS = {
    "mahalanobis": ["model=mahalanobis"],
    "pca": ["model=pca"],
    "iforest": ["model=iforest"],
    "pca_window": ["model=pca", "scoring.scope=window"],
    "mahalanobis_row": ["model=mahalanobis", "model.mahalanobis_scope=row"],
}


@pytest.mark.slow
def test_baseline_runs_log_a_scoring_model_without_tensorflow(
    tmp_path: Path, store_template: Path
) -> None:
    """Whole runs of every baseline in one fresh process (TensorFlow never loaded by any):
    metrics, and a pyfunc model that scores as its run did. One process for the five: what is
    tested is that none of them imports TensorFlow, not five interpreter starts. Each store
    starts as a copy of the empty template: five stores' schema migrations are not tested."""
    script = f"""{QUICK_EXIT}
import sys
from pathlib import Path
import mlflow
import numpy as np
import pandas as pd
from sparse_lstm_ad.pipeline import JobInfo, prepare_rows, run_experiment
from tests.conftest import compose_config, seed_store
for label, overrides in {BASELINE_RUNS!r}.items():
    seed_store(Path({str(store_template)!r}), Path({str(tmp_path)!r}, label))
    store = f"tracking.dir={tmp_path}/" + label
    cfg = compose_config("+experiment=fast", *overrides, store)
    summary = run_experiment(cfg, JobInfo(run_name="baseline", config={{}}))
    assert "tensorflow" not in sys.modules, label + " loaded TensorFlow"
    name = mlflow.get_run(summary.run_id).data.tags["scoring_model"]
    assert name == overrides[0].removeprefix("model=") + "-case2", (label, name)
    model = mlflow.pyfunc.load_model(f"runs:/{{summary.run_id}}/{{name}}")
    scores = pd.read_csv(mlflow.artifacts.download_artifacts(
        run_id=summary.run_id, artifact_path="scores/test_scores.csv"))
    rows = prepare_rows(cfg)
    raw = rows.test * rows.standardizer.std + rows.standardizer.mean
    raw = pd.DataFrame(raw, columns=rows.channels)
    predicted = model.predict(raw)["score"]
    np.testing.assert_allclose(predicted, scores["score"], rtol=1e-9, err_msg=label)
    print(label, summary.metrics["auc_pr"], summary.metrics["f1_best_oracle"], len(scores))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines() if line.split()[:1]]
    figures = {line[0]: line[1:] for line in lines if line[0] in BASELINE_RUNS}
    assert set(figures) == set(BASELINE_RUNS), result.stdout[-3000:]
    for label, (auc_pr, best, n_rows) in figures.items():
        assert 0 < float(auc_pr) <= 1 and float(best) <= 1 and int(n_rows) > 0, label


def test_window_scope_of_pca_errors_is_the_window_mahalanobis_of_its_errors() -> None:
    cfg, rows, scored, fitted = _scored(
        "model=pca", "model.pca_variance=0.5", "scoring.scope=window", "scoring.inverse=pinv"
    )
    reconstruction = fit_pca(rows.train, 0.5)
    window = cfg.data.window
    train = make_windows(rows.train, window)
    test = make_windows(rows.test, window)
    flat = (reconstruction(train) - train).reshape(len(train), -1)
    errors = (reconstruction(test) - test).reshape(len(test), -1)
    centred = errors - flat.mean(axis=0)
    inverse = np.linalg.pinv(np.cov(flat, rowvar=False), hermitian=True)
    per_window = np.sqrt(np.einsum("ij,jk,ik->i", centred, inverse, centred))
    steps = np.repeat(per_window[:, None], window, axis=1)
    expected = time_step_scores(steps, window_starts(len(rows.test), window, 1), len(rows.test))
    np.testing.assert_allclose(scored.test, expected, rtol=1e-5)
    assert isinstance(fitted.detector.scores.errors, WindowGaussian)
    assert np.isfinite(scored.reconstruction_mse["val"])


def test_auto_scope_scores_by_window_until_a_window_is_large() -> None:
    from sparse_lstm_ad.config import ScoringScope
    from sparse_lstm_ad.detectors.reconstruction import scoring_scope

    cfg = compose_config()
    assert scoring_scope(cfg, 100) == ScoringScope.window  # 15 x 100 values
    assert scoring_scope(cfg, 500) == ScoringScope.step  # 15 x 500: a 7,500-square covariance
    assert scoring_scope(compose_config("scoring.scope=step"), 5) == ScoringScope.step


def test_a_window_gaussian_fitted_on_too_few_windows_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fitted on no more windows than it has values, a window Gaussian's covariance is singular
    by construction (corr_breaks_k100's 1,500 values on 586 validation windows lost 0.6 AUC-PR,
    experiments/fit_on): said in a warning naming the ways to fewer values, for the
    reconstructions' window scope and the mahalanobis baseline alike (one fit)."""
    from sparse_lstm_ad.detectors.window_gaussian import fit_window_mahalanobis

    rng = np.random.default_rng(0)
    logger = "sparse_lstm_ad.detectors.window_gaussian"
    with caplog.at_level("WARNING", logger=logger):
        fit_window_mahalanobis(rng.normal(size=(101, 100)), 10, "oas", 0.1)  # 10 x 10 values
        assert caplog.text == ""
        fitted = fit_window_mahalanobis(rng.normal(size=(100, 100)), 10, "oas", 0.1)
    assert "of 100 values (data.window x 10 channels) is fitted on 100 windows" in caplog.text
    assert "scoring.scope=step" in caplog.text and "model.mahalanobis_scope=row" in caplog.text
    assert np.isfinite(fitted.model.inv_cov).all()
