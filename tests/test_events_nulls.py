"""Phase 4 nulls on rasters [C, N, L, T]: marginals, rotations, seeding by semantic keys."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from canon import CANON
from critspec.errors import CheckFailed, ConfigError
from critspec.events.null import (
    check_sorted_rows,
    circular_shift_rasters,
    shuffle_interior_tokens,
    splitmix64_stream,
    time_permute_rasters,
)
from critspec.seeding import derive_seed, derive_seeds

SD = CANON.ENUM.SPIKE_DEF_ID
NULL = CANON.ENUM.NULL_ID
GAINS = CANON.CONST.GAIN_GRID_DEFAULT
KEYS = [(SD.ONE_SIDED_POS, 0.25, GAINS[0]), (SD.TWO_SIDED_ABS, 0.5, GAINS[-1])]
SEQ_ID = np.array([3, 17, 40])
NULLS = {NULL.TIME_PERM: time_permute_rasters, NULL.CIRCULAR_SHIFT: circular_shift_rasters}


def _rasters(seed: int, shape: tuple[int, ...] = (2, 3, 4, 24)) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.5, size=shape).astype(np.uint16)


def _probe(shape: tuple[int, ...] = (2, 3, 4, 24)) -> np.ndarray:
    """Distinct values along t, so the null's rearrangement of each row can be read off."""
    return np.broadcast_to(np.arange(shape[-1], dtype=np.uint16), shape).copy()


@pytest.mark.parametrize("null_id", list(NULLS))
def test_marginals_are_exact(null_id: str) -> None:
    A = _rasters(1)
    out = NULLS[null_id](A, KEYS, SEQ_ID)
    assert out.dtype == A.dtype and out.shape == A.shape
    np.testing.assert_array_equal(np.sort(out, axis=3), np.sort(A, axis=3))
    np.testing.assert_array_equal(out.sum(axis=3), A.sum(axis=3))
    assert not np.array_equal(out, A)


def test_shift_is_a_rotation_by_one_to_t_minus_one() -> None:
    A = _rasters(2)
    T = A.shape[3]
    probe = circular_shift_rasters(_probe(A.shape), KEYS, SEQ_ID)
    shifts = set()
    for idx in np.ndindex(A.shape[:3]):
        # probe row is np.roll(arange(T), s): its first entry is (0 - s) mod T.
        s = int((T - probe[idx][0]) % T)
        assert 1 <= s <= T - 1
        np.testing.assert_array_equal(probe[idx], np.roll(np.arange(T), s))
        shifts.add(s)
    assert len(shifts) > 3  # drawn per row, not one shift for all
    out = circular_shift_rasters(A, KEYS, SEQ_ID)
    for idx in np.ndindex(A.shape[:3]):
        s = int((T - probe[idx][0]) % T)
        np.testing.assert_array_equal(out[idx], np.roll(A[idx], s))


def test_two_tokens_shift_by_one() -> None:
    A = _rasters(3, (1, 2, 2, 2))
    np.testing.assert_array_equal(circular_shift_rasters(A, KEYS[:1], SEQ_ID[:2]), A[..., ::-1])


@pytest.mark.parametrize("null_id", list(NULLS))
def test_seeded_by_the_documented_semantic_keys_only(null_id: str) -> None:
    T = 24
    probe = NULLS[null_id](_probe(), KEYS, SEQ_ID)
    c, n, layer = 1, 2, 3
    sd, r, g = KEYS[c]
    seed = np.array([derive_seed(null_id, sd, r, g, int(SEQ_ID[n]), layer)], dtype=np.uint64)
    stream = splitmix64_stream(seed, T)[0]
    if null_id == NULL.TIME_PERM:
        want = np.argsort(stream, kind="stable")
    else:
        want = np.roll(np.arange(T), 1 + int(stream[0] % np.uint64(T - 1)))
    np.testing.assert_array_equal(probe[c, n, layer], want)


@pytest.mark.parametrize("null_id", list(NULLS))
def test_same_keys_same_null_wherever_the_row_sits(null_id: str) -> None:
    fn = NULLS[null_id]
    A = _rasters(4)
    out = fn(A, KEYS, SEQ_ID)
    # Conditions and sequences in another order (another run, another table order):
    # each (condition, seq_id, layer) row gets the same null.
    c_order, n_order = [1, 0], [2, 0, 1]
    moved = fn(A[c_order][:, n_order], [KEYS[i] for i in c_order], SEQ_ID[n_order])
    np.testing.assert_array_equal(moved, out[c_order][:, n_order])
    # numpy scalars and ints for the same values give the same seeds.
    numpy_keys = [(np.str_(sd), np.float64(r), np.float64(g)) for sd, r, g in KEYS]
    np.testing.assert_array_equal(fn(A, numpy_keys, SEQ_ID.astype(np.int32)), out)
    one = [(KEYS[0][0], KEYS[0][1], 1)]
    np.testing.assert_array_equal(
        fn(A[:1], one, SEQ_ID), fn(A[:1], [(KEYS[0][0], KEYS[0][1], 1.0)], SEQ_ID)
    )
    np.testing.assert_array_equal(fn(A.copy(), KEYS, SEQ_ID), out)


