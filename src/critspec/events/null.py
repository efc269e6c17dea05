"""Within-layer time-permutation null (DESIGN §4 Phase 2).

Each row A[n, l, :] is permuted along t with a PRNG seeded from the caller's keys
(null id, spike definition, target rate, gain) plus (n, l), so the null depends
on nothing but those keys. The row's generator is SplitMix64, a counter-based
generator: its seed is derive_seed(keys, n, l) and its t-th output is the sort key
of token t; the permutation is the stable argsort of those keys. Counter-based
streams let every row of a lattice be drawn in one vectorized step instead of
constructing N·L generator objects. The permutation preserves each row's multiset
of counts; the sorted-row equality is checked anyway because the study's claims
rest on it.
"""

from __future__ import annotations

import numpy as np

from critspec.errors import CheckFailed
from critspec.seeding import derive_seed


def _plain(key: object) -> object:
    # numpy scalars repr differently from Python ones (np.float64(0.9) vs 0.9), which
    # would change the derived seed; seeds must depend on the key's value only.
    return key.item() if isinstance(key, np.generic) else key


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64_stream(seeds: np.ndarray, length: int) -> np.ndarray:
    """Outputs 1..length of SplitMix64 for every seed: uint64 [*seeds.shape, length]."""
    counter = np.arange(1, length + 1, dtype=np.uint64)
    z = seeds[..., None] + counter * _GAMMA  # uint64 arithmetic wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def time_permute(A: np.ndarray, keys: tuple) -> np.ndarray:
    """A with every (n, l) row permuted along t; raises CheckFailed if a row's counts change."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    n_windows, n_layers, seq_len = A.shape
    base = tuple(_plain(k) for k in keys)
    seeds = np.array(
        [[derive_seed(*base, n, layer) for layer in range(n_layers)] for n in range(n_windows)],
        dtype=np.uint64,
    )
    perms = np.argsort(splitmix64_stream(seeds, seq_len), axis=2, kind="stable")
    A_perm = np.take_along_axis(A, perms, axis=2)
    same = (np.sort(A, axis=2) == np.sort(A_perm, axis=2)).all(axis=2)
    if not same.all():
        n, layer = (int(i) for i in np.argwhere(~same)[0])
        raise CheckFailed(
            f"time permutation changed the counts of row (n={n}, l={layer}) for keys {base}: "
            "the null is invalid; this is a bug, report it"
        )
    return A_perm
