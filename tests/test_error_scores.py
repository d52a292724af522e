"""Tests of the error model and the Mahalanobis scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from sparse_lstm_ad.data import window_starts
from sparse_lstm_ad.error_scores import (
    CovarianceInverse,
    channel_contributions,
    fit_error_model,
    mahalanobis_scores,
    reconstruction_errors,
    time_step_scores,
)


def _correlated_errors(n: int = 4_000, k: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(k, k))
    return rng.normal(size=(n, k)) @ mixing + rng.normal(size=k)


def _naive_row_means(step: np.ndarray, starts: np.ndarray, n_rows: int) -> np.ndarray:
    out = np.full(n_rows, np.nan)
    for row in range(n_rows):
        hits = [step[w, row - s] for w, s in enumerate(starts) if s <= row < s + step.shape[1]]
        if hits:
            out[row] = np.mean(hits)
    return out


def test_reconstruction_errors_sign_and_shape() -> None:
    x = np.zeros((2, 3, 1), dtype=np.float32)
    x_hat = np.ones((2, 3, 1), dtype=np.float32)
    errors = reconstruction_errors(x, x_hat)
    assert errors.dtype == np.float64
    np.testing.assert_array_equal(errors, 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_errors(x, x_hat[:1])


def test_mahalanobis_matches_scipy() -> None:
    errors = _correlated_errors().reshape(400, 10, 4)
    model = fit_error_model(errors, "pinv", shrinkage=0.1)
    np.testing.assert_allclose(model.inv_cov, np.linalg.inv(np.cov(errors.reshape(-1, 4).T)))
    scores = mahalanobis_scores(errors, model)
    assert scores.shape == (400, 10)
    flat = errors.reshape(-1, 4)
    expected = [mahalanobis(e, model.mean, model.inv_cov) for e in flat[:300]]
    np.testing.assert_allclose(scores.ravel()[:300], expected, rtol=0, atol=1e-9)


def test_shrinkage_zero_is_plain_inverse() -> None:
    errors = _correlated_errors()
    model = fit_error_model(errors, CovarianceInverse.shrinkage, shrinkage=0.0)
    np.testing.assert_allclose(model.inv_cov, np.linalg.inv(np.cov(errors.T)))
    with pytest.raises(ValueError, match="shrinkage"):
        fit_error_model(errors, "shrinkage", shrinkage=1.5)
    with pytest.raises(ValueError):
        fit_error_model(errors, "cholesky", shrinkage=0.1)


def test_shrinkage_zero_on_a_singular_covariance_names_the_key() -> None:
    """Copied channels leave the covariance singular: the plain inverse is refused with the key
    and the ways out, where numpy said "Singular matrix" (or returned rounding noise)."""
    one = np.random.default_rng(0).normal(size=(200, 1))
    copies = np.hstack([one, one, one + 1e-17])  # the third differs by less than rounding
    with pytest.raises(ValueError, match=r"scoring\.shrinkage=0: .* rank 1 of 3 .*inverse=pinv"):
        fit_error_model(copies, CovarianceInverse.shrinkage, shrinkage=0.0)
    assert np.isfinite(fit_error_model(copies, "shrinkage", shrinkage=0.1).inv_cov).all()
    constant = np.ones((50, 3))  # errors that never vary: nothing to shrink towards
    with pytest.raises(ValueError, match=r"inverse=shrinkage: the errors do not vary at all"):
        fit_error_model(constant, "shrinkage", shrinkage=0.1)


@pytest.mark.parametrize("copies", [False, True])
def test_oas_inverts_the_covariance_sklearn_shrinks(copies: bool) -> None:
    """scoring.inverse=oas is the inverse of sklearn.covariance.OAS's covariance, from the
    errors held whole (window scope) and from their batched moments (step scope), with copied
    channels (a singular covariance) too."""
    from sklearn.covariance import OAS

    from sparse_lstm_ad.error_scores import ErrorMoments, oas_shrinkage

    errors = _correlated_errors(n=600, k=5, seed=4)
    if copies:
        errors = np.column_stack([errors, errors[:, 1], errors[:, 1]])
    reference = OAS().fit(errors)
    assert oas_shrinkage(np.cov(errors, rowvar=False), len(errors)) == pytest.approx(
        reference.shrinkage_, rel=1e-9
    )
    # sklearn's covariance divides by n, ours by n - 1: the same inverse up to that factor.
    expected = np.linalg.inv(reference.covariance_) * (len(errors) - 1) / len(errors)
    whole = fit_error_model(errors, CovarianceInverse.oas, shrinkage=0.1)
    np.testing.assert_allclose(whole.inv_cov, expected, rtol=1e-6)
    moments = ErrorMoments()
    for part in np.array_split(errors, 3):
        moments.add(part)
    np.testing.assert_allclose(moments.error_model("oas", 0.1).inv_cov, expected, rtol=1e-6)


def test_oas_sees_a_break_between_copies_that_pinv_cannot() -> None:
    """Copies of a channel leave a direction the normal errors never vary in: pinv gives it
    no weight, so a break between the copies scores as a normal vector does; oas, which
    shrinks little with many errors, scores it far out. The constant errors are refused."""
    base = _correlated_errors(n=2_000, k=3)
    errors = np.column_stack([base, base[:, 0]])
    broken = np.append(errors.mean(axis=0)[:3], errors.mean(axis=0)[0] + 3 * base[:, 0].std())
    score = {
        inverse: float(mahalanobis_scores(broken, fit_error_model(errors, inverse, 0.1)))
        for inverse in ("pinv", "oas")
    }
    assert score["pinv"] < 3 and score["oas"] > 30, score
    with pytest.raises(ValueError, match=r"inverse=oas: the errors do not vary at all"):
        fit_error_model(np.ones((50, 3)), "oas", shrinkage=0.1)


@pytest.mark.parametrize("inverse", ["pinv", "shrinkage", "oas"])
def test_duplicate_channel_gives_finite_scores(inverse: str) -> None:
    base = _correlated_errors(k=2)
    errors = np.column_stack([base, base[:, 1], base[:, 1]])  # exact copies: singular cov
    scores = mahalanobis_scores(errors, fit_error_model(errors, inverse, shrinkage=0.1))
    assert np.isfinite(scores).all()
    assert (scores >= 0).all()


def test_pinv_ignores_exact_copies() -> None:
    # Mahalanobis distance is invariant to an injective linear map; pinv keeps that for
    # the rank-deficient covariance of duplicated channels.
    base = _correlated_errors(k=2)
    errors = np.column_stack([base, base[:, 1]])
    duplicated = mahalanobis_scores(errors, fit_error_model(errors, "pinv", shrinkage=0.1))
    plain = mahalanobis_scores(base, fit_error_model(base, "pinv", shrinkage=0.1))
    np.testing.assert_allclose(duplicated, plain, atol=1e-8)


def test_single_channel() -> None:
    errors = np.random.default_rng(1).normal(3.0, 2.0, size=(1_000, 1))
    model = fit_error_model(errors, "pinv", shrinkage=0.1)
    assert model.inv_cov.shape == (1, 1)
    expected = np.abs(errors[:, 0] - errors.mean()) / errors.std(ddof=1)
    np.testing.assert_allclose(mahalanobis_scores(errors, model), expected)


def test_contributions_sum_to_squared_distance() -> None:
    errors = _correlated_errors().reshape(100, 40, 4)
    model = fit_error_model(errors, "shrinkage", shrinkage=0.3)
    contributions = channel_contributions(errors, model)
    assert contributions.shape == errors.shape
    np.testing.assert_allclose(
        contributions.sum(axis=-1), mahalanobis_scores(errors, model) ** 2, rtol=1e-10
    )


@pytest.mark.parametrize(("length", "stride"), [(5, 1), (5, 3), (4, 4), (1, 2)])
def test_time_step_scores_matches_naive_loop(length: int, stride: int) -> None:
    n_rows = 23
    starts = window_starts(n_rows, length, stride)
    step = np.random.default_rng(2).normal(size=(len(starts), length))
    got = time_step_scores(step, starts, n_rows)
    np.testing.assert_allclose(got, _naive_row_means(step, starts, n_rows), equal_nan=True)
    covered = np.zeros(n_rows, dtype=bool)
    for s in starts:
        covered[s : s + length] = True
    np.testing.assert_array_equal(np.isnan(got), ~covered)


def test_time_step_scores_leaves_uncovered_tail_nan() -> None:
    starts = window_starts(10, 4, 4)  # windows at rows 0 and 4 cover rows 0..7 only
    got = time_step_scores(np.ones((len(starts), 4)), starts, 10)
    assert np.isnan(got[8:]).all()
    np.testing.assert_array_equal(got[:8], 1.0)


def test_time_step_scores_per_channel() -> None:
    n_rows, length = 30, 6
    starts = window_starts(n_rows, length, 2)
    values = np.random.default_rng(3).normal(size=(len(starts), length, 3))
    got = time_step_scores(values, starts, n_rows)
    assert got.shape == (n_rows, 3)
    for c in range(3):
        np.testing.assert_allclose(
            got[:, c], time_step_scores(values[..., c], starts, n_rows), equal_nan=True
        )


def test_time_step_scores_rejects_windows_outside_series() -> None:
    with pytest.raises(ValueError, match="outside"):
        time_step_scores(np.ones((2, 5)), np.array([0, 8]), 10)


def test_batched_moments_and_rows_equal_the_whole_array_forms() -> None:
    from sparse_lstm_ad.error_scores import ErrorMoments, RowAccumulator, score_rows

    rng = np.random.default_rng(3)
    errors = rng.normal(size=(50, 6, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1.0]])
    whole = fit_error_model(errors, "pinv", shrinkage=0.1)
    moments = ErrorMoments()
    for part in np.array_split(errors, 4):
        moments.add(part)
    batched = moments.error_model("pinv", 0.1)
    np.testing.assert_allclose(batched.mean, whole.mean, atol=1e-12)
    np.testing.assert_allclose(batched.inv_cov, whole.inv_cov, rtol=1e-9)
    assert moments.mse == pytest.approx(np.mean(errors**2))

    starts = np.arange(50) * 2  # stride 2 over 105 rows: the last rows are covered by none
    rows = RowAccumulator(105, 3, whole)
    for chunk in np.array_split(np.arange(50), 3):
        rows.add(errors[chunk], starts[chunk])
    expected = score_rows(errors, starts, 105, whole)
    np.testing.assert_allclose(rows.result().scores, expected.scores, rtol=1e-12)
    np.testing.assert_allclose(rows.result().contributions, expected.contributions, atol=1e-9)
    assert np.isnan(rows.result().scores[-1])


def test_batch_errors_cover_every_window_once_within_the_value_budget() -> None:
    from sparse_lstm_ad.error_scores import batch_errors

    windows = np.random.default_rng(4).normal(size=(23, 5, 3))
    calls: list[int] = []

    def halve(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return batch / 2

    batches = list(batch_errors(windows, halve, values=5 * 3 * 10))  # 10 windows a batch
    assert calls == [10, 10, 3]
    assert [chunk.start for chunk, _ in batches] == [0, 10, 20]
    np.testing.assert_array_equal(np.concatenate([e for _, e in batches]), -windows / 2)
