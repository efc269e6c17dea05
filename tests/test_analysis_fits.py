"""Power-law, crackling and tail fits on synthetic samples with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import powerlaw
import pytest
from scipy import optimize, special, stats

from canon import CANON
from critspec.analysis.avalanches import Avalanches
from critspec.analysis.bootstrap import bootstrap_indices, resample_weights
from critspec.analysis.crackling import CracklingParams, crackling, gamma_ols
from critspec.analysis.powerlaw_fit import (
    ALPHA_RANGE,
    PARAMETER_RANGES,
    XMIN_RANGE,
    _ks_positions,
    bagged_fit,
    candidates,
    discrete_alpha_mle,
    fit_power_law,
    fit_rows,
    gof_p_value,
    histogram,
    hurwitz_zeta,
    powerlaw_at,
    quiet,
    sample_power_law,
)
from critspec.analysis.tail_fits import tail_fits

REASON = CANON.ENUM.FIT_REASON
TAIL = CANON.ENUM.TAIL_ALTERNATIVE
MIN_TAIL = 50
PCT = tuple(CANON.CONST.BOOTSTRAP_CI_PERCENTILES)


def zipf(a: float, n: int, seed: int) -> np.ndarray:
    return stats.zipf.rvs(a, size=n, random_state=np.random.default_rng(seed))


@pytest.mark.parametrize("a", [1.8, 2.6])
def test_recovers_a_known_exponent(a: float) -> None:
    fit = fit_power_law(zipf(a, 4000, seed=1), MIN_TAIL)
    assert fit.reason is None
    assert fit.alpha == pytest.approx(a, abs=0.08)


def test_vectorized_mle_equals_powerlaw_at_fixed_xmin() -> None:
    x = zipf(2.2, 1500, seed=2)
    rng = np.random.default_rng(3)
    for xmin in (1.0, 3.0, 12.0):
        samples = [x] + [x[rng.integers(0, x.size, x.size)] for _ in range(3)]
        tails = [s[s >= xmin] for s in samples]
        ours = discrete_alpha_mle(
            np.array([t.size for t in tails]), np.array([np.log(t).sum() for t in tails]), xmin
        )
        for value, s in zip(ours, samples, strict=True):
            with quiet():
                ref = powerlaw.Fit(
                    s,
                    discrete=True,
                    xmin=xmin,
                    estimate_discrete=False,
                    verbose=0,
                    parameter_ranges=PARAMETER_RANGES,
                ).power_law.alpha
            assert value == pytest.approx(ref, abs=1e-3)


def test_hurwitz_zeta_equals_scipy() -> None:
    s = np.linspace(1.04, 10.0, 40)[:, None]
    a = np.concatenate([np.arange(1, 40), [99, 100, 1000, 123456]]).astype(float)[None, :]
    assert np.allclose(hurwitz_zeta(s, a), special.zeta(s, a), rtol=2e-8, atol=0)


def naive_fit(
    sample: np.ndarray, min_tail: int, xmin_range: tuple[float, float] = XMIN_RANGE
) -> tuple[float, float]:
    """Clauset's recipe by direct loops with scipy: per candidate the exact discrete MLE
    (bounded scalar minimization) and the KS distance at the same evaluation points."""
    values = np.unique(sample)
    best = (np.inf, np.nan, np.nan)
    for x0 in candidates(values, xmin_range):
        tail = np.sort(sample[sample >= x0])
        if tail.size < min_tail:
            continue
        mean_log = np.log(tail).mean()
        res = optimize.minimize_scalar(
            lambda a, m=mean_log, x=x0: a * m + np.log(special.zeta(a, x)),
            bounds=(ALPHA_RANGE[0] + 2e-6, ALPHA_RANGE[1]),
            method="bounded",
            options={"xatol": 2e-9},
        )
        tv = np.unique(tail)
        pts = tv[_ks_positions(tv.size)]
        emp = np.array([(tail <= v).mean() for v in pts])
        theo = 1 - special.zeta(res.x, pts + 1) / special.zeta(res.x, x0)
        d = np.abs(emp - theo).max()
        if d < best[0]:
            best = (d, res.x, x0)
    return best[1], best[2]


@pytest.mark.parametrize("a", [1.6, 2.3])
def test_xmin_search_equals_a_direct_loop(a: float) -> None:
    x = np.concatenate([zipf(a, 3000, seed=11), np.random.default_rng(2).integers(1, 6, 400)])
    fit = fit_power_law(x, MIN_TAIL)
    alpha, xmin = naive_fit(x.astype(float), MIN_TAIL)
    assert fit.xmin == xmin and fit.alpha == pytest.approx(alpha, abs=1e-4)
    # powerlaw's own MLE at that xmin agrees too.
    assert powerlaw_at(x, fit).power_law.alpha == pytest.approx(fit.alpha, abs=1e-3)


def test_a_bounded_xmin_search_equals_a_direct_loop_over_its_range() -> None:
    """A study may bound the xmin search (bench/percolation_study.py): the candidates are
    the distinct values inside the bounds, and the fit is the direct loop's over them."""
    x = np.concatenate([zipf(2.1, 3000, seed=13), np.random.default_rng(5).integers(1, 9, 600)])
    values, counts = np.unique(x.astype(float), return_counts=True)
    bounds = (6.0, 40.0)
    assert set(candidates(values, bounds)) == {v for v in values if 6 <= v <= 40}
    rows = fit_rows(counts[None, :].astype(float), values, MIN_TAIL, None, bounds)
    alpha, xmin = naive_fit(x.astype(float), MIN_TAIL, bounds)
    assert 6 <= rows.xmin[0] <= 40 and rows.xmin[0] == xmin
    assert rows.alpha[0] == pytest.approx(alpha, abs=1e-4)


