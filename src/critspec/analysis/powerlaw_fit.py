"""Discrete power-law fits, one estimator for point, bootstrap and goodness of fit
(spec/11_AVALANCHES_AND_SIGNATURES.md, section 2).

Clauset, Shalizi & Newman (2009): for each candidate xmin the exact discrete MLE of
alpha on the tail x >= xmin (and x <= xmax when an upper cutoff is given, the pmf then
normalized over [xmin, xmax]); xmin is the candidate whose fit has the smallest
Kolmogorov-Smirnov distance between the tail's empirical CDF and the fitted one.

Everything is a function of a histogram: counts [R, V] over the sample's distinct
values V. The whole-sample fit is one row (all data); the sequence-bootstrap replicates
are the rows of W @ (per-sequence histograms), so xmin is re-chosen inside every
replicate, and the reported exponent is their mean (bagged_fit), its CI their
percentiles; the goodness-of-fit replicates are the rows of the synthetic data sets'
histograms. All rows are fitted at once:

- candidates: the distinct values in POWERLAW_XMIN_RANGE, at most
  POWERLAW_XMIN_CANDIDATES of them (log-spaced by position when there are more), the
  same for every row; a row's candidate needs n_tail >= min_tail;
- alpha: the root of the likelihood equation mean(log x) = -d log Z / d alpha
  (-loglik / n = alpha mean(log x) + log Z(alpha) is convex), by inverting the
  derivative tabulated once per (xmin, xmax) over ALPHA_RANGE, all rows at once;
- KS (Z by a vectorized Hurwitz zeta, checked against scipy.special.zeta): at most
  POWERLAW_KS_POINTS distinct tail values (all of them when fewer; else
  evenly spaced by position, ends included), the same points for point and replicates.

Goodness of fit (Clauset's semi-parametric bootstrap): POWERLAW_GOF_REPS synthetic
data sets of the sample's size, each value drawn with probability n_tail / n from the
fitted power law (continuous approximation rounded, Clauset et al. appendix D) and
otherwise from the data below xmin; each set is refitted with xmin re-chosen, and p
is the fraction whose KS distance is at least the data's.

powerlaw.Fit at the chosen xmin (and xmax) serves the likelihood-ratio tests of
tail_fits (powerlaw_at); its own alpha equals ours to its tolerance (tests).
"""

from __future__ import annotations

import contextlib
import functools
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
# Avalanche exponents of subcritical lattices can exceed 3 (powerlaw's default upper
# end); below 1 a discrete power law without xmax has no normalization.
ALPHA_RANGE = (1.0, 10.0)
PARAMETER_RANGES = {"alpha": list(ALPHA_RANGE)}
ALPHA_EDGE_TOL = 1e-4  # a fitted alpha this close to an end of ALPHA_RANGE is "at the edge"
XMIN_RANGE = tuple(CANON.CONST.POWERLAW_XMIN_RANGE)
XMIN_CANDIDATES = CANON.CONST.POWERLAW_XMIN_CANDIDATES
KS_POINTS = CANON.CONST.POWERLAW_KS_POINTS
GOF_REPS = CANON.CONST.POWERLAW_GOF_REPS
MIN_UNIQUE_VALUES = 3
# Hurwitz zeta: exact terms below EM_START, Euler-Maclaurin from there on (relative
# error < 1e-8 for 1 < alpha <= 10 at EM_START = 16).
EM_START = 16


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """powerlaw warns on every edge fit and numpy on log(0); the reasons column says it."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _em_tail(s: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euler-Maclaurin for zeta(s, b) = sum_{k >= 0} (b + k)^-s, b >= EM_START."""
    inv = 1.0 / b
    t = np.exp(-s * np.log(b))
    inv2 = inv * inv
    p3 = s * (s + 1.0) * (s + 2.0)
    p5 = p3 * (s + 3.0) * (s + 4.0)
    p7 = p5 * (s + 5.0) * (s + 6.0)
    return t * (
        b / (s - 1.0)
        + 0.5
        + s * inv / 12.0
        - p3 * inv * inv2 / 720.0
        + p5 * inv * inv2 * inv2 / 30240.0
        - p7 * inv * inv2 * inv2 * inv2 / 1209600.0
    )


