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
    den = w @ stats.n_occupied
    with np.errstate(divide="ignore", invalid="ignore"):
        b_time = np.where(den > 0, (w @ stats.n_time_pairs) / den, np.nan)
        b_depth = np.where(den > 0, (w @ stats.n_depth_pairs) / den, np.nan)
    # The variance is shift invariant; centring on the sample mean first keeps
    # E[y^2] - E[y]^2 from cancelling catastrophically when Y is large.
    centre = stats.y.mean()
    yc = stats.y - centre
    mean_c = (w @ yc) / n_seq
    var = np.maximum((w @ (yc * yc)) / n_seq - mean_c * mean_c, 0.0)
    chi = var / (mean_c + centre + chi_eps)
    return LatticeEstimates(b_time=b_time, b_depth=b_depth, b_tot=b_time + b_depth, chi=chi)
