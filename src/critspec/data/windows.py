"""Token windows and the slice hash (spec/05_DATASETS_SAMPLING_HASHING.md "Datasets and sampling").

Text is concatenated in document order and cut into non-overlapping windows of
exactly T tokens (no padding). N windows are drawn without replacement by a PRNG
seeded from (BOOTSTRAP_SEED, dataset role, slice name) and kept in ascending
order. A held-out slice (Phase 3's rasters, spec/05_DATASETS_SAMPLING_HASHING.md) is drawn the same
way from
the windows outside another slice. The slice hash covers the ordered (window index,
token ids) and the tokenizer hash, so the same windows under another tokenizer hash differently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from critspec.errors import CheckFailed, ConfigError
from critspec.seeding import rng_for

# Fixed binary encoding of a slice for hashing: little-endian, independent of the host.
_INDEX_DTYPE = np.dtype("<i8")
_TOKEN_DTYPE = np.dtype("<i4")


@dataclass(frozen=True)
class TokenSlice:
    """N windows of T tokens: window_index int64 [N] ascending, input_ids int32 [N, T]."""

    window_index: np.ndarray
    input_ids: np.ndarray

    @property
    def n_windows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])


def tokenize_concat(texts: Sequence[str], tokenizer: Any) -> np.ndarray:
    """int64 token stream: documents in order, no special tokens inside a document,
    the tokenizer's eos id between documents when it has one."""
    if not texts:  # fast tokenizers fail on an empty batch
        return np.zeros(0, dtype=np.int64)
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    pieces: list[list[int]] = []
    for i, ids in enumerate(encoded):
        if i > 0 and eos is not None:
            pieces.append([eos])
        pieces.append(ids)
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in pieces])


def _window_grid(
    tokens: np.ndarray, seq_len: int, n_windows: int, dataset_role: str, slice_name: str
) -> np.ndarray:
    """The floor(len/seq_len) windows as int64 rows [available, seq_len] (the tail dropped)."""
    if seq_len < 1 or n_windows < 1:
        raise ConfigError(
            f"slice {slice_name!r} of {dataset_role}: seq_len ({seq_len}) and n_windows "
            f"({n_windows}) must be >= 1"
        )
    if len(tokens) and (int(np.min(tokens)) < 0 or int(np.max(tokens)) > np.iinfo(np.int32).max):
        raise ConfigError(f"slice {slice_name!r} of {dataset_role}: token ids do not fit int32")
    available = len(tokens) // seq_len
    return np.asarray(tokens[: available * seq_len]).reshape(available, seq_len)


def _draw(
    grid: np.ndarray, pool: np.ndarray, n_windows: int, dataset_role: str, slice_name: str
) -> TokenSlice:
    """n_windows of the pool's window indices without replacement, seeded by
    (dataset_role, slice_name), in ascending order."""
    rng = rng_for(dataset_role, slice_name)
    index = np.sort(pool[rng.choice(len(pool), size=n_windows, replace=False)]).astype(np.int64)
    return TokenSlice(window_index=index, input_ids=grid[index].astype(np.int32))


def sample_windows(
    tokens: np.ndarray, seq_len: int, n_windows: int, dataset_role: str, slice_name: str
) -> TokenSlice:
    """Draw n_windows of the floor(len/seq_len) windows, seeded by (dataset_role, slice_name)."""
    grid = _window_grid(tokens, seq_len, n_windows, dataset_role, slice_name)
    available = grid.shape[0]
    if available < n_windows:
        raise ConfigError(
            f"slice {slice_name!r} of {dataset_role}: {len(tokens)} tokens give {available} "
            f"windows of {seq_len} tokens but {n_windows} were requested; lower n_windows or "
            f"seq_len, or use a larger dataset (more documents)"
        )
    return _draw(grid, np.arange(available), n_windows, dataset_role, slice_name)


def sample_heldout_windows(
    tokens: np.ndarray,
    seq_len: int,
    n_windows: int,
    dataset_role: str,
    slice_name: str,
    exclude: np.ndarray,
) -> TokenSlice:
    """Draw n_windows of the windows whose index is not in exclude
    (spec/05_DATASETS_SAMPLING_HASHING.md).

    The held-out raster slice: exclude is the calibration slice's window_index, cut
    from the same tokens with the same seq_len. The draw is the one of sample_windows
    (seeded by (dataset_role, slice_name), ascending) over the remaining windows only.
    """
    grid = _window_grid(tokens, seq_len, n_windows, dataset_role, slice_name)
    available = grid.shape[0]
    excluded = np.asarray(exclude, dtype=np.int64)
    if excluded.size and (excluded.min() < 0 or excluded.max() >= available):
        raise ConfigError(
            f"slice {slice_name!r} of {dataset_role}: an excluded window index "
            f"({int(excluded.min())}..{int(excluded.max())}) is outside the {available} windows "
            f"of {seq_len} tokens: the excluded slice was cut from other tokens or another "
            "seq_len; use the calibration slice of the same dataset and seq_len"
        )
    pool = np.setdiff1d(np.arange(available), excluded)
    if len(pool) < n_windows:
        raise ConfigError(
            f"slice {slice_name!r} of {dataset_role}: {len(tokens)} tokens give {available} "
            f"windows of {seq_len} tokens, {available - len(pool)} of them excluded (held "
            f"out from the calibration slice), so {len(pool)} are available but {n_windows} "
            "were requested; lower n_windows or seq_len, or use a larger dataset"
        )
    return _draw(grid, pool, n_windows, dataset_role, slice_name)


def check_disjoint(heldout: np.ndarray, excluded: np.ndarray, *, what: str) -> None:
    """The held-out window indices share no window with the excluded ones (CheckFailed if so).

    what names the pair in the message, e.g. "raster slice vs calibration slice".
    """
    shared = np.intersect1d(np.asarray(heldout), np.asarray(excluded))
    if shared.size:
        raise CheckFailed(
            f"{what}: {shared.size} window(s) in both, first {shared[:5].tolist()}: the "
            "held-out slice must be drawn with sample_heldout_windows excluding the other"
        )


def slice_sha256(s: TokenSlice, tokenizer_hash: str, content_hash: str | None = None) -> str:
    """sha256 over each window in order (int64-LE index, int32-LE ids), then the tokenizer
    hash, then (when given) the sha256 of the corpus the windows were cut from, so that
    another text (e.g. stdlib docs of another Python) hashes differently even where the
    drawn windows happen to agree."""
    h = hashlib.sha256()
    for idx, row in zip(s.window_index, s.input_ids, strict=True):
        h.update(np.asarray(idx, dtype=_INDEX_DTYPE).tobytes())
        h.update(np.ascontiguousarray(row, dtype=_TOKEN_DTYPE).tobytes())
    h.update(tokenizer_hash.encode("utf-8"))
    if content_hash is not None:
        h.update(content_hash.encode("utf-8"))
    return h.hexdigest()
