"""Known-answer tests of Phase 5's statistics at small sizes (spec/12_STATISTICS_AND_BOOTSTRAP.md,
section 5); `critspec selfcheck --full` runs them at the paper's sizes."""

from __future__ import annotations

import numpy as np
import pytest

from canon import CANON
from critspec.analysis.avalanches import avalanches
from critspec.analysis.bootstrap import bootstrap_indices, resample_weights
from critspec.analysis.multistep import branching_ratio_mr
from critspec.analysis.powerlaw_fit import POWER_LAW, bagged_fit, fit_power_law, powerlaw_at, quiet
from critspec.analysis.selfcheck import (
    COVERAGE_SHAPE,
    TAU_2D,
    coverage,
    coverage_truth,
    driven_branching,
    shipped_window_counts,
)
from critspec.cli import main

C = CANON.CONST
ADJ = CANON.ENUM.ADJACENCY
PCT = tuple(C.BOOTSTRAP_CI_PERCENTILES)


def lattices(p: float, side: int, n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, side, side)) < p).astype(np.uint8)


@pytest.mark.parametrize(
    ("adjacency", "p_c"),
    [(ADJ.ADJ_4N, C.SELFCHECK_PERC_PC_4N), (ADJ.ADJ_8N, C.SELFCHECK_PERC_PC_8N)],
)
def test_percolation_at_pc_gives_tau_187_over_91_without_boundary_clusters(adjacency, p_c) -> None:
    X = lattices(p_c, 512, 16, seed=3)
    av = avalanches(X, adjacency, X[0].size, 0, np.arange(16))
    w = resample_weights(bootstrap_indices(16, C.BOOTSTRAP_REPS, ("perc", adjacency), 2), 16)
    inside = ~av.boundary
    # Phase 5's estimator: the bagged fit over a lattice bootstrap.
    interior = bagged_fit(av.size[inside], av.seq_index[inside], w, C.SELFCHECK_PERC_MIN_TAIL)
    assert interior.alpha == pytest.approx(TAU_2D, abs=0.07)
    # Boundary clusters follow a flatter law: keeping them lowers the exponent.
    every = bagged_fit(av.size, av.seq_index, w, C.SELFCHECK_PERC_MIN_TAIL)
    assert every.alpha < interior.alpha


def test_percolation_below_pc_does_not_prefer_the_power_law() -> None:
    X = lattices(C.SELFCHECK_PERC_P_BELOW, 384, 12, seed=4)
    av = avalanches(X, ADJ.ADJ_4N, X[0].size, 0, np.arange(12))
    sizes = av.size[~av.boundary]
    fit = fit_power_law(sizes, C.SELFCHECK_PERC_MIN_TAIL)
    with quiet():
        ratio, p = powerlaw_at(sizes, fit).distribution_compare(
            POWER_LAW, CANON.ENUM.TAIL_ALTERNATIVE.EXPONENTIAL, normalized_ratio=True
        )
    assert not (ratio > 0 and p < C.SELFCHECK_LR_SIGNIFICANCE_PERCENT / 100.0)


@pytest.mark.parametrize("m", list(C.SELFCHECK_BP_M))
def test_driven_branching_process_m_with_and_without_subsampling(m: float) -> None:
    """Mean over 4 data sets of the study's shape within twice the tolerance (the spread
    of one set at m = 0.8 subsampled is 0.026; `selfcheck --full` averages 20 sets at the
    tolerance itself); the CIs cover m."""
    for subsample in (False, True):
        est, covered = [], 0
        for k in range(4):
            rng = np.random.default_rng(100 + k)
            A = driven_branching(
                rng, m, C.SELFCHECK_BP_TRIALS, C.SELFCHECK_BP_TOKENS, 6, C.SELFCHECK_BP_ACTIVITY
            )
            if subsample:
                A = rng.binomial(A, C.SELFCHECK_BP_SUBSAMPLE_PERCENT / 100.0)
            w = resample_weights(bootstrap_indices(A.shape[0], 200, ("t", k), 1), A.shape[0])
            fit = branching_ratio_mr(A, w, PCT)
            est.append(fit.m)
            covered += fit.ci_low <= m <= fit.ci_high
        assert abs(np.mean(est) - m) <= 2 * C.SELFCHECK_BP_M_TOL
        assert covered >= 3


def test_coverage_truth_matches_a_direct_monte_carlo() -> None:
    layers, tokens = COVERAGE_SHAPE
    b_true, chi_true = coverage_truth(layers, tokens)
    rng = np.random.default_rng(5)
    shape, mean = C.SELFCHECK_COVERAGE_RATE_SHAPE, C.SELFCHECK_COVERAGE_RATE_MEAN_PERMILLE / 1000.0
    lam = rng.gamma(shape, mean / shape, 4000)
    q = 1 - np.exp(-lam)
    b_mc = ((tokens - 1) / tokens + (layers - 1) / layers) * np.mean(q * q) / np.mean(q)
    y = rng.poisson(lam * layers * tokens)
    assert b_true == pytest.approx(b_mc, rel=0.01)
    assert chi_true == pytest.approx(np.var(y) / np.mean(y), rel=0.1)


def test_coverage_study_runs_at_the_shipped_window_counts() -> None:
    assert C.N_WINDOWS_A_RASTERS in shipped_window_counts()
    cov = coverage(C.N_WINDOWS_A_RASTERS, 8)
    assert cov.n_sets == 8 and 0.5 <= cov.b_tot <= 1.0 and 0.5 <= cov.chi <= 1.0


def test_selfcheck_command_refuses_an_unknown_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main([CANON.CLI.SUBCOMMAND.SELFCHECK, "--fast"])
    assert exc.value.code == 2
