"""`critspec selfcheck`: Phase 5's statistics on data with a known answer
(spec/12_STATISTICS_AND_BOOTSTRAP.md, section 5).

Three studies, each printed as estimate beside truth with pass/fail:

1. 2D site percolation at p_c (4- and 8-neighbour), T = L: tau_S of the cluster sizes
   with boundary clusters excluded (11 section 1), Phase 5's bagged fit over a lattice
   bootstrap, against 187/91; below p_c (4N) the power law must not be preferred over the
   exponential (Vuong's test at the whole-sample fit's xmin, as Phase 5's tail fits).
2. A driven branching process with Poisson offspring (m in SELFCHECK_BP_M, trials x
   tokens x layers of the study's shape), with and without binomial subsampling: the
   mean of m_mr over data sets within SELFCHECK_BP_M_TOL of m, and how often its CI
   covers m.
3. Coverage: synthetic rasters with known b_tot and chi (per-window rate Gamma, counts
   Poisson) at each shipped profile's window count: how often the nominal 95% interval
   Phase 5 reports (studentized, small-sample levels: spec/12 section 3) covers the
   truth, with its Monte Carlo standard error, beside the percentile interval.

The same functions Phase 5 uses compute every estimate. Default sizes run in under
two minutes on two cores; --full uses the paper's sizes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats

from canon import CANON
from critspec.analysis.avalanches import avalanches
from critspec.analysis.bootstrap import (
    bootstrap_indices,
    percentile_ci,
    resample_weights,
    studentized_ci,
)
from critspec.analysis.lattice_stats import lattice_se, pooled, sequence_stats
from critspec.analysis.multistep import branching_ratio_mr
from critspec.analysis.powerlaw_fit import (
    POWER_LAW,
    BaggedFit,
    bagged_fit,
    fit_power_law,
    powerlaw_at,
    quiet,
)
from critspec.seeding import rng_for

C = CANON.CONST
ADJ = CANON.ENUM.ADJACENCY
TAIL = CANON.ENUM.TAIL_ALTERNATIVE
PCT = tuple(C.BOOTSTRAP_CI_PERCENTILES)
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
TAU_2D = C.SELFCHECK_PERC_TAU[0] / C.SELFCHECK_PERC_TAU[1]
TAU_TOL = C.SELFCHECK_PERC_TAU_TOL[0] / C.SELFCHECK_PERC_TAU_TOL[1]
BURN_IN = 100  # tokens simulated before a branching-process trial is recorded
COVERAGE_REPS = C.BOOTSTRAP_REPS
COVERAGE_SHAPE = (30, 128)  # layers x tokens of the coverage rasters (the shape)


@dataclass(frozen=True)
class Line:
    study: str
    case: str
    estimate: str
    truth: str
    passed: bool

    def text(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"{verdict:4}  {self.study:12} {self.case:34} {self.estimate:41} truth {self.truth}"


def lattice_bagged_fit(
    sizes: np.ndarray, lattice: np.ndarray, n_lattices: int, key: tuple
) -> BaggedFit:
    """Phase 5's exponent on percolation clusters: the bagged fit over a lattice bootstrap
    (lattices are the resampled sequences; BOOTSTRAP_REPS replicates, the plan seeded from
    key and BOOTSTRAP_SEED), xmin re-chosen in every replicate."""
    plan = bootstrap_indices(n_lattices, C.BOOTSTRAP_REPS, key, C.BOOTSTRAP_SEED)
    weights = resample_weights(plan, n_lattices)
    return bagged_fit(sizes, lattice, weights, C.SELFCHECK_PERC_MIN_TAIL)


def percolation(full: bool) -> Iterator[Line]:
    side = 2 ** (C.SELFCHECK_PERC_SIDE_FULL_LOG2 if full else C.SELFCHECK_PERC_SIDE_SMALL_LOG2)
    n = C.SELFCHECK_PERC_LATTICES
    cases = (
        (ADJ.ADJ_4N, C.SELFCHECK_PERC_PC_4N, True),
        (ADJ.ADJ_8N, C.SELFCHECK_PERC_PC_8N, True),
        (ADJ.ADJ_4N, C.SELFCHECK_PERC_P_BELOW, False),
    )
    for adjacency, p, critical in cases:
        rng = rng_for("selfcheck_percolation", adjacency, p, side)
        X = (rng.random((n, side, side)) < p).astype(np.uint8)
        av = avalanches(X, adjacency, X[0].size, 0, np.arange(n))
        interior = ~av.boundary
        sizes = av.size[interior]
        case = f"{adjacency} p={p:g} {n}x{side}^2"
        if critical:
            key = ("selfcheck_percolation", adjacency, p, side)
            bag = lattice_bagged_fit(sizes, av.seq_index[interior], n, key)
            low, high = percentile_ci(bag.replicates, PCT)
            yield Line(
                "percolation",
                case,
                f"tau_S {bag.alpha:.4f} [{low:.3f}, {high:.3f}]",
                f"{TAU_2D:.4f} +- {TAU_TOL:g}",
                bool(abs(bag.alpha - TAU_2D) <= TAU_TOL),
            )
        else:
            # The tail fits' law: the whole-sample fit (no replicates needed).
            fit = fit_power_law(sizes, C.SELFCHECK_PERC_MIN_TAIL)
            ratio = p_value = math.nan
            if fit.reason is None:
                with quiet():
                    ratio, p_value = powerlaw_at(sizes, fit).distribution_compare(
                        POWER_LAW, TAIL.EXPONENTIAL, normalized_ratio=True
                    )
            preferred = ratio > 0 and p_value < C.SELFCHECK_LR_SIGNIFICANCE_PERCENT / 100.0
            yield Line(
                "percolation",
                case,
                f"LR vs exp {ratio:.2f} (p {p_value:.2g})",
                "power law not preferred",
                bool(fit.reason is None and not preferred),
            )


def driven_branching(
    rng: np.random.Generator, m: float, trials: int, tokens: int, layers: int, activity: float
) -> np.ndarray:
    """A [trials, layers, tokens]: Poisson offspring (mean m per event) plus Poisson drive
    keeping the mean activity, started at the stationary mean and burnt in; each token's
    events spread uniformly over the layers."""
    drive = activity * (1.0 - m)
    a = rng.poisson(activity, trials)
    for _ in range(BURN_IN):
        a = rng.poisson(m * a + drive)
    y = np.empty((trials, tokens), dtype=np.int64)
    for t in range(tokens):
        a = rng.poisson(m * a + drive)
        y[:, t] = a
    spread = rng.multinomial(y.ravel(), np.full(layers, 1.0 / layers))
    return spread.reshape(trials, tokens, layers).transpose(0, 2, 1)


def branching(full: bool) -> Iterator[Line]:
    n_sets = C.SELFCHECK_BP_SETS_FULL if full else C.SELFCHECK_BP_SETS
    trials, tokens, layers = C.SELFCHECK_BP_TRIALS, C.SELFCHECK_BP_TOKENS, C.SELFCHECK_BP_LAYERS
    keep = C.SELFCHECK_BP_SUBSAMPLE_PERCENT / 100.0
    for m in C.SELFCHECK_BP_M:
        for subsample in (False, True):
            estimates, covered = [], 0
            for k in range(n_sets):
                rng = rng_for("selfcheck_branching", m, subsample, k)
                A = driven_branching(rng, m, trials, tokens, layers, C.SELFCHECK_BP_ACTIVITY)
                if subsample:
                    A = rng.binomial(A, keep)
                w = resample_weights(
                    bootstrap_indices(trials, C.BOOTSTRAP_REPS, ("selfcheck_bootstrap", m, k), 1),
                    trials,
                )
                fit = branching_ratio_mr(A, w, PCT)
                estimates.append(fit.m)
                covered += int(fit.ci_low <= m <= fit.ci_high)
            mean = float(np.mean(estimates))
            sub = f" sub {C.SELFCHECK_BP_SUBSAMPLE_PERCENT}%" if subsample else ""
            yield Line(
                "branching",
                f"m={m:g}{sub} {n_sets}x({trials}x{tokens}x{layers})",
                f"mean m {mean:.4f}, CI covers {covered}/{n_sets}",
                f"{m:g} +- {C.SELFCHECK_BP_M_TOL:g}",
                bool(abs(mean - m) <= C.SELFCHECK_BP_M_TOL),
            )


def coverage_truth(layers: int, tokens: int) -> tuple[float, float]:
    """Population b_tot and chi of the coverage rasters: per-window rate lambda ~ Gamma
    (shape k, mean mu), counts Poisson(lambda) iid over sites. Occupancy q = 1 - e^-lambda,
    b_tot = ((T-1)/T + (L-1)/L) E[q^2] / E[q]; chi = 1 + Var(lambda) L T / E[lambda]."""
    shape, mean = C.SELFCHECK_COVERAGE_RATE_SHAPE, C.SELFCHECK_COVERAGE_RATE_MEAN_PERMILLE / 1000.0
    lam = stats.gamma(shape, scale=mean / shape)
    e_q = integrate.quad(lambda x: -math.expm1(-x) * lam.pdf(x), 0, np.inf)[0]
    e_q2 = integrate.quad(lambda x: math.expm1(-x) ** 2 * lam.pdf(x), 0, np.inf)[0]
    b_tot = ((tokens - 1) / tokens + (layers - 1) / layers) * e_q2 / e_q
    return b_tot, 1.0 + lam.var() * layers * tokens / lam.mean()


@dataclass(frozen=True)
class Coverage:
    n_windows: int
    n_sets: int
    b_tot: float  # studentized (what Phase 5 reports)
    chi: float
    b_tot_percentile: float
    chi_percentile: float


def coverage(n_windows: int, n_sets: int) -> Coverage:
    layers, tokens = COVERAGE_SHAPE
    b_true, chi_true = coverage_truth(layers, tokens)
    shape, mean = C.SELFCHECK_COVERAGE_RATE_SHAPE, C.SELFCHECK_COVERAGE_RATE_MEAN_PERMILLE / 1000.0
    hits = np.zeros(4)
    ones = np.ones((1, n_windows))
    for k in range(n_sets):
        rng = rng_for("selfcheck_coverage", n_windows, k)
        lam = rng.gamma(shape, mean / shape, n_windows)
        A = rng.poisson(lam[:, None, None], (n_windows, layers, tokens))
        st = sequence_stats(A)
        w = resample_weights(
            bootstrap_indices(n_windows, COVERAGE_REPS, ("selfcheck_coverage", k), 1), n_windows
        )
        point, reps = pooled(st, ones, C.CHI_EPS), pooled(st, w, C.CHI_EPS)
        se, se_reps = lattice_se(st, ones, C.CHI_EPS), lattice_se(st, w, C.CHI_EPS)
        for j, (name, truth) in enumerate(((B_TOT, b_true), ("chi", chi_true))):
            p, r = getattr(point, name)[0], getattr(reps, name)
            low, high = studentized_ci(
                p, getattr(se, name)[0], r, getattr(se_reps, name), PCT, n_windows
            )
            hits[j] += low <= truth <= high
            low, high = percentile_ci(r, PCT)
            hits[2 + j] += low <= truth <= high
    f = hits / n_sets
    return Coverage(n_windows, n_sets, f[0], f[1], f[2], f[3])


def shipped_window_counts() -> list[int]:
    """The window counts of the shipped profiles' raster slices, distinct, ascending."""
    counts = {C.N_WINDOWS_A_RASTERS}
    for name in vars(CANON.PROFILE):
        profile = getattr(CANON.PROFILE, name)
        if not name.startswith("_") and hasattr(profile, "N_WINDOWS_A_RASTERS"):
            counts.add(profile.N_WINDOWS_A_RASTERS)
    return sorted(counts)


def coverage_lines(full: bool) -> Iterator[Line]:
    n_sets = C.SELFCHECK_COVERAGE_SETS_FULL if full else C.SELFCHECK_COVERAGE_SETS
    for n in shipped_window_counts():
        cov = coverage(n, n_sets)
        for name, got, pct, target in (
            (B_TOT, cov.b_tot, cov.b_tot_percentile, C.SELFCHECK_COVERAGE_B_TOT_MIN),
            ("chi", cov.chi, cov.chi_percentile, C.SELFCHECK_COVERAGE_CHI_MIN),
        ):
            # Monte Carlo standard error of the coverage fraction over n_sets sets.
            mc_se = math.sqrt(max(got * (1.0 - got), 0.0) / n_sets)
            yield Line(
                "coverage",
                f"{name} N={n} {n_sets} sets",
                f"studentized {got:.3f} +- {mc_se:.3f} MC (pct {pct:.3f})",
                f">= {target:g} of nominal 0.95",
                bool(got >= target),
            )


def selfcheck(full: bool) -> list[Line]:
    """Every study, printing each line as it is made."""
    lines = []
    for study in (percolation, branching, coverage_lines):
        for line in study(full):
            print(line.text(), flush=True)
            lines.append(line)
    return lines