def test_each_replicate_rechooses_xmin_as_a_fit_of_its_own_sample() -> None:
    x = np.concatenate([zipf(2.0, 1500, seed=12), np.random.default_rng(3).integers(1, 9, 500)])
    seq = np.arange(x.size) % 30
    idx = bootstrap_indices(30, 6, ("xmin",), 4)
    w = resample_weights(idx, 30)
    hist = histogram(x, seq, 30)
    rows = fit_rows(w @ hist.counts, hist.values, MIN_TAIL)
    for r in range(6):
        sample = np.concatenate([x[seq == n] for n in idx[r]])
        direct = fit_power_law(sample, MIN_TAIL)
        assert rows.xmin[r] == direct.xmin and rows.alpha[r] == pytest.approx(direct.alpha)
    assert np.unique(rows.xmin).size > 1  # xmin is not frozen at the point estimate's


def test_bagged_exponent_is_the_mean_of_fits_of_the_explicit_resamples() -> None:
    x = np.concatenate([zipf(2.0, 1500, seed=12), np.random.default_rng(3).integers(1, 9, 500)])
    seq = np.arange(x.size) % 30
    idx = bootstrap_indices(30, 8, ("bagged",), 5)
    bag = bagged_fit(x, seq, resample_weights(idx, 30), MIN_TAIL)
    direct = [
        fit_power_law(np.concatenate([x[seq == n] for n in idx[r]]), MIN_TAIL) for r in range(8)
    ]
    assert bag.replicates == pytest.approx([d.alpha for d in direct])
    assert bag.alpha == pytest.approx(sum(d.alpha for d in direct) / 8)
    # The whole-sample fit (tail fits, goodness of fit) is the single fit of all of x.
    assert bag.fit == fit_power_law(x, MIN_TAIL)
    assert not bag.at_range_edge
    # A sample too small to fit: NaN, the reason, and every replicate NaN.
    few = bagged_fit(x[: MIN_TAIL - 1], seq[: MIN_TAIL - 1], resample_weights(idx, 30), MIN_TAIL)
    assert few.fit.reason == REASON.TOO_FEW_AVALANCHES
    assert np.isnan(few.alpha) and np.isnan(few.replicates).all()


def test_gof_range_edge_and_upper_cutoff() -> None:
    rng = np.random.default_rng(9)
    pl = fit_power_law(zipf(2.1, 3000, seed=13), MIN_TAIL)
    assert gof_p_value(zipf(2.1, 3000, seed=13), pl, MIN_TAIL, rng, 60) > 0.1
    uniform = rng.integers(1, 201, 4000)
    fit = fit_power_law(uniform, MIN_TAIL)
    assert gof_p_value(uniform, fit, MIN_TAIL, rng, 60) < 0.05
    assert not pl.at_range_edge
    steep = np.concatenate([np.ones(25000), [2, 3]])
    assert fit_power_law(steep, MIN_TAIL).at_range_edge
    # A truncated law: xmax fitted, and powerlaw's MLE on [xmin, xmax] agrees.
    x = sample_power_law(rng, 1.7, 5.0, 400.0, 5000)
    assert x.max() <= 400 and x.min() >= 5
    cut = fit_power_law(x, MIN_TAIL, xmax=400.0)
    assert cut.alpha == pytest.approx(1.7, abs=0.06)
    assert powerlaw_at(x, cut).power_law.alpha == pytest.approx(cut.alpha, abs=2e-3)


def test_too_little_data_is_nan_with_a_reason() -> None:
    assert fit_power_law(np.arange(1, 10), MIN_TAIL).reason == REASON.TOO_FEW_AVALANCHES
    assert fit_power_law(np.full(500, 4), MIN_TAIL).reason == REASON.DEGENERATE_SAMPLE
    fit = fit_power_law(np.full(500, 4), MIN_TAIL)
    assert np.isnan(fit.alpha)
    rows = tail_fits(np.full(500, 4), fit, MIN_TAIL, np.random.default_rng(0), 10)
    assert [r.reason for r in rows] == [REASON.DEGENERATE_SAMPLE] * 2
    assert all(np.isnan(r.gof_p_value) for r in rows)
    assert all(np.isnan(r.loglik_ratio_normalized) for r in rows)


