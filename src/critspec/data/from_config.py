"""The configured calibration and raster slices and their run-record entries
(spec/05_DATASETS_SAMPLING_HASHING.md)."""

from __future__ import annotations

from typing import Any

from canon import CANON
from critspec.config.resolve import ResolvedConfig
from critspec.data.sources import content_provenance, load_texts
from critspec.data.tokenizer import tokenizer_sha256
from critspec.data.windows import (
    TokenSlice,
    sample_heldout_windows,
    sample_windows,
    slice_sha256,
    tokenize_concat,
)
from critspec.errors import ConfigError


def calibration_slice(config: ResolvedConfig, tokenizer: Any) -> tuple[TokenSlice, dict[str, Any]]:
    cal = config.pipeline.calibration
    entry = config.dataset_entry(cal.dataset_role)
    texts = load_texts(entry)
    provenance = content_provenance(entry, texts)
    tokens = tokenize_concat(texts, tokenizer)
    name = CANON.ENUM.SLICE_NAME.CALIBRATION
    token_slice = sample_windows(tokens, cal.seq_len_tokens, cal.n_windows, cal.dataset_role, name)
    record = slice_record(token_slice, cal.dataset_role, name, entry.SOURCE, tokenizer, provenance)
    return token_slice, record


def raster_slice(
    config: ResolvedConfig, tokenizer: Any, exclude: Any
) -> tuple[TokenSlice, dict[str, Any]]:
    """Phase 3's held-out slice: windows of the same cut as the calibration slice, never
    one of `exclude` (the calibration slice's window indices)
    (spec/05_DATASETS_SAMPLING_HASHING.md)."""
    cal, ras = config.pipeline.calibration, config.pipeline.rasters
    entry = config.dataset_entry(ras.dataset_role)
    texts = load_texts(entry)
    provenance = content_provenance(entry, texts)
    tokens = tokenize_concat(texts, tokenizer)
    name = CANON.ENUM.SLICE_NAME.RASTERS
    token_slice = sample_heldout_windows(
        tokens, cal.seq_len_tokens, ras.n_windows, ras.dataset_role, name, exclude
    )
    record = slice_record(token_slice, ras.dataset_role, name, entry.SOURCE, tokenizer, provenance)
    return token_slice, record


def slice_record(
    token_slice: TokenSlice,
    dataset_role: str,
    name: str,
    source: str,
    tokenizer: Any,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The run record's entry for a slice: its identity and its sha256."""
    tok_hash = tokenizer_sha256(tokenizer)
    return {
        "dataset_role": dataset_role,
        "slice_name": name,
        "source": source,
        "n_windows": token_slice.n_windows,
        "seq_len_tokens": token_slice.seq_len,
        "slice_sha256": slice_sha256(token_slice, tok_hash, provenance["content_sha256"]),
        "tokenizer_sha256": tok_hash,
        **provenance,
    }


def b_eval_slice(config: ResolvedConfig, tokenizer: Any) -> tuple[TokenSlice, dict[str, Any]]:
    """Phase 6's Dataset B slice: generalization.n_windows windows of the calibration's T,
    seeded from (dataset role, CANON.ENUM.SLICE_NAME.B_EVAL)
    (spec/14_GENERALIZATION_MC_ABLATIONS.md §2)."""
    cal, gen = config.pipeline.calibration, config.pipeline.generalization
    if gen is None:
        raise ConfigError("the config has no `generalization` section; Phase 6 needs it")
    entry = config.dataset_entry(gen.dataset_role)
    texts = load_texts(entry)
    provenance = content_provenance(entry, texts)
    tokens = tokenize_concat(texts, tokenizer)
    name = CANON.ENUM.SLICE_NAME.B_EVAL
    token_slice = sample_windows(tokens, cal.seq_len_tokens, gen.n_windows, gen.dataset_role, name)
    record = slice_record(token_slice, gen.dataset_role, name, entry.SOURCE, tokenizer, provenance)
    return token_slice, record
