"""Exact tail quantile and the streaming top-K buffer against a full sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from critspec.errors import CheckFailed
from critspec.events.lattice import lattice_from_positions
from critspec.events.tail_quantile import (
    StreamingTopK,
    TopK,
    event_positions,
    exact_tail_tau,
    k_for_rate,
    match_rate,
)


def test_k_for_rate_rounds_half_up() -> None:
    assert k_for_rate(0.25, 10) == 3
    assert k_for_rate(0.24, 10) == 2
    assert k_for_rate(0.0, 10) == 0


def test_exact_tail_tau_hand_examples() -> None:
    v = np.array([5.0, 4.0, 3.0, 2.0, 1.0], dtype=np.float32)
    assert exact_tail_tau(v, 0) == 5.0
    assert exact_tail_tau(v, 2) == 3.5
    assert exact_tail_tau(v, 4) == 1.5
    ties = np.array([3.0, 3.0, 3.0, 1.0], dtype=np.float32)
    assert exact_tail_tau(ties, 2) == 3.0
    with pytest.raises(CheckFailed, match="k \\+ 1"):
        exact_tail_tau(v, 5)


def test_tau_is_a_float64_midpoint() -> None:
    a, b = np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))
    tau = exact_tail_tau(np.array([b, a], dtype=np.float32), 1)
    assert float(a) < tau < float(b)


def test_match_rate_counts_strictly_above_tau() -> None:
    top = TopK(values=np.array([3.0, 3.0, 3.0, 1.0], np.float32), positions=np.arange(4), n=20)
    m = match_rate(top, 0.1)  # k = 2, tau = 3 (tie), nothing is strictly above
    assert (m.k, m.tau, m.n_above) == (2, 3.0, 0)
    assert m.achieved == 0.0 and m.abs_err == pytest.approx(0.1)
    top = TopK(values=np.array([9.0, 7.0, 5.0, 1.0], np.float32), positions=np.arange(4), n=20)
    m = match_rate(top, 0.1)
    assert (m.k, m.tau, m.n_above, m.achieved) == (2, 6.0, 2, 0.1)


def _full_sort_top(values: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    pos = np.arange(values.size)
    order = np.lexsort((pos, -values))[:K]
    return values[order], pos[order]


def _data(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "levels":  # three values only: every floor guess lands on a tie
        return rng.integers(0, 3, size=shape).astype(np.float32)
    if kind == "rounded":  # many ties, including at the K-th value
        return np.round(rng.normal(size=shape), 1).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("kind", ["levels", "rounded", "continuous"])
@pytest.mark.parametrize("K", [1, 7, 64, 500, 10_000])
def test_streaming_topk_equals_full_sort(kind: str, K: int) -> None:
    rng = np.random.default_rng(K)
    n_rows, seq_len, d_ff = 9, 5, 8
    data = _data(kind, rng, (2, n_rows, seq_len, d_ff))
    top = StreamingTopK(2, [K, K + 3], seq_len * d_ff)
    for start, stop in ((0, 2), (2, 3), (3, 7), (7, 9)):
        for layer in range(2):
            top.update(layer, torch.from_numpy(data[layer, start:stop]), start)
    for layer, found in enumerate(top.finalize()):
        assert np.all(np.diff(found.positions) > 0)
        got = found.sorted_desc()
        want_v, want_p = _full_sort_top(data[layer].reshape(-1), top.K[layer])
        assert got.n == data[layer].size
        np.testing.assert_array_equal(got.values, want_v)
        np.testing.assert_array_equal(got.positions, want_p)


@pytest.mark.parametrize("kind", ["levels", "rounded", "continuous"])
def test_streaming_topk_with_sampled_floors_equals_full_sort(kind: str) -> None:
    # Batches larger than the floor-guessing sample, so the sample is strided.
    rng = np.random.default_rng(11)
    n_rows, row_size, K = 12, 5000, 700
    data = _data(kind, rng, (n_rows, row_size))
    top = StreamingTopK(1, K, row_size)
    for start in range(0, n_rows, 5):
        top.update(0, torch.from_numpy(data[start : start + 5]), start)
    got = top.finalize()[0].sorted_desc()
    want_v, want_p = _full_sort_top(data.reshape(-1), K)
    np.testing.assert_array_equal(got.values, want_v)
    np.testing.assert_array_equal(got.positions, want_p)


def test_streaming_topk_rejects_out_of_order_rows() -> None:
    top = StreamingTopK(1, 4, 2)
    top.update(0, torch.ones(2, 2), 2)
    with pytest.raises(ValueError, match="ascending row order"):
        top.update(0, torch.ones(1, 2), 0)


def test_buffer_rate_match_and_lattice_equal_a_direct_threshold() -> None:
    rng = np.random.default_rng(5)
    n_windows, seq_len, d_ff = 6, 7, 11
    v = rng.standard_normal((n_windows, seq_len, d_ff)).astype(np.float32)
    n = v.size
    r_star = 0.03
    k = k_for_rate(r_star, n)
    top = StreamingTopK(1, k + 1, seq_len * d_ff)
    for start in range(0, n_windows, 4):
        top.update(0, torch.from_numpy(v[start : start + 4]), start)
    found = top.finalize()[0]
    m = match_rate(found, r_star)
    desc = np.sort(v.reshape(-1).astype(np.float64))[::-1]
    assert m.tau == (desc[k - 1] + desc[k]) / 2
    spiking = v.astype(np.float64) > m.tau
    assert m.n_above == spiking.sum() == k
    assert m.achieved == k / n
    A = lattice_from_positions([event_positions(found, m.tau)], n_windows, seq_len, d_ff)
    np.testing.assert_array_equal(A[:, 0, :], spiking.sum(axis=2))