def test_gamma_ols_recovers_a_planted_slope() -> None:
    d = np.arange(3, 20)
    rng = np.random.default_rng(4)
    counts = rng.integers(1, 5, size=(2, d.size)).astype(float)
    sums = counts * 2.0 * d**1.6 * np.exp(rng.normal(0, 0.05, size=(2, d.size)))
    counts[1, ::2] = sums[1, ::2] = 0.0  # absent durations are left out
    slope, n_points = gamma_ols(counts, sums, d, 4)
    for r in range(2):
        keep = counts[r] > 0
        ref = np.polyfit(np.log(d[keep]), np.log(sums[r, keep] / counts[r, keep]), 1)[0]
        assert slope[r] == pytest.approx(ref, rel=1e-10)
        assert slope[r] == pytest.approx(1.6, abs=0.05)
    assert n_points.tolist() == [d.size, d.size // 2]
    assert np.isnan(gamma_ols(counts, sums, d, d.size + 1)[0]).all()


def test_tail_fit_prefers_the_true_distribution() -> None:
    x = zipf(2.0, 3000, seed=5)
    pl = fit_power_law(x, MIN_TAIL)
    rows = tail_fits(x, pl, MIN_TAIL, np.random.default_rng(1), 40)
    by_alt = {r.alternative: r for r in rows}
    assert by_alt[TAIL.EXPONENTIAL].loglik_ratio_normalized > 3
    assert by_alt[TAIL.EXPONENTIAL].p_value < 0.01
    assert rows[0].gof_p_value == rows[1].gof_p_value > 0.1
    # At xmin = 1 (a geometric sample's bulk) the exponential wins clearly.
    geometric = stats.geom.rvs(0.2, size=3000, random_state=np.random.default_rng(6))
    with quiet():
        fixed = powerlaw.Fit(
            geometric,
            discrete=True,
            xmin=1.0,
            estimate_discrete=False,
            verbose=0,
            parameter_ranges=PARAMETER_RANGES,
        )
    geo = dataclasses.replace(pl, alpha=fixed.power_law.alpha, xmin=1.0, n_tail=geometric.size)
    by_alt = {
        r.alternative: r for r in tail_fits(geometric, geo, MIN_TAIL, np.random.default_rng(2), 20)
    }
    assert by_alt[TAIL.EXPONENTIAL].loglik_ratio_normalized < -3
    assert by_alt[TAIL.EXPONENTIAL].p_value < 0.01
    assert by_alt[TAIL.LOGNORMAL].loglik_ratio_normalized < 0


def _avalanches(sizes: np.ndarray, durations: np.ndarray, n_seq: int) -> Avalanches:
    seq = np.arange(sizes.size) % n_seq
    zeros = np.zeros(sizes.size, dtype=np.int64)
    return Avalanches(seq, sizes, durations, zeros + 1, zeros, zeros, zeros.astype(bool))


def test_crackling_relation_and_ci_on_a_planted_case() -> None:
    rng = np.random.default_rng(7)
    durations = zipf(2.0, 6000, seed=8)
    durations = durations[durations <= 60]
    sizes = np.maximum(1, np.round(durations**1.5 * rng.uniform(0.92, 1.08, durations.size)))
    sizes = sizes.astype(np.int64)
    av = _avalanches(sizes, durations.astype(np.int64), 40)
    params = CracklingParams(MIN_TAIL, 3, 64, 8, PCT)
    w = resample_weights(bootstrap_indices(40, 60, ("k",), 1), 40)
    c = crackling(av, w, params)
    assert c.reason is None and c.n_avalanches == sizes.size
    assert c.gamma_fit.value == pytest.approx(1.5, abs=0.03)
    assert c.gamma_fit.ci_low <= c.gamma_fit.value <= c.gamma_fit.ci_high
    assert c.gamma_pred.value == pytest.approx(
        (c.alpha_D.value - 1) / (c.tau_S.value - 1), rel=1e-12
    )
    assert c.dcc.value == pytest.approx(abs(c.gamma_fit.value - c.gamma_pred.value))
    assert c.tau_S.ci_low < c.tau_S.value < c.tau_S.ci_high
    # The exponents are the bagged means of their replicates; the xmin columns are the
    # whole-sample fits' (the tail fits' law).
    for name, values in (("tau_S", sizes), ("alpha_D", durations)):
        reps = c.replicates[name]
        assert getattr(c, name).value == pytest.approx(reps[np.isfinite(reps)].mean(), rel=1e-12)
        assert getattr(c, f"{name}_xmin") == fit_power_law(values, MIN_TAIL).xmin
    assert c.size_fit == fit_power_law(sizes, MIN_TAIL)


def test_crackling_without_avalanches_is_nan_not_a_crash() -> None:
    empty = np.zeros(0, dtype=np.int64)
    w = resample_weights(bootstrap_indices(4, 10, ("k",), 1), 4)
    c = crackling(_avalanches(empty, empty, 4), w, CracklingParams(MIN_TAIL, 3, 64, 8, PCT))
    assert c.reason == REASON.TOO_FEW_AVALANCHES and c.n_avalanches == 0
    assert np.isnan([c.tau_S.value, c.gamma_fit.value, c.dcc.ci_low]).all()
