"""Moments, standardization and rate targets against two-pass numpy and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from canon import CANON
from critspec.errors import CheckFailed, ConfigError
from critspec.events.moments import MomentAccumulator
from critspec.events.rates import RateCounter, rate_targets
from critspec.events.spikes import count_sigma_clamped, spike_values, standardize, z_region
from critspec.events.tail_quantile import indices_outside

POS = CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS
ABS = CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS


def test_moments_match_two_pass_numpy_over_uneven_batches() -> None:
    rng = np.random.default_rng(7)
    n_layers, d_ff = 3, 5
    data = [rng.normal(3.0 + layer, 0.5 + layer, size=(11, 4, d_ff)) for layer in range(n_layers)]
    acc = MomentAccumulator(n_layers, d_ff)
    for start, stop in ((0, 1), (1, 5), (5, 11)):
        for layer in range(n_layers):
            acc.update(layer, torch.tensor(data[layer][start:stop], dtype=torch.float32))
    m = acc.finalize()
    flat = np.stack([d.astype(np.float32).astype(np.float64).reshape(-1, d_ff) for d in data])
    assert m.count == 44
    assert m.mu.dtype == np.float32 and m.sigma.dtype == np.float32
    np.testing.assert_allclose(m.mu, flat.mean(axis=1), rtol=2e-7)
    np.testing.assert_allclose(m.sigma, flat.std(axis=1), rtol=2e-7)


def test_moments_are_deterministic_for_a_fixed_batch_order() -> None:
    u = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(3))
    runs = []
    for _ in range(2):
        acc = MomentAccumulator(1, 4)
        acc.update(0, u[:2])
        acc.update(0, u[2:])
        runs.append(acc.finalize())
    assert np.array_equal(runs[0].mu, runs[1].mu)
    assert np.array_equal(runs[0].sigma, runs[1].sigma)


def test_non_finite_u_fails_naming_the_layer() -> None:
    acc = MomentAccumulator(3, 2)
    acc.update(0, torch.ones(2, 2))
    with pytest.raises(CheckFailed, match="layer 2"):
        acc.update(2, torch.tensor([[1.0, float("nan")]]))


def test_standardize_and_spike_values() -> None:
    u = torch.tensor([[1.0, -3.0], [5.0, 0.0]])
    mu = np.array([1.0, 1.0], dtype=np.float32)
    sigma = np.array([2.0, 4.0], dtype=np.float32)
    z = standardize(u, mu, sigma, 0.0)
    assert torch.equal(z, torch.tensor([[0.0, -1.0], [2.0, -0.25]]))
    assert torch.equal(spike_values(z, POS), z)
    assert torch.equal(spike_values(z, ABS), z.abs())
    with pytest.raises(ConfigError, match="unknown spike definition"):
        spike_values(z, "SPIKE_SOMETHING_ELSE")


def test_count_sigma_clamped_counts_sigma_at_most_eps() -> None:
    eps = CANON.CONST.EPS
    sigma = np.array([0.0, eps, 2 * eps, 1.0], dtype=np.float64)
    assert count_sigma_clamped(sigma, eps) == 2


def test_rate_counter_counts_strictly_above_tau0() -> None:
    tau0 = CANON.CONST.TAU0_BASELINE
    z = torch.tensor([[tau0 + 0.5, -(tau0 + 0.5), tau0, 0.1]])
    counter = RateCounter(2, [POS, ABS], tau0)
    counter.update(0, z)
    counter.update(1, torch.zeros(1, 4))
    counter.update(1, -z)
    r = counter.r_base()
    assert counter.samples_per_layer == [4, 8]
    np.testing.assert_array_equal(r[POS], [1 / 4, 1 / 8])
    np.testing.assert_array_equal(r[ABS], [2 / 4, 2 / 8])


def test_rate_targets_keep_profile_and_mean() -> None:
    r_base = np.array([0.01, 0.03, 0.02, 0.0])
    target = 0.004
    t = rate_targets(r_base, target)
    assert not t.clipped
    assert t.r_star.dtype == np.float64
    rel = abs(t.r_star.mean() - target) / target
    assert rel <= CANON.CONST.R_STAR_MEAN_REL_TOL
    np.testing.assert_allclose(t.r_star / t.r_star[0], r_base / r_base[0])


def test_rate_targets_clip_to_one() -> None:
    t = rate_targets(np.array([0.1, 0.0, 0.0]), 0.5)
    assert t.clipped
    np.testing.assert_array_equal(t.r_star, [1.0, 0.0, 0.0])


def test_zero_baseline_mean_fails_telling_to_lower_tau0() -> None:
    with pytest.raises(CheckFailed, match="lower TAU0"):
        rate_targets(np.zeros(4), 0.01, spike_def_id=POS)


@pytest.mark.parametrize("floor", [-0.5, 0.0, 0.625, 1.75])
@pytest.mark.parametrize("sd", [POS, ABS])
def test_z_region_is_the_spike_region(sd: str, floor: float) -> None:
    z = torch.tensor([-2.0, -1.75, -0.625, -0.5, 0.0, 0.5, 0.625, 1.75, 2.0])
    lower, upper = z_region(sd, floor)
    want = spike_values(z, sd) > floor
    assert torch.equal((z > upper) | (z < lower), want)
    np.testing.assert_array_equal(
        indices_outside(z, lower, upper).numpy(), np.flatnonzero(want.numpy())
    )
