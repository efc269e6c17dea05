"""Deterministic synthetic corpora for the embedded default profile
(spec/05_DATASETS_SAMPLING_HASHING.md).

Two generators over one closed vocabulary of a few hundred words:

- CANON.ENUM.SYNTHETIC_GENERATOR.A: a Markov chain over word classes (determiner,
  adjective, noun, verb, ...) whose content words come from the document's topic
  with Zipf-like weights; a document keeps one main topic and occasionally
  borrows a sentence from another one.
- CANON.ENUM.SYNTHETIC_GENERATOR.B: template sentences (names, numbers, places,
  questions) whose slots are filled uniformly from all topics.

The vocabulary is built by code from fixed word lists and syllable pseudo-words,
so it is identical on every machine; the documents depend only on
(generator id, seed) through numpy's PCG64.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from canon import CANON
from critspec.errors import ConfigError

PERIOD, COMMA, QUESTION, SEMICOLON = ".", ",", "?", ";"
PUNCTUATION = (PERIOD, COMMA, QUESTION, SEMICOLON)

# Word lists are written as space-separated strings to keep them readable.
DETERMINERS = tuple("the a this that every some each our their no".split())
PREPOSITIONS = tuple("in on under near with from over into behind across".split())
CONJUNCTIONS = tuple("and but while because so yet".split())
ADVERBS = tuple("slowly often again quietly soon twice still rarely".split())
# Template-only words of generator B.
NAMES = tuple(
    "anna boris clara dmitri elena felix greta hugo ines jonas "
    "karla leo mira nils olga pavel rosa stefan tara viktor".split()
)
NUMBERS = tuple("one two three four five six seven eight nine ten eleven twelve".split())
TIMES = tuple("monday tuesday friday sunday morning evening winter summer".split())
TEMPLATE_WORDS = tuple("did is was why when where who not then of".split())
_FIXED_POOLS = (
    PUNCTUATION,
    DETERMINERS,
    PREPOSITIONS,
    CONJUNCTIONS,
    ADVERBS,
    NAMES,
    NUMBERS,
    TIMES,
    TEMPLATE_WORDS,
)

N_TOPICS = 8
NOUNS_PER_TOPIC = 16
VERBS_PER_TOPIC = 10
ADJECTIVES_PER_TOPIC = 8
N_PLACES = 12

# Pseudo-words are consonant-vowel syllable pairs visited with a stride coprime to
# the number of pairs, so consecutive words look unrelated yet never repeat.
_ONSETS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLE_STRIDE = 17

DOC_WORDS_MIN = 200
DOC_WORDS_MAX = 400
SENTENCE_WORDS_MAX = 24


@dataclass(frozen=True)
class Lexicon:
    """Word pools; topic pools are indexed [topic][rank] with rank 0 the most frequent."""

    nouns: tuple[tuple[str, ...], ...]
    verbs: tuple[tuple[str, ...], ...]
    adjectives: tuple[tuple[str, ...], ...]
    places: tuple[str, ...]

    def all_words(self) -> tuple[str, ...]:
        topical = (*self.nouns, *self.verbs, *self.adjectives)
        return tuple(itertools.chain(*_FIXED_POOLS, self.places, *topical))


def _pseudo_words(n: int, taken: set[str]) -> list[str]:
    syllables = [c + v for c in _ONSETS for v in _VOWELS]
    pairs = [a + b for a, b in itertools.product(syllables, repeat=2)]
    out: list[str] = []
    for step in range(len(pairs)):
        word = pairs[(step * _SYLLABLE_STRIDE) % len(pairs)]
        if word not in taken:
            taken.add(word)
            out.append(word)
            if len(out) == n:
                return out
    raise AssertionError("syllable inventory too small for the requested vocabulary")


@cache
def lexicon() -> Lexicon:
    """The closed lexicon shared by both generators."""
    taken = set(itertools.chain(*_FIXED_POOLS))
    per_topic = NOUNS_PER_TOPIC + VERBS_PER_TOPIC + ADJECTIVES_PER_TOPIC
    words = _pseudo_words(N_TOPICS * per_topic + N_PLACES, taken)
    topics = [words[k * per_topic : (k + 1) * per_topic] for k in range(N_TOPICS)]
    verb_end = NOUNS_PER_TOPIC + VERBS_PER_TOPIC
    return Lexicon(
        nouns=tuple(tuple(t[:NOUNS_PER_TOPIC]) for t in topics),
        verbs=tuple(tuple(t[NOUNS_PER_TOPIC:verb_end]) for t in topics),
        adjectives=tuple(tuple(t[verb_end:]) for t in topics),
        places=tuple(words[N_TOPICS * per_topic :]),
    )


def embedded_vocabulary() -> tuple[str, ...]:
    """Sorted union of every word either generator can emit."""
    words = lexicon().all_words()
    if len(set(words)) != len(words):
        raise AssertionError("synthetic lexicon has duplicate words")
    return tuple(sorted(words))


def _cdf(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return np.cumsum(w / w.sum())


def _zipf_cdf(n: int) -> np.ndarray:
    return _cdf(np.reciprocal(np.arange(1, n + 1, dtype=np.float64)))


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> int:
    # Inverse-CDF sampling from one uniform: cheaper than rng.choice(p=...) per word;
    # the clamp guards against the last cumulative sum rounding below 1.
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _choice(rng: np.random.Generator, items: Sequence[str], cdf: np.ndarray | None = None) -> str:
    if cdf is None:
        return items[int(rng.integers(len(items)))]
    return items[_draw(rng, cdf)]


def _percent(rng: np.random.Generator, pct: int) -> bool:
    return int(rng.integers(100)) < pct


# Generator A: word-class Markov chain. Transition weights are relative integers
# (normalized below) so that the table reads as counts.
_START, _DET, _ADJ, _NOUN, _VERB, _PREP, _CONJ, _ADV, _END = range(9)
_TRANSITIONS: dict[int, dict[int, int]] = {
    _START: {_DET: 70, _ADJ: 10, _NOUN: 20},
    _DET: {_ADJ: 35, _NOUN: 65},
    _ADJ: {_ADJ: 15, _NOUN: 85},
    _NOUN: {_VERB: 55, _PREP: 20, _CONJ: 10, _END: 15},
    _VERB: {_DET: 50, _PREP: 25, _ADV: 10, _END: 15},
    _PREP: {_DET: 80, _NOUN: 20},
    _CONJ: {_DET: 60, _NOUN: 40},
    _ADV: {_END: 50, _PREP: 30, _CONJ: 20},
}
_CAN_END = (_NOUN, _VERB, _ADV)
_TRANSITION_CDFS = {
    src: (tuple(dst), _cdf(list(dst.values()))) for src, dst in _TRANSITIONS.items()
}
# Percent chances: a sentence stays on the document's main topic; a conjunction
# is preceded by a comma.
_MAIN_TOPIC_PCT = 80
_COMMA_BEFORE_CONJ_PCT = 50


def _markov_sentence(rng: np.random.Generator, topic: int) -> list[str]:
    lex = lexicon()
    pools = {
        _DET: (DETERMINERS, None),
        _ADJ: (lex.adjectives[topic], _zipf_cdf(ADJECTIVES_PER_TOPIC)),
        _NOUN: (lex.nouns[topic], _zipf_cdf(NOUNS_PER_TOPIC)),
        _VERB: (lex.verbs[topic], _zipf_cdf(VERBS_PER_TOPIC)),
        _PREP: (PREPOSITIONS, None),
        _CONJ: (CONJUNCTIONS, None),
        _ADV: (ADVERBS, None),
    }
    words: list[str] = []
    state = _START
    while True:
        if state in _CAN_END and len(words) >= SENTENCE_WORDS_MAX:
            break
        targets, cdf = _TRANSITION_CDFS[state]
        state = targets[_draw(rng, cdf)]
        if state == _END:
            break
        if state == _CONJ and _percent(rng, _COMMA_BEFORE_CONJ_PCT):
            words.append(COMMA)
        items, cdf = pools[state]
        words.append(_choice(rng, items, cdf))
    words.append(PERIOD)
    return words


def _markov_document(rng: np.random.Generator, n_words: int) -> list[str]:
    main = int(rng.integers(N_TOPICS))
    words: list[str] = []
    while len(words) < n_words:
        topic = main if _percent(rng, _MAIN_TOPIC_PCT) else int(rng.integers(N_TOPICS))
        words.extend(_markov_sentence(rng, topic))
    return words


# Generator B: templates. A slot is a pool name; anything else is a literal word.
_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("NAME", "VERB", "the", "ADJ", "NOUN", "in", "PLACE", PERIOD),
    ("did", "NAME", "VERB", "NUMBER", "NOUN", QUESTION),
    ("on", "TIME", COMMA, "NAME", "and", "NAME", "VERB", "a", "NOUN", PERIOD),
    ("the", "NOUN", "of", "PLACE", "is", "ADJ", SEMICOLON, "the", "NOUN", "is", "not", PERIOD),
    ("why", "was", "the", "NOUN", "ADJ", QUESTION),
    ("NUMBER", "ADJ", "NOUN", "VERB", "near", "PLACE", PERIOD),
    ("where", "did", "NAME", "VERB", "the", "NOUN", QUESTION),
    ("when", "NAME", "VERB", COMMA, "NAME", "VERB", "then", PERIOD),
    ("who", "VERB", "NUMBER", "NOUN", "from", "PLACE", QUESTION),
    ("in", "TIME", "the", "NOUN", "was", "ADJ", "and", "ADJ", PERIOD),
)


TEMPLATES = _TEMPLATES


@cache
def template_slots() -> dict[str, tuple[str, ...]]:
    """Generator B's slot pools: a template position naming a pool is filled uniformly from it."""
    lex = lexicon()
    return {
        "NAME": NAMES,
        "NUMBER": NUMBERS,
        "TIME": TIMES,
        "PLACE": lex.places,
        "NOUN": tuple(itertools.chain(*lex.nouns)),
        "VERB": tuple(itertools.chain(*lex.verbs)),
        "ADJ": tuple(itertools.chain(*lex.adjectives)),
    }


