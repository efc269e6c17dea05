"""Discrete power-law fits through the `powerlaw` package (spec/11_AVALANCHES_AND_SIGNATURES.md).

The point estimate is powerlaw's: xmin by minimal KS distance (Clauset et al. 2009),
then the exact discrete MLE of alpha at that xmin (estimate_discrete=False, so the
xmin >= 10 shortcut of the library never mixes an approximation into the estimate).

Bootstrap replicates are refitted at the point estimate's xmin. A powerlaw.Fit per
replicate costs ~2-8 ms (x 2 exponents x BOOTSTRAP_REPS x conditions x adjacencies,
minutes on the bench profile), so the replicates use the same discrete likelihood,
vectorized: at a fixed xmin the log-likelihood of a tail sample depends on it only
through (n_tail, sum log x), and -loglik / n = alpha * mean(log x) + log zeta(alpha,
xmin) is convex in alpha, minimized by a golden-section search over all replicates
at once. Tests check it against powerlaw.Fit(..., xmin=fixed) on resamples.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import powerlaw
from scipy import special

from canon import CANON

REASON = CANON.ENUM.FIT_REASON
POWER_LAW = "power_law"  # powerlaw's distribution name
# powerlaw's default alpha range is [0, 3]; avalanche exponents of subcritical lattices
# can exceed 3, and below 1 a discrete power law without xmax has no normalization.
ALPHA_RANGE = (1.0, 10.0)
PARAMETER_RANGES = {"alpha": list(ALPHA_RANGE)}
GOLDEN_ITERATIONS = 45  # 0.618**45 * 9 < 1e-8: far below powerlaw's own tol (1e-4)
MIN_UNIQUE_VALUES = 3  # powerlaw's xmin search needs two candidates below the maximum


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """powerlaw warns on every edge fit and numpy on log(0); the reasons column says it."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class PowerLawFit:
    """A discrete power-law fit; alpha NaN with a FIT_REASON when it could not be made."""

    alpha: float
    xmin: float
    n_tail: int
    reason: str | None
    fit: powerlaw.Fit | None  # the fixed-xmin Fit (for likelihood-ratio tests), else None


def _failed(reason: str, xmin: float = math.nan, n_tail: int = 0) -> PowerLawFit:
    return PowerLawFit(alpha=math.nan, xmin=xmin, n_tail=n_tail, reason=reason, fit=None)


def fit_power_law(values: np.ndarray, min_tail: int) -> PowerLawFit:
    """tau-style exponent of positive integer values; NaN + reason with too little data."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    if values.size < min_tail:
        return _failed(REASON.TOO_FEW_AVALANCHES)
    if np.unique(values).size < MIN_UNIQUE_VALUES:
        return _failed(REASON.DEGENERATE_SAMPLE)
    with quiet():
        search = powerlaw.Fit(values, discrete=True, verbose=0, parameter_ranges=PARAMETER_RANGES)
        xmin = float(search.xmin)
        if not math.isfinite(xmin):
            return _failed(REASON.DEGENERATE_SAMPLE)
        n_tail = int(np.count_nonzero(values >= xmin))
        if n_tail < min_tail:
            return _failed(REASON.TOO_FEW_TAIL_SAMPLES, xmin, n_tail)
        try:
            fixed = powerlaw.Fit(
                values,
                discrete=True,
                xmin=xmin,
                estimate_discrete=False,
                verbose=0,
                parameter_ranges=PARAMETER_RANGES,
            )
            alpha = float(fixed.power_law.alpha)
        except (ValueError, FloatingPointError, ZeroDivisionError):
            return _failed(REASON.FIT_FAILED, xmin, n_tail)
    if not math.isfinite(alpha):
        return _failed(REASON.FIT_FAILED, xmin, n_tail)
    return PowerLawFit(alpha=alpha, xmin=xmin, n_tail=n_tail, reason=None, fit=fixed)


def discrete_alpha_mle(n_tail: np.ndarray, sum_log: np.ndarray, xmin: float) -> np.ndarray:
    """Discrete power-law MLE at a fixed xmin per (n_tail, sum log x); NaN where n_tail = 0."""
    n_tail = np.asarray(n_tail, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_log = np.where(n_tail > 0, np.asarray(sum_log, dtype=np.float64) / n_tail, np.nan)

    def cost(alpha: np.ndarray) -> np.ndarray:
        return alpha * mean_log + np.log(special.zeta(alpha, xmin))

    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    lo = np.full(mean_log.shape, ALPHA_RANGE[0])
    hi = np.full(mean_log.shape, ALPHA_RANGE[1])
    a, b = hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo)
    fa, fb = cost(a), cost(b)
    for _ in range(GOLDEN_ITERATIONS):
        left = fa < fb  # the minimum lies in [lo, b]: b becomes the new upper end
        lo, hi = np.where(left, lo, a), np.where(left, b, hi)
        kept, f_kept = np.where(left, a, b), np.where(left, fa, fb)
        new = np.where(left, hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo))
        f_new = cost(new)
        a, fa = np.where(left, new, kept), np.where(left, f_new, f_kept)
        b, fb = np.where(left, kept, new), np.where(left, f_kept, f_new)
    return np.where(np.isfinite(mean_log), (lo + hi) / 2.0, np.nan)
