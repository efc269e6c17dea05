"""Word-level tokenizer over a closed vocabulary, and the tokenizer hash
(spec/05_DATASETS_SAMPLING_HASHING.md).

The tokenizer hash enters every slice hash, so it is taken over a canonical
serialization that survives save_pretrained / from_pretrained.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from critspec.errors import ConfigError

UNK_TOKEN = "<unk>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
SPECIAL_TOKENS = (UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)


def build_word_level_tokenizer(vocab: Sequence[str]) -> PreTrainedTokenizerFast:
    """Special tokens take ids 0..3 (unk, bos, eos, pad); words follow in the given order.

    The pre-tokenizer splits on whitespace and separates punctuation from words
    (`Whitespace`: runs of word characters or of other non-space characters), so
    "river." becomes "river", ".".
    """
    dupes = sorted(w for w, n in Counter(vocab).items() if n > 1)
    clash = sorted(set(vocab) & set(SPECIAL_TOKENS))
    if dupes or clash:
        raise ConfigError(
            f"word-level vocabulary has duplicates {dupes[:5]} or special-token clashes "
            f"{clash}; pass each word once and none of {list(SPECIAL_TOKENS)}"
        )
    ids = {tok: i for i, tok in enumerate((*SPECIAL_TOKENS, *vocab))}
    backend = Tokenizer(models.WordLevel(vocab=ids, unk_token=UNK_TOKEN))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
    )


# Call-time state that transformers toggles on the backend when a caller asks for
# padding or truncation; it is not part of what the tokenizer maps text to.
_CALL_STATE_KEYS = ("padding", "truncation")


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of the backend tokenizer's JSON (fast tokenizers) or of the sorted vocab."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        doc = json.loads(backend.to_str())
        for key in _CALL_STATE_KEYS:
            doc.pop(key, None)
        payload = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")
    else:
        vocab = tokenizer.get_vocab()
        payload = json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()