def _template_document(rng: np.random.Generator, n_words: int) -> list[str]:
    slots = template_slots()
    words: list[str] = []
    while len(words) < n_words:
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        words.extend(_choice(rng, slots[s]) if s in slots else s for s in template)
    return words


def _render(words: Sequence[str]) -> str:
    """Join words as prose: punctuation attaches to the previous word."""
    out: list[str] = []
    for w in words:
        if w in PUNCTUATION and out:
            out[-1] += w
        else:
            out.append(w)
    return " ".join(out)


_GENERATORS: dict[str, Callable[[np.random.Generator, int], list[str]]] = {
    CANON.ENUM.SYNTHETIC_GENERATOR.A: _markov_document,
    CANON.ENUM.SYNTHETIC_GENERATOR.B: _template_document,
}


def generate_corpus(generator_id: str, n_docs: int, seed: int) -> list[str]:
    """n_docs documents of DOC_WORDS_MIN..DOC_WORDS_MAX words (punctuation counted)."""
    if generator_id not in _GENERATORS:
        raise ConfigError(
            f"unknown synthetic generator {generator_id!r}; "
            f"use one of {sorted(_GENERATORS)} (CANON.ENUM.SYNTHETIC_GENERATOR)"
        )
    if n_docs < 1:
        raise ConfigError(f"synthetic corpus {generator_id!r}: N_DOCS must be >= 1, got {n_docs}")
    rng = np.random.Generator(np.random.PCG64(seed))
    make = _GENERATORS[generator_id]
    docs = []
    for _ in range(n_docs):
        n_words = int(rng.integers(DOC_WORDS_MIN, DOC_WORDS_MAX + 1))
        docs.append(_render(make(rng, n_words)))
    return docs
