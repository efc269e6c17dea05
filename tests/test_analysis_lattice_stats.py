"""Pooled b and chi, and their bootstrap, against branching() and direct loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices, percentile_ci, resample_weights
from critspec.analysis.lattice_stats import pooled, sequence_stats
from critspec.events.branching import branching

EPS = 1e-7
SEED = 12345


def test_design_toy_gives_one_third_each() -> None:
    A = np.zeros((1, 3, 4), dtype=np.uint16)
    A[0, 1, 1] = A[0, 1, 2] = A[0, 2, 2] = 1
    est = pooled(sequence_stats(A), np.ones((1, 1)), EPS)
    assert est.b_time[0] == pytest.approx(1 / 3) and est.b_depth[0] == pytest.approx(1 / 3)
    assert est.b_tot[0] == pytest.approx(2 / 3)


def test_point_estimate_equals_branching_and_numpy_chi() -> None:
    rng = np.random.default_rng(0)
    A = rng.poisson(0.4, size=(9, 5, 30)).astype(np.uint16)
    est = pooled(sequence_stats(A), np.ones((1, 9)), EPS)
    ref = branching(A > 0)
    assert est.b_time[0] == pytest.approx(ref.b_time, rel=1e-14)
    assert est.b_depth[0] == pytest.approx(ref.b_depth, rel=1e-14)
    y = A.sum(axis=(1, 2)).astype(float)
    assert est.chi[0] == pytest.approx(np.var(y) / (np.mean(y) + EPS), rel=1e-12)


def test_empty_lattice_gives_nan_b() -> None:
    est = pooled(sequence_stats(np.zeros((2, 2, 3), np.uint16)), np.ones((1, 2)), EPS)
    assert np.isnan(est.b_tot[0]) and est.chi[0] == 0.0


def test_resamples_equal_a_direct_loop() -> None:
    rng = np.random.default_rng(1)
    A = rng.poisson(0.5, size=(6, 4, 20)).astype(np.uint16)
    idx = bootstrap_indices(6, 25, ("sd", 0.01, 0.75), SEED)
    est = pooled(sequence_stats(A), resample_weights(idx, 6), EPS)
    for r in range(25):
        ref = branching(A[idx[r]] > 0)
        y = A[idx[r]].sum(axis=(1, 2)).astype(float)
        assert est.b_time[r] == pytest.approx(ref.b_time, rel=1e-12)
        assert est.b_tot[r] == pytest.approx(ref.b_tot, rel=1e-12)
        assert est.chi[r] == pytest.approx(np.var(y) / (np.mean(y) + EPS), rel=1e-10)


def test_percentile_ci_ignores_nan_replicates() -> None:
    samples = np.array([[1.0, np.nan], [2.0, np.nan], [np.nan, np.nan], [4.0, np.nan]])
    low, high = percentile_ci(samples, (25.0, 75.0))
    assert low[0] == np.percentile([1.0, 2.0, 4.0], 25.0)
    assert high[0] == np.percentile([1.0, 2.0, 4.0], 75.0)
    assert np.isnan(low[1]) and np.isnan(high[1])


def test_indices_depend_on_the_semantic_keys_only() -> None:
    a = bootstrap_indices(10, 7, ("sd", 0.002, 0.75), SEED)
    assert np.array_equal(a, bootstrap_indices(10, 7, ("sd", np.float64(0.002), 0.75), SEED))
    assert not np.array_equal(a, bootstrap_indices(10, 7, ("sd", 0.002, 0.77), SEED))
    assert not np.array_equal(a, bootstrap_indices(10, 7, ("sd", 0.002, 0.75), SEED + 1))
    assert a.dtype == np.int64 and a.shape == (7, 10) and a.min() >= 0 and a.max() < 10
    w = resample_weights(a, 10)
    assert (w.sum(axis=1) == 10).all()
    assert w[3].tolist() == np.bincount(a[3], minlength=10).tolist()


def test_linearized_se_and_studentized_ci_by_explicit_residuals() -> None:
    """SEs of b_tot, chi and a paired b_tot difference against per-window influence
    values computed window by window on each explicit resample; the bootstrap-t
    interval against its definition."""
    from acceptance.checks.phase5 import b_tot_and_se, chi_and_se, delta_and_se
    from critspec.analysis.bootstrap import studentized_ci
    from critspec.analysis.lattice_stats import lattice_se, ratio_diff_se

    rng = np.random.default_rng(8)
    A = rng.poisson(rng.gamma(2.0, 0.2, (9, 1, 1)), size=(9, 3, 20))
    B = rng.permuted(A, axis=2)
    idx = bootstrap_indices(9, 12, ("se",), SEED)
    w = resample_weights(idx, 9)
    st, st_b = sequence_stats(A), sequence_stats(B)
    se = lattice_se(st, w, CANON.CONST.CHI_EPS)
    pairs = (st.n_time_pairs + st.n_depth_pairs).astype(float)
    pairs_b = (st_b.n_time_pairs + st_b.n_depth_pairs).astype(float)
    occ, occ_b = st.n_occupied.astype(float), st_b.n_occupied.astype(float)
    diff_se = ratio_diff_se(pairs, occ, pairs_b, occ_b, w)
    for r in range(12):
        X = A[idx[r]] > 0
        assert se.b_tot[r] == pytest.approx(b_tot_and_se(X)[1], rel=3e-9)
        assert se.chi[r] == pytest.approx(chi_and_se(A[idx[r]], CANON.CONST.CHI_EPS)[1], rel=3e-9)
        assert diff_se[r] == pytest.approx(delta_and_se(X, B[idx[r]] > 0)[1], rel=3e-9)
    reps = pooled(st, w, CANON.CONST.CHI_EPS).b_tot
    point, se0 = b_tot_and_se(A > 0)
    t = (reps - point) / se.b_tot
    lo_q, hi_q = CANON.CONST.BOOTSTRAP_CI_PERCENTILES
    low, high = studentized_ci(point, se0, reps, se.b_tot, (lo_q, hi_q), 9)
    # The small-sample levels by hand for 9 windows (spec/12 section 3):
    # 100 Phi(sqrt(9/8) t_8(0.025)), t_8(0.025) = -2.306004 from a t table: Phi(-2.44589)
    # = 0.7225 % (and 99.2775 % by symmetry).
    assert lo_q / 100.0 == pytest.approx(0.025) and hi_q == 100.0 - lo_q  # the table's level
    lv = 50.0 * math.erfc(np.sqrt(9.0 / 8.0) * 2.306004135 / math.sqrt(2.0))
    assert lv == pytest.approx(0.7225, abs=1e-4)
    assert low == pytest.approx(point - np.percentile(t, 100.0 - lv) * se0)
    assert high == pytest.approx(point - np.percentile(t, lv) * se0)


LO, HI = CANON.CONST.BOOTSTRAP_CI_PERCENTILES


def test_small_sample_percentiles_by_hand() -> None:
    """spec/12 section 3: level p -> 100 Phi(sqrt(n/(n-1)) t_{n-1}(p/100)); t quantiles from
    a t table (t_15(0.975) = 2.131450, t_127(0.975) = 1.978819), Phi by erfc."""
    from critspec.analysis.bootstrap import small_sample_percentiles

    assert LO / 100.0 == pytest.approx(0.025) and HI == 100.0 - LO  # the t table's level

    def phi(z: float) -> float:
        return 0.5 * math.erfc(-z / math.sqrt(2.0))

    for n, t975 in ((16, 2.131450), (128, 1.978819)):
        want = 100.0 * phi(-math.sqrt(n / (n - 1.0)) * t975)
        got = small_sample_percentiles((LO, 50.0, HI), n)
        assert got == pytest.approx([want, 50.0, 100.0 - want], abs=3e-5)
    assert small_sample_percentiles((LO, HI), 16)[0] == pytest.approx(1.3856, abs=1e-4)
    # The expansion vanishes as n grows: the plain levels.
    assert small_sample_percentiles((LO, HI), 10**7) == pytest.approx([LO, HI], abs=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        small_sample_percentiles((LO, HI), 1)
