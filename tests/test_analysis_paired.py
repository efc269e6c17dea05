"""Paired bootstrap of Phase 6 against a direct loop over the same resampling plan."""

from __future__ import annotations

import numpy as np
import pytest

from canon import CANON
from critspec.analysis.bootstrap import bootstrap_indices
from critspec.analysis.paired import (
    interval,
    paired_columns,
    paired_difference,
    ratio_of_sums,
    resampling_plan,
)
from critspec.analysis.window_metrics import (
    B_TOT,
    PERPLEXITY,
    lattice_metrics,
    nll_metrics,
    window_stats,
)
from critspec.events.branching import branching
from critspec.events.null import time_permute

SEED = 4242
KEYS = (CANON.ENUM.DATASET_ROLE.B, CANON.ENUM.SLICE_NAME.B_EVAL)
PCTS = tuple(CANON.CONST.BOOTSTRAP_CI_PERCENTILES)


def test_plan_is_a_function_of_the_keys() -> None:
    a = resampling_plan(7, 30, KEYS, SEED)
    assert np.array_equal(a, resampling_plan(7, 30, KEYS, SEED))
    assert not np.array_equal(a, resampling_plan(7, 30, (*KEYS, 1), SEED))
    assert (a.sum(axis=1) == 7).all()


def test_paired_nll_difference_equals_a_direct_loop() -> None:
    rng = np.random.default_rng(3)
    n, reps = 9, 40
    tokens = rng.integers(50, 70, size=n).astype(float)
    nll_a = rng.uniform(2.0, 3.0, size=n) * tokens  # per-window NLL sums
    nll_b = nll_a + rng.normal(0.1, 0.3, size=n) * tokens
    weights = resampling_plan(n, reps, KEYS, SEED)
    idx = bootstrap_indices(n, reps, KEYS, SEED)
    sa, sb = ratio_of_sums(nll_a, tokens, weights), ratio_of_sums(nll_b, tokens, weights)
    point_a = nll_a.sum() / tokens.sum()
    point_b = nll_b.sum() / tokens.sum()
    got = paired_difference(point_a, point_b, sa, sb, PCTS)
    loop = []
    for r in range(reps):
        pick = idx[r]  # the windows resample r drew, repeats included
        ma = sum(nll_a[i] for i in pick) / sum(tokens[i] for i in pick)
        mb = sum(nll_b[i] for i in pick) / sum(tokens[i] for i in pick)
        loop.append(mb - ma)
    assert got.value == pytest.approx(point_b - point_a, rel=1e-13)
    assert got.ci_low == pytest.approx(np.percentile(loop, PCTS[0]), rel=1e-12)
    assert got.ci_high == pytest.approx(np.percentile(loop, PCTS[1]), rel=1e-12)


def test_paired_interval_is_narrower_than_unpaired_for_correlated_items() -> None:
    rng = np.random.default_rng(5)
    n = 40
    base = rng.normal(0, 5, size=n)
    a, b = base, base + 0.5 + rng.normal(0, 0.1, size=n)
    ones = np.ones(n)
    weights = resampling_plan(n, 200, KEYS, SEED)
    sa, sb = ratio_of_sums(a, ones, weights), ratio_of_sums(b, ones, weights)
    paired = paired_difference(a.mean(), b.mean(), sa, sb, PCTS)
    other = resampling_plan(n, 200, (*KEYS, "other"), SEED)
    unpaired = paired_difference(a.mean(), b.mean(), sa, ratio_of_sums(b, ones, other), PCTS)
    assert paired.ci_high - paired.ci_low < (unpaired.ci_high - unpaired.ci_low) / 5
    assert paired.ci_low < 0.5 < paired.ci_high


def test_accuracy_interval_and_zero_denominator() -> None:
    correct = np.array([1, 0, 1, 1, 0, 1], dtype=float)
    weights = resampling_plan(6, 50, KEYS, SEED)
    samples = ratio_of_sums(correct, np.ones(6), weights)
    idx = bootstrap_indices(6, 50, KEYS, SEED)
    assert np.allclose(samples, correct[idx].mean(axis=1), rtol=0, atol=1e-15)
    iv = interval(correct.mean(), samples, PCTS)
    assert iv.ci_low <= iv.value <= iv.ci_high
    assert np.isnan(ratio_of_sums(np.ones(2), np.zeros(2), np.ones((1, 2)))[0])


def test_unpaired_shapes_refused() -> None:
    with pytest.raises(ValueError, match="same resampling plan"):
        paired_difference(0.0, 1.0, np.zeros(3), np.zeros(4), PCTS)


def test_window_metrics_equal_branching_and_a_loop_over_the_plan() -> None:
    rng = np.random.default_rng(11)
    A = rng.poisson(0.5, size=(7, 4, 16)).astype(np.uint16)
    A_perm = time_permute(A, ("test", 1))
    ws = window_stats(A, A_perm)
    point = lattice_metrics(ws, np.ones((1, 7)), CANON.CONST.CHI_EPS)
    real, perm = branching(A > 0), branching(A_perm > 0)
    assert point[B_TOT][0] == pytest.approx(real.b_tot, rel=1e-14)
    assert point["delta_b_tot_perm"][0] == pytest.approx(real.b_tot - perm.b_tot, rel=1e-12)
    weights = resampling_plan(7, 20, KEYS, SEED)
    idx = bootstrap_indices(7, 20, KEYS, SEED)
    samples = lattice_metrics(ws, weights, CANON.CONST.CHI_EPS)
    for r in range(20):
        ref = branching(A[idx[r]] > 0).b_tot - branching(A_perm[idx[r]] > 0).b_tot
        assert samples["delta_b_tot_perm"][r] == pytest.approx(ref, rel=1e-12)
    nll = nll_metrics(np.array([6.0, 15.0]), np.array([3, 3]), np.ones((1, 2)))
    assert nll["nll_mean"][0] == 3.5 and nll[PERPLEXITY][0] == pytest.approx(np.exp(3.5))


def test_paired_columns_against_itself_are_zero() -> None:
    samples = np.linspace(0.0, 1.0, 11)
    cols = paired_columns({"m": (0.5, samples)}, {"m": (0.5, samples)}, "vs_x", PCTS)
    assert cols["m_vs_x"] == cols["m_vs_x_ci_low"] == cols["m_vs_x_ci_high"] == 0.0
    assert cols["m_ci_low"] == np.percentile(samples, PCTS[0])