@pytest.mark.parametrize("null_id", list(NULLS))
def test_different_keys_different_null(null_id: str) -> None:
    fn = NULLS[null_id]
    probe = _probe((1, 1, 2, 24))
    sd, r, g = KEYS[0]
    base = fn(probe, [(sd, r, g)], SEQ_ID[:1])
    variants = {
        "spike_def_id": fn(probe, [(SD.TWO_SIDED_ABS, r, g)], SEQ_ID[:1]),
        "target_rate": fn(probe, [(sd, 2 * r, g)], SEQ_ID[:1]),
        "g": fn(probe, [(sd, r, GAINS[1])], SEQ_ID[:1]),
        "seq_id": fn(probe, [(sd, r, g)], SEQ_ID[1:2]),
    }
    for name, other in variants.items():
        assert not np.array_equal(other, base), name
    assert not np.array_equal(base[0, 0, 0], base[0, 0, 1])  # layer is a key too
    other_null = (set(NULLS) - {null_id}).pop()
    assert not np.array_equal(NULLS[other_null](probe, [(sd, r, g)], SEQ_ID[:1]), base)


@settings(max_examples=60, deadline=None)
@given(
    A=hnp.arrays(
        np.uint16,
        hnp.array_shapes(min_dims=4, max_dims=4, min_side=2, max_side=7),
        elements=st.integers(0, 9),
    ),
    rate=st.floats(1e-4, 0.5, allow_nan=False),
    g=st.sampled_from(GAINS),
    first_seq=st.integers(0, 10_000),
    null_id=st.sampled_from(sorted(NULLS)),
)
def test_sorted_rows_are_invariant(
    A: np.ndarray, rate: float, g: float, first_seq: int, null_id: str
) -> None:
    C, N = A.shape[:2]
    keys = [(SD.ONE_SIDED_POS if c % 2 else SD.TWO_SIDED_ABS, rate * (c + 1), g) for c in range(C)]
    seq_id = first_seq + 3 * np.arange(N)
    out = NULLS[null_id](A, keys, seq_id)
    np.testing.assert_array_equal(np.sort(out, axis=-1), np.sort(A, axis=-1))
    check_sorted_rows(A, out, null_id=null_id, cond_keys=keys, seq_id=seq_id)


def test_sorted_row_check_names_condition_sequence_and_layer() -> None:
    A = _rasters(5)
    out = time_permute_rasters(A, KEYS, SEQ_ID)
    bad = out.copy()
    bad[1, 2, 3, 0] += 1
    with pytest.raises(CheckFailed, match=r"condition 1 .*seq_id 40, layer 3"):
        check_sorted_rows(A, bad, null_id=NULL.TIME_PERM, cond_keys=KEYS, seq_id=SEQ_ID)
    with pytest.raises(CheckFailed, match=r"keeps the shape"):
        check_sorted_rows(A, out[:1], null_id=NULL.TIME_PERM, cond_keys=KEYS, seq_id=SEQ_ID)


def test_refused_inputs() -> None:
    A = _rasters(6)
    with pytest.raises(ConfigError, match=r"need 2 condition keys and 3 seq ids"):
        time_permute_rasters(A, KEYS[:1], SEQ_ID)
    with pytest.raises(ConfigError, match=r"repeated window indices"):
        circular_shift_rasters(A, KEYS, np.array([3, 3, 4]))
    with pytest.raises(ConfigError, match=r"needs T >= 2"):
        circular_shift_rasters(A[..., :1], KEYS, SEQ_ID)
    with pytest.raises(ConfigError, match=r"needs T >= 3"):
        shuffle_interior_tokens(np.zeros((2, 2), np.int32), np.array([0, 1]))


def test_token_shuffle_keeps_the_ends_and_permutes_the_interior() -> None:
    N, T = 4, 20
    ids = (np.arange(N * T, dtype=np.int32).reshape(N, T) * 7) % 101
    seq_id = np.array([5, 9, 12, 30])
    out = shuffle_interior_tokens(ids, seq_id)
    assert out.dtype == ids.dtype and out.shape == ids.shape
    np.testing.assert_array_equal(out[:, 0], ids[:, 0])
    np.testing.assert_array_equal(out[:, -1], ids[:, -1])
    np.testing.assert_array_equal(np.sort(out, axis=1), np.sort(ids, axis=1))
    assert (out[:, 1:-1] != ids[:, 1:-1]).any(axis=1).all()
    # Seeded from (TOKEN_SHUFFLE, seq_id) only: the same window shuffles the same way at
    # any position; the same tokens under another seq_id shuffle differently.
    np.testing.assert_array_equal(shuffle_interior_tokens(ids[::-1], seq_id[::-1]), out[::-1])
    seed = np.array([derive_seed(NULL.TOKEN_SHUFFLE, 9)], dtype=np.uint64)
    perm = np.argsort(splitmix64_stream(seed, T - 2)[0], kind="stable")
    np.testing.assert_array_equal(out[1, 1:-1], ids[1, 1:-1][perm])
    same_tokens = np.repeat(ids[:1], 2, axis=0)
    twice = shuffle_interior_tokens(same_tokens, np.array([5, 6]))
    assert not np.array_equal(twice[0], twice[1])


@settings(max_examples=20, deadline=None)
@given(
    prefix=st.tuples(st.text(max_size=6), st.floats(allow_nan=False), st.integers()),
    suffixes=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 99)), max_size=12),
)
def test_batched_seeds_equal_one_by_one(prefix: tuple, suffixes: list[tuple[int, int]]) -> None:
    want = np.array([derive_seed(*prefix, *s) for s in suffixes], dtype=np.uint64)
    assert np.array_equal(derive_seeds(prefix, suffixes), want)


def test_batched_seeds_refuse_an_empty_suffix() -> None:
    with pytest.raises(ValueError, match="non-empty suffix"):
        derive_seeds(("a",), [()])
