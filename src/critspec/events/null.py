"""Within-layer time-permutation null (DESIGN §4 Phase 2).

Each row A[n, l, :] is permuted along t with a PRNG seeded from the caller's keys
(null id, spike definition, target rate, gain) plus (n, l), so the null depends
on nothing but those keys. The permutation preserves each row's multiset of
counts; the sorted-row equality is checked anyway because the study's claims rest
on it.
"""

from __future__ import annotations

import numpy as np

from critspec.errors import CheckFailed
from critspec.seeding import rng_for


def _plain(key: object) -> object:
    # numpy scalars repr differently from Python ones (np.float64(0.9) vs 0.9), which
    # would change the derived seed; seeds must depend on the key's value only.
    return key.item() if isinstance(key, np.generic) else key


def time_permute(A: np.ndarray, keys: tuple) -> np.ndarray:
    """A with every (n, l) row permuted along t; raises CheckFailed if a row's counts change."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    n_windows, n_layers, seq_len = A.shape
    base = tuple(_plain(k) for k in keys)
    perms = np.empty(A.shape, dtype=np.intp)
    for n in range(n_windows):
        for layer in range(n_layers):
            perms[n, layer] = rng_for(*base, n, layer).permutation(seq_len)
    A_perm = np.take_along_axis(A, perms, axis=2)
    same = (np.sort(A, axis=2) == np.sort(A_perm, axis=2)).all(axis=2)
    if not same.all():
        n, layer = (int(i) for i in np.argwhere(~same)[0])
        raise CheckFailed(
            f"time permutation changed the counts of row (n={n}, l={layer}) for keys {base}: "
            "the null is invalid; this is a bug, report it"
        )
    return A_perm