def hurwitz_zeta(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """zeta(s, a) for s > 1 and integer a >= 1 (broadcast); equals scipy.special.zeta.

    The exact terms k^-s, k < EM_START, depend on s only: computed once per s and
    summed from a by a reverse cumulative sum, then gathered."""
    s0 = np.asarray(s, dtype=np.float64)
    a0 = np.asarray(a, dtype=np.float64)
    shape = np.broadcast_shapes(s0.shape, a0.shape)
    out = _em_tail(s0, np.maximum(a0, EM_START))
    logs = np.log(np.arange(1, EM_START, dtype=np.float64))
    terms = np.exp(-s0[..., None] * logs)  # [*s.shape, EM_START - 1]
    from_k = np.concatenate(
        [np.cumsum(terms[..., ::-1], axis=-1)[..., ::-1], np.zeros((*s0.shape, 1))], axis=-1
    )
    idx = (np.clip(a0, 1, EM_START) - 1).astype(np.int64)
    table = np.broadcast_to(from_k, (*shape, EM_START))
    direct = np.take_along_axis(table, np.broadcast_to(idx, shape)[..., None], axis=-1)[..., 0]
    return np.broadcast_to(out, shape) + direct


ALPHA_GRID_POINTS = 4000


@functools.lru_cache(maxsize=1024)
def _score_table(xmin: float, xmax: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(d/dalpha log Z on an alpha grid, the grid), Z = sum_{k=xmin}^{xmax} k^-alpha.

    log Z is convex in alpha, so its derivative is increasing and the likelihood
    equation mean(log x) = -d log Z / d alpha is solved by inverting it (np.interp).
    Central differences on the grid (scipy's exact Hurwitz zeta) are accurate to
    ~1e-6, far below powerlaw's own tolerance (1e-4)."""
    grid = np.linspace(ALPHA_RANGE[0] + 1e-3, ALPHA_RANGE[1], ALPHA_GRID_POINTS)
    h = 1e-4

    def log_z(alpha: np.ndarray) -> np.ndarray:
        z = special.zeta(alpha, xmin)
        if xmax is not None:
            z = z - special.zeta(alpha, xmax + 1.0)
        return np.log(z)

    score = (log_z(grid + h) - log_z(grid - h)) / (2.0 * h)
    return score, grid


def discrete_alpha_mle(
    n_tail: np.ndarray, sum_log: np.ndarray, xmin: float | np.ndarray, xmax: float | None = None
) -> np.ndarray:
    """Discrete power-law MLE on [xmin, xmax] per (n_tail, sum log x); NaN where n_tail = 0.
    xmin may be a 1-D array of candidates along the last axis (one per column)."""
    n_tail = np.asarray(n_tail, dtype=np.float64)
    xmins = np.asarray(xmin, dtype=np.float64).ravel()
    shape = np.broadcast_shapes(n_tail.shape, np.shape(xmin))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_log = np.broadcast_to(
            np.where(n_tail > 0, np.asarray(sum_log, dtype=np.float64) / n_tail, np.nan), shape
        )
    out = np.full(shape, np.nan)
    if np.ndim(xmin) == 0:
        score, grid = _score_table(float(xmin), xmax)
        # Beyond the tabulated scores the optimum is at the range's end (clamped, flagged).
        return np.where(np.isfinite(mean_log), np.interp(-mean_log, score, grid), np.nan)
    for j, x0 in enumerate(xmins):
        score, grid = _score_table(float(x0), xmax)
        col = mean_log[..., j]
        out[..., j] = np.where(np.isfinite(col), np.interp(-col, score, grid), np.nan)
    return out


@dataclass(frozen=True)
class RowFits:
    """Per histogram row: the chosen fit (NaN where no candidate had enough tail)."""

    alpha: np.ndarray
    xmin: np.ndarray
    n_tail: np.ndarray
    ks: np.ndarray


def candidates(values: np.ndarray, xmin_range: tuple[float, float] = XMIN_RANGE) -> np.ndarray:
    """The xmin candidates among sorted distinct values: inside xmin_range (CANON's
    POWERLAW_XMIN_RANGE unless a study bounds it), at most XMIN_CANDIDATES, log-spaced by
    position when there are more."""
    inside = values[(values >= xmin_range[0]) & (values <= xmin_range[1])]
    if inside.size <= XMIN_CANDIDATES:
        return inside
    pos = np.unique(np.round(np.geomspace(1, inside.size, XMIN_CANDIDATES)).astype(int) - 1)
    return inside[pos]


def _ks_positions(n: int) -> np.ndarray:
    if n <= KS_POINTS:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, KS_POINTS)).astype(int))


