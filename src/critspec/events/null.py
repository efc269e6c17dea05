"""Null models of the event lattice (spec/10_NULLS.md).

Phase 2's within-layer time permutation: each row A[n, l, :] is permuted along t
with a PRNG seeded from the caller's keys (null id, spike definition, target rate,
gain) plus (n, l), so the null depends on nothing but those keys. The row's
generator is SplitMix64, a counter-based generator: its seed is
derive_seed(keys, n, l) and its t-th output is the sort key of token t; the
permutation is the stable argsort of those keys. Counter-based streams let every
row of a lattice be drawn in one vectorized step instead of constructing N·L
generator objects. The permutation preserves each row's multiset of counts; the
sorted-row equality is checked anyway because the study's claims rest on it.

Phase 4 works on rasters A [C, N, L, T] with the same per-row streams, every row
seeded from (null id, spike definition, target rate, gain, seq_id, layer), seq_id
being the window's index in the dataset pool (not its position n), so a row's null
depends on what it is, not on where it sits or which run made it:
- time permutation: the row's stable argsort of its stream, as above;
- circular shift: the row rotated by s = 1 + (first output mod (T - 1)) in 1..T-1
  (the modulo bias is below T / 2**64);
- input token shuffle: each window's interior tokens (all but the first and last)
  permuted by its stream seeded from (null id, seq_id) only, so every gain and
  condition sees the same shuffled input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from canon import CANON
from critspec.errors import CheckFailed, ConfigError
from critspec.passes.intervention import condition
from critspec.seeding import derive_seed, derive_seeds

CondKey = tuple[str, float, float]
"""The semantic keys of a condition: (spike_def_id, target_rate, g)."""


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


def _permutations(seeds: np.ndarray, length: int) -> np.ndarray:
    """One permutation of range(length) per seed: the stable argsort of its stream."""
    return np.argsort(splitmix64_stream(seeds, length), axis=-1, kind="stable")


def time_permute(A: np.ndarray, keys: tuple) -> np.ndarray:
    """A with every (n, l) row permuted along t; raises CheckFailed if a row's counts change."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    n_windows, n_layers, seq_len = A.shape
    base = tuple(_plain(k) for k in keys)
    pairs = ((n, layer) for n in range(n_windows) for layer in range(n_layers))
    seeds = derive_seeds(base, pairs).reshape(n_windows, n_layers)
    A_perm = np.take_along_axis(A, _permutations(seeds, seq_len), axis=2)
    same = (np.sort(A, axis=2) == np.sort(A_perm, axis=2)).all(axis=2)
    if not same.all():
        n, layer = (int(i) for i in np.argwhere(~same)[0])
        raise CheckFailed(
            f"time permutation changed the counts of row (n={n}, l={layer}) for keys {base}: "
            "the null is invalid; this is a bug, report it"
        )
    return A_perm


def _check_raster_inputs(A: np.ndarray, cond_keys: Sequence[CondKey], seq_id: np.ndarray) -> None:
    if A.ndim != 4:
        raise ValueError(f"rasters must be [C, N, L, T], got shape {A.shape}")
    seq_id = np.asarray(seq_id)
    if len(cond_keys) != A.shape[0] or seq_id.shape != (A.shape[1],):
        raise ConfigError(
            f"rasters of shape {A.shape} need {A.shape[0]} condition keys and {A.shape[1]} "
            f"seq ids, got {len(cond_keys)} and {seq_id.shape}: pass the rasters' own tables"
        )
    if len(np.unique(seq_id)) != len(seq_id):
        raise ConfigError(
            "seq_id has repeated window indices: each sequence must be a distinct window"
        )


def _cond_key(key: CondKey) -> tuple:
    # The condition's seed keys (critspec.passes.intervention, the one place they are
    # derived), normalized so that 1 and 1.0, or np.float64(0.9) and 0.9, seed alike.
    sd, r, g = key
    return condition(sd, r, g).seed_keys()


def raster_row_seeds(
    null_id: str, cond_keys: Sequence[CondKey], seq_id: np.ndarray, n_layers: int
) -> np.ndarray:
    """uint64 [C, N, L]: derive_seed(null_id, sd, r, g, seq_id[n], layer) per row."""
    seqs = [int(s) for s in np.asarray(seq_id)]
    per_cond = [
        derive_seeds(
            (null_id, *_cond_key(k)), ((s, layer) for s in seqs for layer in range(n_layers))
        )
        for k in cond_keys
    ]
    if not per_cond:
        return np.empty((0, len(seqs), n_layers), dtype=np.uint64)
    return np.stack(per_cond).reshape(len(cond_keys), len(seqs), n_layers)


