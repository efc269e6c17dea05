"""The shared u scan: the CPU z-buffer path (feed_z) and the bound path accelerators take
(feed_u) give every spike definition exactly the top K of a full sort of v computed by
standardize over the whole layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from canon import CANON
from critspec.events.scan import (
    MaskBuffers,
    ZBuffers,
    candidates,
    candidates_torch,
    feed_u,
    feed_z,
    u_bounds,
)
from critspec.events.spikes import SPIKE_DEF_IDS, spike_values, standardize
from critspec.events.tail_quantile import StreamingTopK

N_ROWS, SEQ_LEN, D_FF, N_LAYERS = 10, 6, 2048, 2
EPS = CANON.CONST.EPS


def _full_sort_top(values: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.arange(values.size)
    order = np.lexsort((pos, -values))[:K]
    return values[order], pos[order]


def _u(kind: str, rng: np.random.Generator) -> np.ndarray:
    shape = (N_LAYERS, N_ROWS, SEQ_LEN, D_FF)
    if kind == "levels":  # three values only: a guessed floor lands on a tie and keeps too
        # few, so the layer-batch is offered whole
        return rng.integers(-1, 2, size=shape).astype(np.float32)
    if kind == "heavy":  # skewed, heavy-tailed like a gated MLP's u
        return (rng.standard_t(3, size=shape) * rng.gamma(2.0, size=shape)).astype(np.float32)
    return np.round(rng.normal(size=shape), 1).astype(np.float32)  # ties at the K-th value


@pytest.mark.parametrize("kind", ["heavy", "rounded", "levels"])
@pytest.mark.parametrize("path", ["z", "u"])
def test_scan_paths_equal_a_full_sort(kind: str, path: str) -> None:
    rng = np.random.default_rng(3)
    u = _u(kind, rng)
    mu = rng.normal(size=(N_LAYERS, D_FF)).astype(np.float32) * 0.1
    sigma = rng.uniform(0.5, 2.0, size=(N_LAYERS, D_FF)).astype(np.float32)
    if kind == "levels":  # one scale for every unit, so z keeps the three levels' ties
        mu, sigma = np.zeros_like(mu), np.ones_like(sigma)
    n_layer = N_ROWS * SEQ_LEN * D_FF
    Ks = {sd: [int(0.004 * n_layer) + 1, int(0.02 * n_layer) + 1] for sd in SPIKE_DEF_IDS}
    tops = {sd: StreamingTopK(N_LAYERS, ks, SEQ_LEN * D_FF) for sd, ks in Ks.items()}
    z_buffers, mask_buffers = ZBuffers(), MaskBuffers()
    mu_t, sigma_t = torch.from_numpy(mu), torch.from_numpy(sigma)
    for start, stop in ((0, 3), (3, 4), (4, 9), (9, 10)):
        for layer in range(N_LAYERS):
            batch = torch.from_numpy(u[layer, start:stop])
            args = (tops, layer, batch, mu_t[layer], sigma_t[layer], EPS, start)
            if path == "z":
                feed_z(*args, z_buffers)
            else:
                feed_u(*args, mask_buffers)
    for sd, top in tops.items():
        for layer, found in enumerate(top.finalize()):
            z = standardize(torch.from_numpy(u[layer]), mu[layer], sigma[layer], EPS)
            v = spike_values(z, sd).numpy().reshape(-1)
            want_v, want_p = _full_sort_top(v, top.K[layer])
            got = found.sorted_desc()
            assert got.n == n_layer
            np.testing.assert_array_equal(got.values, want_v)
            np.testing.assert_array_equal(got.positions, want_p)


@pytest.mark.parametrize("kind", ["heavy", "rounded", "levels"])
@pytest.mark.parametrize("two_sided", [False, True])
def test_accelerator_kernels_find_the_cpu_candidates(kind: str, two_sided: bool) -> None:
    """feed_u on the CPU takes numpy's kernels; accelerators take candidates_torch. Both
    must list the same indices, so the test above speaks for the accelerator path too."""
    rng = np.random.default_rng(5)
    u2 = torch.from_numpy(_u(kind, rng)[0].reshape(-1, D_FF))
    mu = torch.from_numpy(rng.normal(size=D_FF).astype(np.float32) * 0.1)
    scale = torch.from_numpy(rng.uniform(0.5, 2.0, size=D_FF).astype(np.float32))
    lo, hi = u_bounds(mu, scale, -2.0 if two_sided else -np.inf, 1.5)
    want = candidates(u2, lo, hi, MaskBuffers())
    assert want.numel() > 0
    assert torch.equal(candidates_torch(u2, lo, hi), want)
