"""Pooled b and chi with every bootstrap resample at once (spec/12_STATISTICS_AND_BOOTSTRAP.md).

b_time = sum X[n,l,t] X[n,l,t+1] / sum X, b_depth likewise over l, b_tot = b_time +
b_depth (as critspec.events.branching), pooled over sequences; chi = Var(Y) /
(Mean(Y) + CHI_EPS) with Y_n = sum_{l,t} A[n,l,t] and the population variance. Every
one is a function of per-sequence sums, so a resample with weights w (how often each
sequence was drawn) is sum_n w_n s_n: all R resamples are one [R, N] @ [N] product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SequenceStats:
    """Per-sequence sufficient statistics, each [N]."""

    n_occupied: np.ndarray
    n_time_pairs: np.ndarray
    n_depth_pairs: np.ndarray
    y: np.ndarray  # sum of A over the sequence (float64: squared below)


@dataclass(frozen=True)
class LatticeEstimates:
    """Pooled estimates, each of shape [R] (R = 1 for the point estimate)."""

    b_time: np.ndarray
    b_depth: np.ndarray
    b_tot: np.ndarray
    chi: np.ndarray


def sequence_stats(A: np.ndarray) -> SequenceStats:
    """Sufficient statistics of A [N, L, T] (X = A > 0)."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    X = A > 0
    return SequenceStats(
        n_occupied=np.count_nonzero(X, axis=(1, 2)).astype(np.int64),
        n_time_pairs=np.count_nonzero(X[:, :, :-1] & X[:, :, 1:], axis=(1, 2)).astype(np.int64),
        n_depth_pairs=np.count_nonzero(X[:, :-1, :] & X[:, 1:, :], axis=(1, 2)).astype(np.int64),
        y=A.sum(axis=(1, 2), dtype=np.int64).astype(np.float64),
    )


def pooled(stats: SequenceStats, weights: np.ndarray, chi_eps: float) -> LatticeEstimates:
    """Estimates for each row of weights [R, N] (use ones((1, N)) for the point estimate)."""
    w = np.asarray(weights, dtype=np.float64)
    n_seq = stats.y.shape[0]
    # float64 operands: a float @ int64 product takes numpy's slow non-BLAS path.
    den = w @ stats.n_occupied.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_time = np.where(den > 0, (w @ stats.n_time_pairs.astype(np.float64)) / den, np.nan)
        b_depth = np.where(den > 0, (w @ stats.n_depth_pairs.astype(np.float64)) / den, np.nan)
    # The variance is shift invariant; centring on the sample mean first keeps
    # E[y^2] - E[y]^2 from cancelling catastrophically when Y is large.
    centre = stats.y.mean()
    yc = stats.y - centre
    mean_c = (w @ yc) / n_seq
    var = np.maximum((w @ (yc * yc)) / n_seq - mean_c * mean_c, 0.0)
    chi = var / (mean_c + centre + chi_eps)
    return LatticeEstimates(b_time=b_time, b_depth=b_depth, b_tot=b_time + b_depth, chi=chi)


def _quadratic_sum(x: np.ndarray, coef: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_n w[r, n] (sum_f coef[r, f] x[n, f])^2 for every row r, as W @ (x_f x_g) products."""
    n_feat = x.shape[1]
    out = np.zeros(w.shape[0])
    for f in range(n_feat):
        for g in range(f, n_feat):
            term = coef[:, f] * coef[:, g] * (w @ (x[:, f] * x[:, g]))
            out += term if f == g else 2.0 * term
    return out


def ratio_se(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linearized (delta-method) SE of sum(w num) / sum(w den) per weight row [R]."""
    w = np.asarray(weights, dtype=np.float64)
    sd = w @ den
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (w @ num) / sd
        coef = np.stack([1.0 / sd, -r / sd], axis=1)
        n = w.sum(axis=1)
        s2 = _quadratic_sum(np.stack([num, den], axis=1).astype(np.float64), coef, w)
        return np.sqrt(np.maximum(s2, 0.0) * n / (n - 1.0))


def ratio_diff_se(
    num: np.ndarray, den: np.ndarray, num2: np.ndarray, den2: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Linearized SE of ratio(num, den) - ratio(num2, den2) on the same windows (paired)."""
    w = np.asarray(weights, dtype=np.float64)
    sd, sd2 = w @ den, w @ den2
    with np.errstate(divide="ignore", invalid="ignore"):
        r, r2 = (w @ num) / sd, (w @ num2) / sd2
        coef = np.stack([1.0 / sd, -r / sd, -1.0 / sd2, r2 / sd2], axis=1)
        x = np.stack([num, den, num2, den2], axis=1).astype(np.float64)
        n = w.sum(axis=1)
        return np.sqrt(np.maximum(_quadratic_sum(x, coef, w), 0.0) * n / (n - 1.0))


def chi_se(stats: SequenceStats, weights: np.ndarray, chi_eps: float) -> np.ndarray:
    """Linearized SE of chi = Var(Y) / (Mean(Y) + eps) per weight row: the influence of
    window n is ((y_n - mu)^2 - var) / m - var (y_n - mu) / m^2, a quadratic in y_n, so
    its weighted sum of squares is a combination of W @ y^k, k = 0..4 (y centred)."""
    w = np.asarray(weights, dtype=np.float64)
    n_seq = stats.y.shape[0]
    centre = stats.y.mean()
    yc = stats.y - centre
    mu = (w @ yc) / n_seq
    var = np.maximum((w @ (yc * yc)) / n_seq - mu * mu, 0.0)
    m = mu + centre + chi_eps
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 1.0 / m
        b = -2.0 * mu / m - var / (m * m)
        c = (mu * mu - var) / m + var * mu / (m * m)
        coef = np.stack([a, b, c], axis=1)
        x = np.stack([yc * yc, yc, np.ones_like(yc)], axis=1)
        s2 = _quadratic_sum(x, coef, w)
        return np.sqrt(np.maximum(s2, 0.0) / (n_seq * (n_seq - 1.0)))


def lattice_se(stats: SequenceStats, weights: np.ndarray, chi_eps: float) -> LatticeEstimates:
    """The linearized SE of each pooled estimate, per weight row (for studentized CIs)."""
    occ = stats.n_occupied.astype(np.float64)
    tp, dp = stats.n_time_pairs.astype(np.float64), stats.n_depth_pairs.astype(np.float64)
    return LatticeEstimates(
        b_time=ratio_se(tp, occ, weights),
        b_depth=ratio_se(dp, occ, weights),
        b_tot=ratio_se(tp + dp, occ, weights),
        chi=chi_se(stats, weights, chi_eps),
    )
