"""Token windows, sampling and the slice hash (spec/05_DATASETS_SAMPLING_HASHING.md "Datasets and
sampling")."""

from __future__ import annotations

import dataclasses
import hashlib
import struct

import numpy as np
import pytest

from canon import CANON
from critspec.data.tokenizer import build_word_level_tokenizer
from critspec.data.windows import (
    TokenSlice,
    check_disjoint,
    sample_heldout_windows,
    sample_windows,
    slice_sha256,
    tokenize_concat,
)
from critspec.errors import CheckFailed, ConfigError

ROLE = CANON.ENUM.DATASET_ROLE.A
TOK_HASH = "ab" * 32


def _hand_hash(index: list[int], rows: list[list[int]], tokenizer_hash: str) -> str:
    """The documented encoding written out with struct: '<q' index, '<i' per token id."""
    h = hashlib.sha256()
    for i, row in zip(index, rows, strict=True):
        h.update(struct.pack("<q", i))
        h.update(struct.pack(f"<{len(row)}i", *row))
    h.update(tokenizer_hash.encode())
    return h.hexdigest()


def test_all_windows_are_cut_exactly_and_the_tail_is_dropped():
    s = sample_windows(np.arange(23, dtype=np.int64), 5, 4, ROLE, "all")
    assert s.window_index.tolist() == [0, 1, 2, 3]
    assert s.input_ids.tolist() == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
    ]
    assert s.window_index.dtype == np.int64 and s.input_ids.dtype == np.int32


def test_sampled_windows_are_ascending_distinct_and_seeded_by_keys():
    tokens = np.arange(10_000, dtype=np.int64) * 3
    s = sample_windows(tokens, 8, 20, ROLE, "calib")
    idx = s.window_index.tolist()
    assert idx == sorted(set(idx)) and len(idx) == 20
    for i, row in zip(idx, s.input_ids.tolist(), strict=True):
        assert row == [3 * t for t in range(8 * i, 8 * i + 8)]
    again = sample_windows(tokens, 8, 20, ROLE, "calib")
    assert np.array_equal(again.window_index, s.window_index)
    other_slice = sample_windows(tokens, 8, 20, ROLE, "eval")
    other_role = sample_windows(tokens, 8, 20, CANON.ENUM.DATASET_ROLE.B, "calib")
    assert not np.array_equal(other_slice.window_index, s.window_index)
    assert not np.array_equal(other_role.window_index, s.window_index)


def test_too_few_windows_says_how_many_exist():
    with pytest.raises(ConfigError, match="give 4 windows of 5 tokens but 5 were requested"):
        sample_windows(np.arange(23), 5, 5, ROLE, "all")


def test_slice_hash_matches_the_documented_encoding():
    s = TokenSlice(
        window_index=np.array([2, 7], dtype=np.int64),
        input_ids=np.array([[1, 2, 3], [40, 50, 60]], dtype=np.int32),
    )
    expected = _hand_hash([2, 7], [[1, 2, 3], [40, 50, 60]], TOK_HASH)
    assert slice_sha256(s, TOK_HASH) == expected
    assert slice_sha256(s, TOK_HASH) == slice_sha256(s, TOK_HASH)


def test_slice_hash_changes_with_a_token_an_index_or_the_tokenizer():
    s = sample_windows(np.arange(100, dtype=np.int64), 4, 5, ROLE, "h")
    base = slice_sha256(s, TOK_HASH)
    ids = s.input_ids.copy()
    ids[2, 1] += 1
    assert slice_sha256(dataclasses.replace(s, input_ids=ids), TOK_HASH) != base
    index = s.window_index.copy()
    index[0] += 1
    assert slice_sha256(dataclasses.replace(s, window_index=index), TOK_HASH) != base
    assert slice_sha256(s, "cd" * 32) != base


def test_tokenize_concat_puts_eos_between_documents_only():
    tok = build_word_level_tokenizer(("a", "b", "c", "."))  # ids: a=4 b=5 c=6 .=7, eos=2
    ids = tokenize_concat(["a b.", "c", "b a"], tok)
    assert ids.dtype == np.int64
    assert ids.tolist() == [4, 5, 7, 2, 6, 2, 5, 4]
    assert tokenize_concat([], tok).tolist() == []


class _NoEosTokenizer:
    eos_token_id = None

    def __call__(self, texts, add_special_tokens):
        assert add_special_tokens is False
        return {"input_ids": [[len(t)] for t in texts]}


def test_tokenize_concat_without_eos_just_concatenates():
    assert tokenize_concat(["ab", "cde"], _NoEosTokenizer()).tolist() == [2, 3]


HELDOUT = CANON.ENUM.SLICE_NAME.RASTERS
CALIB = CANON.ENUM.SLICE_NAME.CALIBRATION


def test_heldout_windows_avoid_the_excluded_slice_and_are_seeded_by_keys():
    tokens = np.arange(3000, dtype=np.int64) * 7
    calib = sample_windows(tokens, 10, 120, ROLE, CALIB)
    held = sample_heldout_windows(tokens, 10, 100, ROLE, HELDOUT, calib.window_index)
    idx = held.window_index.tolist()
    assert len(idx) == 100 and idx == sorted(set(idx)) and held.window_index.dtype == np.int64
    assert not set(idx) & set(calib.window_index.tolist())
    check_disjoint(held.window_index, calib.window_index, what="rasters vs calibration")
    for i, row in zip(idx, held.input_ids.tolist(), strict=True):
        assert row == [7 * t for t in range(10 * i, 10 * i + 10)]
    again = sample_heldout_windows(tokens, 10, 100, ROLE, HELDOUT, calib.window_index)
    assert np.array_equal(again.window_index, held.window_index)
    other = sample_heldout_windows(tokens, 10, 100, CANON.ENUM.DATASET_ROLE.B, HELDOUT, [])
    assert not np.array_equal(other.window_index, held.window_index)
    # With nothing excluded the draw is sample_windows' own (same keys, same windows).
    plain = sample_heldout_windows(tokens, 10, 100, ROLE, HELDOUT, [])
    assert np.array_equal(
        plain.window_index, sample_windows(tokens, 10, 100, ROLE, HELDOUT).window_index
    )


def test_heldout_takes_every_remaining_window_when_exactly_enough():
    calib = sample_windows(np.arange(300), 10, 12, ROLE, CALIB)
    held = sample_heldout_windows(np.arange(300), 10, 18, ROLE, HELDOUT, calib.window_index)
    assert sorted(held.window_index.tolist() + calib.window_index.tolist()) == list(range(30))


def test_heldout_too_few_windows_says_how_many_are_available():
    calib = sample_windows(np.arange(300), 10, 12, ROLE, CALIB)
    with pytest.raises(
        ConfigError,
        match=r"30 windows of 10 tokens, 12 of them excluded .* so 18 "
        r"are available but 19 were requested",
    ):
        sample_heldout_windows(np.arange(300), 10, 19, ROLE, HELDOUT, calib.window_index)
    with pytest.raises(ConfigError, match=r"excluded window index \(0\.\.30\) is outside the 30"):
        sample_heldout_windows(np.arange(300), 10, 2, ROLE, HELDOUT, [0, 30])


def test_check_disjoint_names_the_shared_windows():
    with pytest.raises(
        CheckFailed,
        match=r"rasters vs calibration: 2 window\(s\) in both, "
        r"first \[4, 9\]",
    ):
        check_disjoint(np.array([1, 4, 9]), np.array([0, 4, 9, 12]), what="rasters vs calibration")
    check_disjoint(np.array([1, 5]), np.array([0, 4]), what="rasters vs calibration")
