"""Lattice, branching and the time-permutation null on hand-built rasters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canon import CANON
from critspec.events.branching import branching
from critspec.events.lattice import lattice_from_positions
from critspec.events.null import time_permute

KEYS = (CANON.ENUM.NULL_ID.TIME_PERM, CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, 0.25, 0.75)


def test_lattice_counts_units_per_site() -> None:
    n_windows, seq_len, d_ff = 2, 3, 4
    # layer 0: units 0 and 1 at (n=0, t=0); unit 3 at (n=1, t=2). layer 1: unit 1 at (n=0, t=1)
    layer0 = np.array([0, 1, (1 * seq_len + 2) * d_ff + 3])
    layer1 = np.array([1 * d_ff + 1])
    A = lattice_from_positions([layer0, layer1], n_windows, seq_len, d_ff)
    want = np.zeros((2, 2, 3), dtype=np.uint16)
    want[0, 0, 0], want[1, 0, 2], want[0, 1, 1] = 2, 1, 1
    assert A.dtype == np.uint16
    np.testing.assert_array_equal(A, want)


def test_design_toy_raster() -> None:
    X = np.zeros((1, 3, 4), dtype=bool)
    X[0, 1, 1] = X[0, 1, 2] = X[0, 2, 2] = True
    b = branching(X)
    assert b.b_time == b.b_depth == 1 / 3
    assert b.b_tot == 2 / 3
    assert (b.n_occupied, b.n_time_pairs, b.n_depth_pairs) == (3, 1, 1)


def test_pairs_never_cross_windows() -> None:
    X = np.zeros((2, 2, 2), dtype=bool)
    X[0, 1, 1] = True  # last token, last layer of window 0
    X[1, 0, 0] = True  # first token, first layer of window 1
    b = branching(X)
    assert (b.b_time, b.b_depth, b.n_occupied) == (0.0, 0.0, 2)


def test_full_raster_hand_count() -> None:
    b = branching(np.ones((2, 3, 4), dtype=bool))
    # per window: time pairs 3 layers x 3, depth pairs 2 x 4 tokens; 12 sites
    assert b.b_time == 9 / 12 and b.b_depth == 8 / 12


def test_empty_raster_is_nan() -> None:
    b = branching(np.zeros((3, 2, 5), dtype=bool))
    assert math.isnan(b.b_time) and math.isnan(b.b_depth) and math.isnan(b.b_tot)
    assert b.n_occupied == 0


def _raster(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(0.6, size=(4, 3, 16)).astype(np.uint16)


def test_time_permute_preserves_rows_and_is_deterministic() -> None:
    A = _raster(1)
    P = time_permute(A, KEYS)
    assert P.dtype == A.dtype and P.shape == A.shape
    np.testing.assert_array_equal(np.sort(P, axis=2), np.sort(A, axis=2))
    np.testing.assert_array_equal(P, time_permute(A.copy(), KEYS))
    assert not np.array_equal(P, time_permute(A, (*KEYS[:3], 0.5)))


def test_time_permute_depends_only_on_keys() -> None:
    # Distinct values per row reveal the permutation; it must be the same for other data.
    seq_len = 16
    probe = np.broadcast_to(np.arange(seq_len, dtype=np.uint16), (4, 3, seq_len)).copy()
    perm = time_permute(probe, KEYS).astype(np.intp)
    A = _raster(2)
    np.testing.assert_array_equal(time_permute(A, KEYS), np.take_along_axis(A, perm, axis=2))
    assert len({tuple(perm[n, layer]) for n in range(4) for layer in range(3)}) > 1
    numpy_keys = tuple(np.float64(k) if isinstance(k, float) else k for k in KEYS)
    np.testing.assert_array_equal(time_permute(A, numpy_keys), time_permute(A, KEYS))


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 3)])
def test_time_permute_small_shapes(shape: tuple[int, int, int]) -> None:
    A = np.ones(shape, dtype=np.uint16)
    np.testing.assert_array_equal(time_permute(A, KEYS), A)


def _splitmix64_python(seed: int, length: int) -> list[int]:
    """SplitMix64 written out with Python integers (Steele, Lea, Flood 2014)."""
    mask = (1 << 64) - 1
    out, state = [], seed
    for _ in range(length):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


def test_splitmix64_stream_matches_the_scalar_definition() -> None:
    from critspec.events.null import splitmix64_stream

    seeds = np.array([[0, 1], [2**63 + 5, 2**64 - 1]], dtype=np.uint64)
    got = splitmix64_stream(seeds, 6)
    for idx in np.ndindex(seeds.shape):
        assert got[idx].tolist() == _splitmix64_python(int(seeds[idx]), 6)
    assert int(got[0, 0, 0]) == 0xE220A8397B1DCDAF  # the published first output for seed 0
