"""Multistep-regression branching ratio m with a sequence-bootstrap CI
(spec/11_AVALANCHES_AND_SIGNATURES.md, section 5; spec/12_STATISTICS_AND_BOOTSTRAP.md).

Activity Y[n, t] = sum_l A[n, l, t], trials = sequences (windows).

- Coefficients r_k, k = 1..kmax, by mrestimator's stationary-mean method (one mean
  over all trials and times): the trial-separated method subtracts each trial's own
  mean and is biased low on the study's short windows (about -0.05 at T = 128 for a
  driven branching process with m = 0.95), the stationary-mean method is not.
  kmax = T // MULTISTEP_KMAX_DIVISOR (mrestimator's default divisor).
- Fit r_k = b * m^k by least squares (mrestimator's f_exponential, |A| e^(-k/tau),
  m = e^(-1/tau)), unweighted as mrestimator fits without its own bootstrap.
- mrestimator's sm_precompute splits every sum into per-trial terms, so a resample of
  trials with counts W [R, N] is W @ (per-trial terms): all replicates of r_k come from
  one matrix product. The least-squares fit is then solved for every replicate at
  once: for fixed m the best b is closed form, so the residual is a function of m only,
  minimized over a grid on MULTISTEP_M_RANGE and refined by golden-section search.
  Point estimate (W = ones) and replicates use this one estimator; tests check it
  against mrestimator.coefficients(method="sm") and mrestimator.fit.
- No variance in the activity (every r_k undefined), or fewer than 3 lags, gives NaN
  with DEGENERATE_SAMPLE; a point estimate on the edge of MULTISTEP_M_RANGE gives NaN
  with FIT_FAILED (the least-squares minimum lies outside the searched range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from canon import CANON
from critspec.analysis.bootstrap import percentile_ci

REASON = CANON.ENUM.FIT_REASON
KMAX_DIVISOR = CANON.CONST.MULTISTEP_KMAX_DIVISOR
M_RANGE = tuple(CANON.CONST.MULTISTEP_M_RANGE)
METHOD = CANON.CONST.MULTISTEP_METHOD  # mrestimator's name of the coefficient method
FITFUNC = CANON.CONST.MULTISTEP_FITFUNC  # mrestimator's name of the fit function
MIN_LAGS = 3  # two parameters plus one degree of freedom
GRID_POINTS = 300
GOLDEN_ITERATIONS = 40  # (0.618**40) * grid step: far below any reported digit


@dataclass(frozen=True)
class MultistepFit:
    m: float
    ci_low: float
    ci_high: float
    kmax: int
    reason: str | None


@dataclass(frozen=True)
class TrialTerms:
    """mrestimator's sm_precompute terms, each [K, N]: per-trial means of x*y, x*x, x
    and y over the T - k pairs of lag k."""

    x_y: np.ndarray
    x_x: np.ndarray
    mx: np.ndarray
    my: np.ndarray


def activity(A: np.ndarray) -> np.ndarray:
    """Y [N, T] = sum over layers of A [N, L, T] (float64)."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    return A.sum(axis=1, dtype=np.int64).astype(np.float64)


def trial_terms(y: np.ndarray, kmax: int) -> TrialTerms:
    """Per-trial terms of lags 1..kmax of activity y [N, T] (as mrestimator's sm_precompute)."""
    T = y.shape[1]
    c = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
    c2 = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y * y, axis=1)], axis=1)
    ks = np.arange(1, kmax + 1)
    n_pairs = (T - ks)[:, None].astype(np.float64)
    x_y = np.stack([(y[:, :-k] * y[:, k:]).sum(axis=1) for k in ks]) / n_pairs
    x_x = (c2[:, T - ks] - c2[:, :1]).T / n_pairs
    mx = (c[:, T - ks]).T / n_pairs
    my = (c[:, -1:] - c[:, ks]).T / n_pairs
    return TrialTerms(x_y=x_y, x_x=x_x, mx=mx, my=my)


