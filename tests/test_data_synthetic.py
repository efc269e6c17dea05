"""Synthetic corpora and the word-level tokenizer over their vocabulary
(spec/05_DATASETS_SAMPLING_HASHING.md)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from canon import CANON
from critspec.data.synthetic import (
    DOC_WORDS_MIN,
    QUESTION,
    embedded_vocabulary,
    generate_corpus,
    lexicon,
)
from critspec.data.tokenizer import (
    SPECIAL_TOKENS,
    build_word_level_tokenizer,
    tokenizer_sha256,
)
from critspec.data.windows import tokenize_concat
from critspec.errors import ConfigError

GEN_A, GEN_B = CANON.ENUM.SYNTHETIC_GENERATOR.A, CANON.ENUM.SYNTHETIC_GENERATOR.B
# An independent tokenization of the rendered text: runs of word characters or of
# other non-space characters (what a whitespace + punctuation split must produce).
TOKEN_RE = re.compile(r"\w+|[^\w\s]+")


def _words(docs: list[str]) -> list[str]:
    return [w for d in docs for w in TOKEN_RE.findall(d)]


def test_vocabulary_is_closed_sorted_and_a_few_hundred_words():
    vocab = embedded_vocabulary()
    assert list(vocab) == sorted(set(vocab))
    assert 300 <= len(vocab) <= 450
    assert embedded_vocabulary() == vocab


@pytest.mark.parametrize("generator", [GEN_A, GEN_B])
def test_generators_are_deterministic_and_closed(generator):
    docs = generate_corpus(generator, 12, seed=3)
    assert docs == generate_corpus(generator, 12, seed=3)
    assert docs != generate_corpus(generator, 12, seed=4)
    assert len(docs) == 12
    assert set(_words(docs)) <= set(embedded_vocabulary())
    assert all(len(TOKEN_RE.findall(d)) >= DOC_WORDS_MIN for d in docs)


def test_both_generators_together_emit_every_vocabulary_word():
    emitted = set(_words(generate_corpus(GEN_A, 200, 1) + generate_corpus(GEN_B, 200, 2)))
    assert emitted == set(embedded_vocabulary())


def test_generators_differ_in_distribution():
    a, b = generate_corpus(GEN_A, 40, seed=9), generate_corpus(GEN_B, 40, seed=9)
    assert a != b
    # B asks questions; A never does.
    assert QUESTION not in _words(a) and QUESTION in _words(b)

    # A keeps a main topic per document; B fills slots from all topics uniformly.
    topic_of = {w: k for k, pool in enumerate(lexicon().nouns) for w in pool}

    def main_topic_share(doc: str) -> float:
        counts = Counter(topic_of[w] for w in TOKEN_RE.findall(doc) if w in topic_of)
        return max(counts.values()) / sum(counts.values())

    assert min(main_topic_share(d) for d in a) > 0.5
    assert max(main_topic_share(d) for d in b) < 0.5


def test_unknown_generator_is_refused():
    with pytest.raises(ConfigError, match="unknown synthetic generator"):
        generate_corpus("markov_z", 2, 0)


def test_tokenizer_maps_no_corpus_word_to_unk():
    tok = build_word_level_tokenizer(embedded_vocabulary())
    docs = generate_corpus(GEN_A, 8, 0) + generate_corpus(GEN_B, 8, 0)
    ids = tokenize_concat(docs, tok)
    assert tok.unk_token_id not in set(ids.tolist())
    # Independent count: the regex split plus one eos between consecutive documents.
    assert len(ids) == len(_words(docs)) + len(docs) - 1


def test_tokenizer_ids_are_deterministic():
    tok = build_word_level_tokenizer(("b", "a", "."))
    specials = [tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token]
    assert tok.convert_tokens_to_ids(specials) == [0, 1, 2, 3]
    assert tok("b a. zz", add_special_tokens=False)["input_ids"] == [4, 5, 6, 0]
    assert list(SPECIAL_TOKENS) == specials
    with pytest.raises(ConfigError, match="duplicates"):
        build_word_level_tokenizer(("a", "a"))


def test_tokenizer_hash_survives_save_and_reload(tmp_path):
    from transformers import AutoTokenizer

    tok = build_word_level_tokenizer(embedded_vocabulary())
    digest = tokenizer_sha256(tok)
    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert tokenizer_sha256(reloaded) == digest
    # Padding a batch changes call-time state on the backend, not the tokenizer.
    reloaded(["a b", "a"], padding=True)
    assert tokenizer_sha256(reloaded) == digest
    other = build_word_level_tokenizer(embedded_vocabulary()[:-1])
    assert tokenizer_sha256(other) != digest


def test_embedded_profile_sizes_fit_the_embedded_dataset():
    entry = CANON.DATASET.EMBEDDED_A
    tok = build_word_level_tokenizer(embedded_vocabulary())
    n_tokens = len(tokenize_concat(generate_corpus(entry.GENERATOR, entry.N_DOCS, entry.SEED), tok))
    profile, bench = CANON.PROFILE.EMBEDDED_DEFAULT, CANON.PROFILE.BENCH
    assert n_tokens // profile.SEQ_LEN_TOKENS >= 2 * profile.N_WINDOWS_A_CALIBRATION
    assert n_tokens // bench.SEQ_LEN_TOKENS >= 2 * bench.N_WINDOWS
