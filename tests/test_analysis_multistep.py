"""Multistep-regression m: the stationary-mean coefficients and the exponential fit
against mrestimator itself, replicate for replicate; recovery of a driven branching
process's m; degenerate input."""

from __future__ import annotations

import contextlib
import io

import mrestimator as mre
import numpy as np
import pytest

from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices, percentile_ci, resample_weights
from critspec.analysis.multistep import (
    KMAX_DIVISOR,
    activity,
    branching_ratio_mr,
    fit_exponential,
    sm_coefficients,
    trial_terms,
)

REASON = CANON.ENUM.FIT_REASON
PCT = tuple(CANON.CONST.BOOTSTRAP_CI_PERCENTILES)
BP_M = tuple(CANON.CONST.SELFCHECK_BP_M)


def driven_branching(m: float, n: int, T: int, mean: float, seed: int) -> np.ndarray:
    """A [n, 3, T]: Poisson offspring with mean m per event plus Poisson drive, started
    at the stationary mean and burnt in, events spread over 3 layers at random."""
    rng = np.random.default_rng(seed)
    a = rng.poisson(mean, n)
    for _ in range(50):
        a = rng.poisson(m * a + mean * (1.0 - m))
    y = np.empty((n, T), dtype=np.int64)
    for t in range(T):
        a = rng.poisson(m * a + mean * (1.0 - m))
        y[:, t] = a
    return rng.multinomial(y.ravel(), [1 / 3] * 3).reshape(n, T, 3).transpose(0, 2, 1)


def mre_m(y: np.ndarray, kmax: int) -> tuple[np.ndarray, float]:
    with contextlib.redirect_stderr(io.StringIO()):
        rk = mre.coefficients(y, method="sm", steps=(1, kmax), numboot=0)
        return rk.coefficients, float(mre.fit(rk, fitfunc=mre.f_exponential, numboot=0).mre)


def test_point_and_replicates_equal_mrestimator_on_the_resampled_trials() -> None:
    A = driven_branching(BP_M[1], 12, 80, 40.0, seed=1)
    y = activity(A)
    kmax = y.shape[1] // KMAX_DIVISOR
    terms = trial_terms(y, kmax)
    rk, m = mre_m(y, kmax)
    assert np.allclose(sm_coefficients(terms, np.ones((1, 12)))[0], rk, rtol=1e-10)
    assert fit_exponential(rk[None, :])[0] == pytest.approx(m, abs=3e-6)
    idx = bootstrap_indices(12, 5, ("mr",), 3)
    w = resample_weights(idx, 12)
    got_rk = sm_coefficients(terms, w)
    got_m = fit_exponential(got_rk)
    for r in range(5):
        want_rk, want_m = mre_m(y[idx[r]], kmax)
        assert np.allclose(got_rk[r], want_rk, rtol=1e-10)
        assert got_m[r] == pytest.approx(want_m, abs=3e-6)
    fit = branching_ratio_mr(A, w, PCT)
    assert fit.kmax == kmax and fit.reason is None
    assert fit.m == pytest.approx(m, abs=3e-6)
    assert (fit.ci_low, fit.ci_high) == pytest.approx(tuple(percentile_ci(got_m, PCT)))


@pytest.mark.parametrize("m", [BP_M[0], BP_M[2]])
def test_recovers_a_driven_branching_process_at_short_windows(m: float) -> None:
    """T = 128: the trial-separated method is 0.04-0.06 low here; stationary mean is not."""
    A = driven_branching(m, 64, 128, 100.0, seed=int(m * 100))
    w = resample_weights(bootstrap_indices(64, 200, ("bp", m), 5), 64)
    fit = branching_ratio_mr(A, w, PCT)
    assert fit.m == pytest.approx(m, abs=0.03)
    assert fit.ci_low <= m <= fit.ci_high


def test_constant_activity_is_nan_with_a_reason() -> None:
    w = np.ones((3, 4))
    fit = branching_ratio_mr(np.ones((4, 2, 64), dtype=np.uint16), w, PCT)
    assert np.isnan(fit.m) and fit.reason == REASON.DEGENERATE_SAMPLE
    fit = branching_ratio_mr(np.zeros((4, 2, 20), dtype=np.uint16), w, PCT)  # kmax = 2 < 3
    assert np.isnan(fit.m) and np.isnan(fit.ci_low) and fit.reason == REASON.DEGENERATE_SAMPLE