def fit_rows(
    counts: np.ndarray,
    values: np.ndarray,
    min_tail: int,
    xmax: float | None = None,
    xmin_range: tuple[float, float] = XMIN_RANGE,
) -> RowFits:
    """Fit every row of counts [R, V] over sorted distinct values [V]."""
    counts = np.asarray(counts, dtype=np.float64)
    n_rows = counts.shape[0]
    best = RowFits(
        alpha=np.full(n_rows, np.nan),
        xmin=np.full(n_rows, np.nan),
        n_tail=np.zeros(n_rows),
        ks=np.full(n_rows, np.inf),
    )
    upper = values <= xmax if xmax is not None else np.ones(values.size, dtype=bool)
    values, counts = values[upper], counts[:, upper]
    cands = candidates(values, xmin_range)
    if cands.size == 0:
        return best
    # Tail sums at every candidate at once: reverse cumulative sums over the values.
    first = np.searchsorted(values, cands)
    rev_n = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
    rev_log = np.cumsum((counts * np.log(values))[:, ::-1], axis=1)[:, ::-1]
    n_all, log_all = rev_n[:, first], rev_log[:, first]  # [R, X]
    alpha_all = discrete_alpha_mle(n_all, log_all, cands[None, :], xmax)
    cum = np.cumsum(counts, axis=1)
    alpha, xmins, n_tails, kss = best.alpha, best.xmin, best.n_tail, best.ks
    for j, x0 in enumerate(cands):
        n, a = n_all[:, j], alpha_all[:, j]
        ok = (n >= min_tail) & np.isfinite(a)
        if not ok.any():
            continue
        start = first[j]
        pos = start + _ks_positions(values.size - start)
        below = cum[:, start - 1] if start > 0 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            emp = (cum[:, pos] - np.asarray(below)[..., None]) / n[:, None]
        z0 = hurwitz_zeta(a[:, None], x0)
        z_top = hurwitz_zeta(a[:, None], xmax + 1.0) if xmax is not None else 0.0
        theo = (z0 - hurwitz_zeta(a[:, None], values[pos][None, :] + 1.0)) / (z0 - z_top)
        with np.errstate(invalid="ignore"):
            d = np.where(ok, np.max(np.abs(emp - theo), axis=1), np.inf)
        better = d < kss
        alpha = np.where(better, a, alpha)
        xmins = np.where(better, x0, xmins)
        n_tails = np.where(better, n, n_tails)
        kss = np.where(better, d, kss)
    return RowFits(alpha=alpha, xmin=xmins, n_tail=n_tails, ks=kss)


@dataclass(frozen=True)
class Histogram:
    """Per-sequence counts [N, V] over the sample's sorted distinct values [V]."""

    values: np.ndarray
    counts: np.ndarray


def histogram(sample: np.ndarray, seq: np.ndarray, n_seq: int) -> Histogram:
    values, inverse = np.unique(np.asarray(sample, dtype=np.float64), return_inverse=True)
    flat = np.asarray(seq, dtype=np.int64) * values.size + inverse
    counts = np.bincount(flat, minlength=n_seq * values.size).reshape(n_seq, values.size)
    return Histogram(values=values, counts=counts.astype(np.float64))


@dataclass(frozen=True)
class PowerLawFit:
    """A discrete power-law fit; alpha NaN with a FIT_REASON when it could not be made."""

    alpha: float
    xmin: float
    n_tail: int
    ks: float
    at_range_edge: bool
    reason: str | None
    xmax: float | None = None


def _failed(reason: str, xmin: float = math.nan, n_tail: int = 0) -> PowerLawFit:
    return PowerLawFit(math.nan, xmin, n_tail, math.nan, False, reason)