def sm_coefficients(terms: TrialTerms, weights: np.ndarray) -> np.ndarray:
    """r_k [R, K] of the stationary-mean method for each resample (weights [R, N])."""
    w = np.asarray(weights, dtype=np.float64)
    norm = w.shape[1]
    s_mx, s_my = w @ terms.mx.T, w @ terms.my.T
    mxk, myk = s_mx / norm, s_my / norm
    num = (w @ terms.x_y.T - myk * s_mx - mxk * s_my) / norm + mxk * myk
    den = (w @ terms.x_x.T - 2.0 * mxk * s_mx) / norm + mxk * mxk
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _residual(m: np.ndarray, rk: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Least-squares residual of rk [R, K] at m [R, P] after the best b >= 0 (closed form)."""
    powers = m[:, :, None] ** ks[None, None, :]  # [R, P, K]
    proj = np.maximum(np.einsum("rpk,rk->rp", powers, rk), 0.0)
    return (rk * rk).sum(axis=1)[:, None] - proj * proj / (powers * powers).sum(axis=2)


def fit_exponential(rk: np.ndarray) -> np.ndarray:
    """m [R] minimizing sum_k (r_k - b m^k)^2 over b >= 0 and m in M_RANGE; NaN rows give NaN."""
    rk = np.asarray(rk, dtype=np.float64)
    ks = np.arange(1, rk.shape[1] + 1, dtype=np.float64)
    ok = np.isfinite(rk).all(axis=1)
    safe = np.where(ok[:, None], rk, 0.0)
    # m = 0 is left out: b * 0^k fits nothing and its normalization is 0.
    grid = np.linspace(*M_RANGE, GRID_POINTS + 1)[1:]
    # On the grid, shared by every row: one [R, K] @ [K, P] product.
    powers = grid[:, None] ** ks[None, :]
    proj = np.maximum(safe @ powers.T, 0.0)
    res = (safe * safe).sum(axis=1)[:, None] - proj * proj / (powers * powers).sum(axis=1)
    best = np.argmin(res, axis=1)
    step = grid[1] - grid[0]
    lo = np.maximum(grid[best] - step, M_RANGE[0])
    hi = np.minimum(grid[best] + step, M_RANGE[1])
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo)
    fa = _residual(a[:, None], safe, ks)[:, 0]
    fb = _residual(b[:, None], safe, ks)[:, 0]
    for _ in range(GOLDEN_ITERATIONS):
        left = fa < fb
        lo, hi = np.where(left, lo, a), np.where(left, b, hi)
        kept, f_kept = np.where(left, a, b), np.where(left, fa, fb)
        new = np.where(left, hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo))
        f_new = _residual(new[:, None], safe, ks)[:, 0]
        a, fa = np.where(left, new, kept), np.where(left, f_new, f_kept)
        b, fb = np.where(left, kept, new), np.where(left, f_kept, f_new)
    m = (lo + hi) / 2.0
    on_edge = (best == 0) | (best == grid.size - 1)
    return np.where(ok & ~on_edge, m, np.nan)


def branching_ratio_mr(
    A: np.ndarray, weights: np.ndarray, percentiles: Sequence[float]
) -> MultistepFit:
    """m of A [N, L, T] with the percentile CI over the resamples weights [R, N]."""
    y = activity(A)
    kmax = y.shape[1] // KMAX_DIVISOR
    if kmax < MIN_LAGS:
        return MultistepFit(math.nan, math.nan, math.nan, kmax, REASON.DEGENERATE_SAMPLE)
    terms = trial_terms(y, kmax)
    point_rk = sm_coefficients(terms, np.ones((1, y.shape[0])))
    if not np.isfinite(point_rk).all():
        return MultistepFit(math.nan, math.nan, math.nan, kmax, REASON.DEGENERATE_SAMPLE)
    (m,) = fit_exponential(point_rk)
    if not math.isfinite(m):
        return MultistepFit(math.nan, math.nan, math.nan, kmax, REASON.FIT_FAILED)
    reps = fit_exponential(sm_coefficients(terms, weights))
    low, high = percentile_ci(reps, percentiles)
    return MultistepFit(float(m), float(low), float(high), kmax, None)
