"""Crackling-noise relation with sequence-bootstrap CIs (spec/11_AVALANCHES_AND_SIGNATURES.md).

tau_S and alpha_D: discrete power-law fits of sizes and durations (powerlaw_fit), xmin
re-chosen inside every replicate, an optional upper size cutoff (xmax) on both; each
exponent is the bagged mean of its replicates (powerlaw_fit.bagged_fit), its xmin column
the whole-sample fit's.
gamma_fit: OLS slope of log mean S on log D over the distinct D in [d_min, d_max]
present, with at least min_points of them. gamma_pred = (alpha_D - 1) / (tau_S - 1),
dcc = |gamma_fit - gamma_pred|. A resample draws sequences (not avalanches) and
pools their avalanches; every statistic here is a function of per-sequence sums
(tail counts, sums of log x, per-D counts and size sums), so all resamples come from
one [R, N] weight matrix product. A replicate obeys the point estimate's data rules
(enough tail samples, enough D points) or is NaN; CIs are over the finite replicates.
gamma_pred's point value is formed from the bagged exponents, dcc from it.
The reason column names the first statistic, in column order, that lacked data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from canon import CANON
from critspec.analysis.avalanches import Avalanches
from critspec.analysis.bootstrap import percentile_ci
from critspec.analysis.powerlaw_fit import PowerLawFit, bagged_fit

REASON = CANON.ENUM.FIT_REASON


@dataclass(frozen=True)
class CracklingParams:
    min_tail: int  # TAIL_FIT_MIN_TAIL_SAMPLES
    d_min: int  # CRACKLING_D_RANGE_MIN
    d_max: int  # CRACKLING_D_RANGE_MAX
    min_points: int  # CRACKLING_MIN_POINTS
    percentiles: tuple[float, float]  # BOOTSTRAP_CI_PERCENTILES
    xmax: float | None = None  # optional upper cutoff of the power-law fits


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Crackling:
    n_avalanches: int
    tau_S: Estimate
    tau_S_xmin: float
    tau_S_at_range_edge: bool
    alpha_D: Estimate
    alpha_D_xmin: float
    alpha_D_at_range_edge: bool
    gamma_fit: Estimate
    n_d_points: int
    gamma_pred: Estimate
    dcc: Estimate
    reason: str | None
    size_fit: PowerLawFit  # the whole-sample fit at tau_S_xmin: the tail fits' law
    replicates: dict[str, np.ndarray]  # tau_S, alpha_D, gamma_fit, dcc: [R] each (paired deltas)


def gamma_ols(
    counts: np.ndarray, size_sums: np.ndarray, d_values: np.ndarray, min_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of counts/size_sums [R, nD]: (OLS slope of log mean S on log D, n distinct D).

    A D with no avalanche in the row is left out; fewer than min_points D gives NaN.
    """
    present = counts > 0
    n_points = present.sum(axis=1)
    x = np.log(d_values.astype(np.float64))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(present, np.log(size_sums / counts), 0.0)
        x_bar = (present * x).sum(axis=1) / n_points
        y_bar = y.sum(axis=1) / n_points
        dx = np.where(present, x - x_bar[:, None], 0.0)
        slope = (dx * (y - y_bar[:, None])).sum(axis=1) / (dx * dx).sum(axis=1)
    return np.where(n_points >= min_points, slope, np.nan), n_points


def _estimate(value: float, reps: np.ndarray, percentiles: Sequence[float]) -> Estimate:
    if not math.isfinite(value):
        return Estimate(math.nan, math.nan, math.nan)
    low, high = percentile_ci(reps, percentiles)
    return Estimate(float(value), float(low), float(high))


def crackling(av: Avalanches, weights: np.ndarray, params: CracklingParams) -> Crackling:
    """Crackling statistics of one condition's avalanches; weights [R, N] from its index matrix."""
    w = np.asarray(weights, dtype=np.float64)
    n_seq = w.shape[1]
    sizes = av.size.astype(np.float64)
    durations = av.duration.astype(np.float64)
    size_bag = bagged_fit(sizes, av.seq_index, w, params.min_tail, params.xmax)
    dur_bag = bagged_fit(durations, av.seq_index, w, params.min_tail, params.xmax)
    size_fit, dur_fit = size_bag.fit, dur_bag.fit
    tau_r, alpha_r = size_bag.replicates, dur_bag.replicates

    d_values = np.arange(params.d_min, params.d_max + 1)
    in_range = (av.duration >= params.d_min) & (av.duration <= params.d_max)
    cell = av.seq_index[in_range] * d_values.size + (av.duration[in_range] - params.d_min)
    n_cells = n_seq * d_values.size
    # float64: a float @ int64 product takes numpy's slow non-BLAS path (50x).
    counts = np.bincount(cell, minlength=n_cells).reshape(n_seq, d_values.size).astype(np.float64)
    size_sums = np.bincount(cell, weights=sizes[in_range], minlength=n_cells).reshape(
        n_seq, d_values.size
    )
    (gamma,), (n_d,) = gamma_ols(
        counts.sum(axis=0, keepdims=True),
        size_sums.sum(axis=0, keepdims=True),
        d_values,
        params.min_points,
    )
    gamma_r, _ = gamma_ols(w @ counts, w @ size_sums, d_values, params.min_points)

    with np.errstate(divide="ignore", invalid="ignore"):
        gamma_pred = (dur_bag.alpha - 1.0) / (size_bag.alpha - 1.0)
        gamma_pred_r = (alpha_r - 1.0) / (tau_r - 1.0)
    reasons = [size_fit.reason, dur_fit.reason]
    reasons.append(REASON.TOO_FEW_DURATION_POINTS if n_d < params.min_points else None)
    pct = params.percentiles
    dcc_r = np.abs(gamma_r - gamma_pred_r)
    return Crackling(
        n_avalanches=int(av.size.size),
        tau_S=_estimate(size_bag.alpha, tau_r, pct),
        tau_S_xmin=size_fit.xmin,
        tau_S_at_range_edge=size_bag.at_range_edge,
        alpha_D=_estimate(dur_bag.alpha, alpha_r, pct),
        alpha_D_xmin=dur_fit.xmin,
        alpha_D_at_range_edge=dur_bag.at_range_edge,
        gamma_fit=_estimate(float(gamma), gamma_r, pct),
        n_d_points=int(n_d),
        gamma_pred=_estimate(float(gamma_pred), gamma_pred_r, pct),
        dcc=_estimate(abs(float(gamma) - float(gamma_pred)), dcc_r, pct),
        reason=next((r for r in reasons if r is not None), None),
        size_fit=size_fit,
        replicates={"tau_S": tau_r, "alpha_D": alpha_r, "gamma_fit": gamma_r, "dcc": dcc_r},
    )