def fit_power_law(values: np.ndarray, min_tail: int, xmax: float | None = None) -> PowerLawFit:
    """tau-style exponent of positive integer values; NaN + reason with too little data."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < min_tail:
        return _failed(REASON.TOO_FEW_AVALANCHES)
    distinct, counts = np.unique(values, return_counts=True)
    if distinct.size < MIN_UNIQUE_VALUES:
        return _failed(REASON.DEGENERATE_SAMPLE)
    rows = fit_rows(counts[None, :].astype(np.float64), distinct, min_tail, xmax)
    alpha, xmin, n_tail = float(rows.alpha[0]), float(rows.xmin[0]), int(rows.n_tail[0])
    if not math.isfinite(xmin):
        return _failed(REASON.TOO_FEW_TAIL_SAMPLES)
    if not math.isfinite(alpha):
        return _failed(REASON.FIT_FAILED, xmin, n_tail)
    return PowerLawFit(alpha, xmin, n_tail, float(rows.ks[0]), _at_edge(alpha), None, xmax)


@dataclass(frozen=True)
class BaggedFit:
    """The exponent Phase 5 reports (spec/11_AVALANCHES_AND_SIGNATURES.md, section 2):
    alpha is the mean of the bootstrap replicates' fits, each with its own xmin (NaN with
    fit.reason when it cannot be made); replicates [R] give its CI; fit is the fit of the
    whole sample, whose xmin, tail and KS distance the tail fits and the goodness-of-fit
    test use."""

    alpha: float
    replicates: np.ndarray
    fit: PowerLawFit
    at_range_edge: bool


def _at_edge(alpha: float) -> bool:
    return min(alpha - ALPHA_RANGE[0], ALPHA_RANGE[1] - alpha) < ALPHA_EDGE_TOL


def bagged_fit(
    values: np.ndarray,
    seq: np.ndarray,
    weights: np.ndarray,
    min_tail: int,
    xmax: float | None = None,
) -> BaggedFit:
    """The bagged exponent of values (sequence index seq) over the resampling plan's
    weights [R, N]: every replicate is the fit of the resample-weighted histograms, xmin
    re-chosen in each; the estimate is their mean over the replicates that have a fit.

    The KS choice of xmin jumps between candidates, so a single fit's spread between data
    sets is up to twice the bagged mean's (bench/percolation_study.py); averaging over the
    same replicates that give the CI makes point and interval one estimator's.
    """
    w = np.asarray(weights, dtype=np.float64)
    fit = fit_power_law(values, min_tail, xmax)
    if fit.reason is not None:
        return BaggedFit(math.nan, np.full(w.shape[0], np.nan), fit, False)
    hist = histogram(values, seq, w.shape[1])
    reps = fit_rows(w @ hist.counts, hist.values, min_tail, xmax).alpha
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        failed = _failed(REASON.TOO_FEW_TAIL_SAMPLES, fit.xmin, fit.n_tail)
        return BaggedFit(math.nan, reps, failed, False)
    alpha = float(finite.mean())
    return BaggedFit(alpha, reps, fit, bool(fit.at_range_edge or _at_edge(alpha)))


def powerlaw_at(values: np.ndarray, fit: PowerLawFit) -> powerlaw.Fit:
    """powerlaw's Fit of values at the fit's xmin and xmax (for its likelihood ratios)."""
    with quiet():
        return powerlaw.Fit(
            np.asarray(values, dtype=np.float64),
            discrete=True,
            xmin=fit.xmin,
            xmax=fit.xmax,
            estimate_discrete=False,
            verbose=0,
            parameter_ranges=PARAMETER_RANGES,
        )


def sample_power_law(
    rng: np.random.Generator, alpha: float, xmin: float, xmax: float | None, size: int
) -> np.ndarray:
    """Discrete power-law draws on [xmin, xmax] (Clauset et al. 2009, eq. D.6: the
    continuous law from xmin - 1/2, rounded)."""
    lo = xmin - 0.5
    top = 1.0 if xmax is None else 1.0 - ((xmax + 0.5) / lo) ** (1.0 - alpha)
    u = rng.uniform(0.0, top, size)
    return np.floor(lo * (1.0 - u) ** (-1.0 / (alpha - 1.0)) + 0.5)


def gof_p_value(
    sample: np.ndarray, fit: PowerLawFit, min_tail: int, rng: np.random.Generator, reps: int
) -> float:
    """Clauset's semi-parametric bootstrap p-value of the power law (NaN without a fit or
    with reps = 0: not computed)."""
    if reps < 1 or fit.reason is not None or not math.isfinite(fit.alpha):
        return math.nan
    sample = np.asarray(sample, dtype=np.float64)
    below = sample[sample < fit.xmin]
    n = sample.size
    n_pl = rng.binomial(n, fit.n_tail / n, size=reps)
    if below.size == 0:
        n_pl[:] = n
    draws = sample_power_law(rng, fit.alpha, fit.xmin, fit.xmax, int(n_pl.sum()))
    rest = below[rng.integers(0, max(below.size, 1), size=int(n * reps - n_pl.sum()))]
    group_pl = np.repeat(np.arange(reps), n_pl)
    group_rest = np.repeat(np.arange(reps), n - n_pl)
    synth = histogram(np.concatenate([draws, rest]), np.concatenate([group_pl, group_rest]), reps)
    rows = fit_rows(synth.counts, synth.values, min_tail, fit.xmax)
    finite = np.isfinite(rows.ks)
    return float(np.mean(rows.ks[finite] >= fit.ks)) if finite.any() else math.nan
