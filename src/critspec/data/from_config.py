"""The configured calibration slice and its run-record entry (DESIGN §4)."""

from __future__ import annotations

from typing import Any

from canon import CANON
from critspec.config.resolve import ResolvedConfig
from critspec.data.sources import content_provenance, load_texts
from critspec.data.tokenizer import tokenizer_sha256
from critspec.data.windows import TokenSlice, sample_windows, slice_sha256, tokenize_concat


def calibration_slice(config: ResolvedConfig, tokenizer: Any) -> tuple[TokenSlice, dict[str, Any]]:
    cal = config.pipeline.calibration
    entry = config.dataset_entry(cal.dataset_role)
    texts = load_texts(entry)
    provenance = content_provenance(entry, texts)
    tokens = tokenize_concat(texts, tokenizer)
    name = CANON.ENUM.SLICE_NAME.CALIBRATION
    token_slice = sample_windows(tokens, cal.seq_len_tokens, cal.n_windows, cal.dataset_role, name)
    tok_hash = tokenizer_sha256(tokenizer)
    record = {
        "dataset_role": cal.dataset_role,
        "slice_name": name,
        "source": entry.SOURCE,
        "n_windows": token_slice.n_windows,
        "seq_len_tokens": token_slice.seq_len,
        "slice_sha256": slice_sha256(token_slice, tok_hash, provenance["content_sha256"]),
        "tokenizer_sha256": tok_hash,
        **provenance,
    }
    return token_slice, record
