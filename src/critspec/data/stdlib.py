"""Real English text that ships with every Python installation
(spec/05_DATASETS_SAMPLING_HASHING.md "Real-weights
profile"), and a multiple-choice cloze task built from it.

- Dataset A, CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS: the reference topics of
  `pydoc_data.topics` (what `help("if")` prints), one document per topic, in sorted
  topic-key order.
- Dataset B, CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS: for each module of a fixed,
  configured list, in list order, one document made of the docstrings of the module and
  of its top-level classes and functions in source order. The docstrings are read from
  the module's source with `ast` (nothing is imported, so no module runs code and no
  docstring is built at import time), cleaned as `inspect.cleandoc` does.
- Dataset MC, CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE: ARC-format questions
  (id, question, choices {label, text}, answerKey) labelled
  CANON.ENUM.MC_TASK.CLOZE_FROM_DOCSTRINGS: CONTEXT_WORDS words of Dataset B text, the
  true next word, and distractor words from the same text. Positions, distractors and
  the answer's slot are drawn by PRNGs seeded from semantic keys (critspec.seeding).

The text depends on the Python version: content_sha256 over the documents enters the
slice hash, and content_origin names the Python it came from.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import platform
import re
import string
from pathlib import Path
from typing import Any

import numpy as np

from canon import CANON
from critspec.errors import ConfigError
from critspec.seeding import rng_for

F = CANON.ENUM.ARC_FIELD

# A cloze word: letters only (identifiers with digits or underscores, numbers and
# punctuation make poor questions), at least this long so that the choice is not
# between "a" and "of".
_WORD = re.compile(r"[A-Za-z]+")
MIN_CLOZE_WORD_LEN = 4
_DOC_SEPARATOR = b"\x00"
_DOCSTRING_OWNERS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
TOPICS_ORIGIN = "pydoc_data.topics"
DOCSTRINGS_ORIGIN = "module docstrings"


def topic_documents() -> list[str]:
    """Dataset A: pydoc_data.topics values in sorted key order."""
    try:
        from pydoc_data.topics import topics
    except ImportError as e:  # some distributions split pydoc_data off
        raise ConfigError(
            f"this Python has no {TOPICS_ORIGIN} ({e}); install the Python standard "
            f"library's documentation data (e.g. the full python3 package)"
        ) from e
    return [topics[key] for key in sorted(topics)]


def _module_source(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not origin.endswith(".py"):
        raise ConfigError(
            f"standard-library module {name!r} has no Python source here "
            f"(origin {origin!r}); remove it from MODULES of the dataset entry"
        )
    return Path(origin)


def module_document(name: str) -> str:
    """Docstrings of module `name` and its top-level classes and functions, in source order,
    separated by blank lines."""
    tree = ast.parse(_module_source(name).read_text(encoding="utf-8"))
    nodes = [tree, *(n for n in tree.body if isinstance(n, _DOCSTRING_OWNERS))]
    docs = [ast.get_docstring(n, clean=True) for n in nodes]
    return "\n\n".join(d for d in docs if d)


def docstring_documents(modules: tuple[str, ...]) -> list[str]:
    """Dataset B: one document per module, in the configured order."""
    if len(set(modules)) != len(modules):
        raise ConfigError("MODULES of a docstring dataset entry lists a module twice")
    return [module_document(m) for m in modules]


def content_sha256(docs: list[str]) -> str:
    """sha256 over the documents in order, each UTF-8 encoded and NUL-terminated."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.encode("utf-8"))
        h.update(_DOC_SEPARATOR)
    return h.hexdigest()


def content_origin(source: str) -> str:
    """Where stdlib text came from: the Python version decides the bytes."""
    what = TOPICS_ORIGIN if source == CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS else DOCSTRINGS_ORIGIN
    return f"{what} of {platform.python_implementation()} {platform.python_version()}"


def cloze_questions(
    modules: tuple[str, ...], n_questions: int, n_choices: int, context_words: int
) -> list[dict[str, Any]]:
    """n_questions ARC-format cloze questions from Dataset B text (module docstrings).

    Candidate positions are the words (letters only, at least MIN_CLOZE_WORD_LEN long)
    that have context_words words before them in their document; the question shows the
    text from the first of those words up to the answer; n_questions of them are
    drawn without replacement and kept in corpus order. Distractors are distinct words of
    the same text, different from the answer ignoring case; the answer's slot is drawn.
    """
    if n_choices < 2 or n_choices > len(string.ascii_uppercase):
        raise ConfigError(f"N_CHOICES {n_choices} must lie in 2..{len(string.ascii_uppercase)}")
    task = CANON.ENUM.MC_TASK.CLOZE_FROM_DOCSTRINGS
    role = CANON.ENUM.DATASET_ROLE.MC
    texts = docstring_documents(modules)
    spans = [list(_WORD.finditer(t)) for t in texts]
    vocabulary = sorted({m[0] for doc in spans for m in doc if len(m[0]) >= MIN_CLOZE_WORD_LEN})
    candidates = [
        (d, i)
        for d, doc in enumerate(spans)
        for i in range(context_words, len(doc))
        if len(doc[i][0]) >= MIN_CLOZE_WORD_LEN
    ]
    if len(candidates) < n_questions or len(vocabulary) < n_choices:
        raise ConfigError(
            f"{task}: the text has {len(candidates)} candidate words, {n_questions} questions "
            f"were requested; lower N_QUESTIONS or CONTEXT_WORDS, or add MODULES"
        )
    picks = np.sort(rng_for(role, task, "positions").choice(len(candidates), n_questions, False))
    labels = list(string.ascii_uppercase[:n_choices])
    questions = []
    for q, pick in enumerate(picks.tolist()):
        d, i = candidates[pick]
        answer = spans[d][i][0]
        rng = rng_for(role, task, F.QUESTION, q)
        distractors: list[str] = []
        seen = {answer.lower()}
        for j in rng.permutation(len(vocabulary)).tolist():
            if vocabulary[j].lower() not in seen:
                seen.add(vocabulary[j].lower())
                distractors.append(vocabulary[j])
            if len(distractors) == n_choices - 1:
                break
        slot = int(rng.integers(n_choices))
        options = [*distractors[:slot], answer, *distractors[slot:]]
        # The text as written (punctuation kept, whitespace collapsed) from the first context
        # word up to the answer, so that the answer is the text's true continuation.
        context = " ".join(
            texts[d][spans[d][i - context_words].start() : spans[d][i].start()].split()
        )
        questions.append(
            {
                "id": f"{task}_{q:04d}",
                F.QUESTION: CANON.CONST.CLOZE_QUESTION_TEMPLATE.format(context=context),
                F.CHOICES: {F.LABEL: labels, F.TEXT: options},
                F.ANSWER_KEY: labels[slot],
                "task": task,
            }
        )
    return questions