def check_sorted_rows(
    A: np.ndarray,
    A_null: np.ndarray,
    *,
    null_id: str,
    cond_keys: Sequence[CondKey],
    seq_id: np.ndarray,
) -> None:
    """Every row A_null[c, n, l, :] holds the same multiset of counts as A[c, n, l, :]
    (spec/10_NULLS.md, hard check); CheckFailed names the first row that does not."""
    if A_null.shape != A.shape:
        raise CheckFailed(
            f"null {null_id}: rasters of shape {A_null.shape} vs real {A.shape}: "
            "a within-layer null keeps the shape"
        )
    same = (np.sort(A, axis=-1) == np.sort(A_null, axis=-1)).all(axis=-1)
    if not same.all():
        c, n, layer = (int(i) for i in np.argwhere(~same)[0])
        raise CheckFailed(
            f"null {null_id} changed the sorted row of condition {c} {_cond_key(cond_keys[c])}, "
            f"seq_id {int(np.asarray(seq_id)[n])}, layer {layer}: the null rasters are invalid "
            "(corrupted, or not made from these rasters)"
        )


def time_permute_rasters(
    A: np.ndarray, cond_keys: Sequence[CondKey], seq_id: np.ndarray
) -> np.ndarray:
    """A [C, N, L, T] with every row permuted along t, seeded from semantic keys; checked."""
    _check_raster_inputs(A, cond_keys, seq_id)
    null_id = CANON.ENUM.NULL_ID.TIME_PERM
    seeds = raster_row_seeds(null_id, cond_keys, seq_id, A.shape[2])
    out = np.take_along_axis(A, _permutations(seeds, A.shape[3]), axis=-1)
    check_sorted_rows(A, out, null_id=null_id, cond_keys=cond_keys, seq_id=seq_id)
    return out


def circular_shifts(seeds: np.ndarray, seq_len: int) -> np.ndarray:
    """int64 shifts in 1..seq_len-1, one per seed (from the first output of its stream)."""
    if seq_len < 2:
        raise ConfigError(f"a circular shift in 1..T-1 needs T >= 2 tokens, got T = {seq_len}")
    first = splitmix64_stream(seeds, 1)[..., 0]
    return (np.uint64(1) + first % np.uint64(seq_len - 1)).astype(np.int64)


def circular_shift_rasters(
    A: np.ndarray, cond_keys: Sequence[CondKey], seq_id: np.ndarray
) -> np.ndarray:
    """A [C, N, L, T] with every row rotated along t by its own shift s in 1..T-1
    (out[..., t] = A[..., (t - s) mod T], i.e. np.roll by s), seeded from semantic keys."""
    _check_raster_inputs(A, cond_keys, seq_id)
    null_id = CANON.ENUM.NULL_ID.CIRCULAR_SHIFT
    seq_len = A.shape[3]
    shifts = circular_shifts(raster_row_seeds(null_id, cond_keys, seq_id, A.shape[2]), seq_len)
    source = (np.arange(seq_len) - shifts[..., None]) % seq_len
    out = np.take_along_axis(A, source, axis=-1)
    check_sorted_rows(A, out, null_id=null_id, cond_keys=cond_keys, seq_id=seq_id)
    return out


def shuffle_interior_tokens(input_ids: np.ndarray, seq_id: np.ndarray) -> np.ndarray:
    """input_ids [N, T] with each window's tokens 1..T-2 permuted, first and last kept,
    seeded from (TOKEN_SHUFFLE, seq_id[n]) only (the same shuffle at every gain)."""
    input_ids = np.asarray(input_ids)
    seq_id = np.asarray(seq_id)
    if input_ids.ndim != 2 or seq_id.shape != (input_ids.shape[0],):
        raise ConfigError(
            f"token shuffle needs input_ids [N, T] and seq_id [N], got {input_ids.shape} and "
            f"{seq_id.shape}: pass the raster slice's windows and window indices"
        )
    n_windows, seq_len = input_ids.shape
    if seq_len < 3:
        raise ConfigError(
            f"token shuffle permutes the interior tokens and needs T >= 3, got T = {seq_len}"
        )
    null_id = CANON.ENUM.NULL_ID.TOKEN_SHUFFLE
    seeds = np.array([derive_seed(null_id, int(s)) for s in seq_id], dtype=np.uint64)
    out = input_ids.copy()
    out[:, 1:-1] = np.take_along_axis(input_ids[:, 1:-1], _permutations(seeds, seq_len - 2), 1)
    return out


def null_condition_table(null_ids: list[str], conditions: list) -> pd.DataFrame:
    """The null_conditions rows (spec/10_NULLS.md): null_cond_id = position, null by null in
    the given order; `conditions` are objects with cond_id, spike_def_id, target_rate, g."""
    table = pd.DataFrame(
        [
            {
                "null_id": null_id,
                "cond_id": c.cond_id,
                "spike_def_id": c.spike_def_id,
                "target_rate": c.target_rate,
                "g": c.g,
            }
            for null_id in null_ids
            for c in conditions
        ]
    )
    table.insert(0, "null_cond_id", np.arange(len(table), dtype=np.int64))
    return table
