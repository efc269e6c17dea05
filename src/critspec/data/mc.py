"""Multiple-choice questions in ARC format for Phase 6 (spec/14_GENERALIZATION_MC_ABLATIONS.md
"Multiple-choice data").

A question is {id, question, choices {label, text}, answerKey} (field names
CANON.ENUM.ARC_FIELD). Sources:

- a local JSON (a list of records) or JSONL file (one record per line),
  CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE;
- a Hugging Face dataset from the local cache (the paper profile: ARC-Challenge test),
  CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET, when `datasets` is installed;
- the embedded profile's task, CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE: a sentence of
  Dataset B's template generator cut before one of its slots. The answer is the word
  the generator drew for that slot; every distractor is a word that no template of the
  generator admits after the shown prefix (all templates are enumerated), so exactly one
  option is a continuation the generator can emit. Its labels are the generator's own
  number words ("one", "two", ...): the embedded word-level tokenizer knows no letters,
  and a label outside the vocabulary would score every option alike;
- the SmolLM2 profile's cloze task from the standard library's docstrings
  (critspec.data.stdlib.cloze_questions).

Digit answer keys ("1".."9", as some ARC items have) are mapped to letters A.. together
with their labels, as lm-evaluation-harness does, so the label regime always shows
letters. Every question is validated: distinct labels, one text per label, the answer
key among the labels.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from canon import CANON
from critspec.data.synthetic import NUMBERS, PUNCTUATION, TEMPLATES, template_slots
from critspec.errors import ConfigError
from critspec.store.writers import read_text

F = CANON.ENUM.ARC_FIELD
ID_FIELD = "id"
TASK_FIELD = "task"
JSON_SUFFIX, JSONL_SUFFIX = ".json", ".jsonl"
_LETTERS = string.ascii_uppercase


def _digit_to_letter(label: str) -> str:
    return _LETTERS[int(label) - 1] if label.isdigit() and 1 <= int(label) <= 9 else label


def normalize_question(record: Any, where: str, index: int) -> dict[str, Any]:
    """One ARC record checked and normalized (digit labels and key mapped to letters)."""
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: item {index} is {type(record).__name__}, not an object")
    missing = [k for k in (F.QUESTION, F.CHOICES, F.ANSWER_KEY) if k not in record]
    if missing:
        raise ConfigError(f"{where}: item {index} lacks {missing}; ARC format needs them")
    choices = record[F.CHOICES]
    labels = choices.get(F.LABEL) if isinstance(choices, dict) else None
    texts = choices.get(F.TEXT) if isinstance(choices, dict) else None
    if not isinstance(labels, list) or not isinstance(texts, list) or len(labels) != len(texts):
        raise ConfigError(
            f"{where}: item {index}: choices must be {{{F.LABEL}: [...], {F.TEXT}: [...]}} of "
            "equal length"
        )
    if len(labels) < 2:
        raise ConfigError(f"{where}: item {index} has {len(labels)} choice(s); need at least 2")
    labels = [_digit_to_letter(str(lab)) for lab in labels]
    key = _digit_to_letter(str(record[F.ANSWER_KEY]))
    if len(set(labels)) != len(labels) or key not in labels:
        raise ConfigError(
            f"{where}: item {index}: labels {labels} must be distinct and contain the answer "
            f"key {key!r}"
        )
    question = record[F.QUESTION]
    if not isinstance(question, str) or not all(isinstance(t, str) and t for t in texts):
        raise ConfigError(f"{where}: item {index}: question and choice texts must be strings")
    out = {
        ID_FIELD: str(record.get(ID_FIELD, f"item_{index:05d}")),
        F.QUESTION: question,
        F.CHOICES: {F.LABEL: labels, F.TEXT: list(texts)},
        F.ANSWER_KEY: key,
    }
    if TASK_FIELD in record:
        out[TASK_FIELD] = str(record[TASK_FIELD])
    return out


def normalize_questions(records: Iterable[Any], where: str) -> list[dict[str, Any]]:
    out = [normalize_question(r, where, i) for i, r in enumerate(records)]
    if not out:
        raise ConfigError(f"{where}: no questions")
    ids = [q[ID_FIELD] for q in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: question ids repeat; each item needs a distinct id")
    return out


def local_mc_file(path: Path) -> list[dict[str, Any]]:
    """ARC questions from a .json (list of records) or .jsonl (one record per line) file."""
    if not path.is_file():
        raise ConfigError(f"multiple-choice file {path} does not exist; fix PATH")
    text = read_text(path, ConfigError)
    suffix = path.suffix.lower()
    if suffix == JSON_SUFFIX:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
        if not isinstance(records, list):
            raise ConfigError(f"{path}: a {JSON_SUFFIX} question file must hold a list")
        return normalize_questions(records, str(path))
    if suffix != JSONL_SUFFIX:
        raise ConfigError(f"{path}: use a {JSON_SUFFIX} or {JSONL_SUFFIX} question file")
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
    return normalize_questions(records, str(path))


def hf_rows_to_questions(rows: Iterable[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """ARC rows of a Hugging Face dataset (ai2_arc's columns are ARC format already)."""
    return normalize_questions(rows, where)


def admissible_next(prefix: Sequence[str]) -> set[str]:
    """Every word some template of generator B can emit right after `prefix`, where prefix
    is the start of one sentence (punctuation included as words)."""
    slots = template_slots()
    out: set[str] = set()
    for template in TEMPLATES:
        if len(template) <= len(prefix):
            continue
        if all(
            (w in slots[s]) if s in slots else (w == s)
            for w, s in zip(prefix, template, strict=False)
        ):
            nxt = template[len(prefix)]
            out.update(slots[nxt] if nxt in slots else (nxt,))
    return out


def synthetic_cloze_questions(n_questions: int, n_choices: int, seed: int) -> list[dict[str, Any]]:
    """The embedded profile's task: n_questions template sentences of generator B, each cut
    before one slot; options are the drawn word and n_choices - 1 words no template admits
    there (see the module docstring). Deterministic in (seed, question index)."""
    if not 2 <= n_choices <= len(NUMBERS):
        raise ConfigError(f"N_CHOICES {n_choices} must lie in 2..{len(NUMBERS)}")
    slots = template_slots()
    vocabulary = sorted({w for pool in slots.values() for w in pool} - set(PUNCTUATION))
    task = CANON.ENUM.MC_TASK.TEMPLATE_SLOT_FROM_B
    labels = list(NUMBERS[:n_choices])
    questions = []
    for q in range(n_questions):
        rng = np.random.Generator(np.random.PCG64([seed, q]))
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        words = [slots[s][int(rng.integers(len(slots[s])))] if s in slots else s for s in template]
        # A slot after at least one word, so that the prefix constrains the answer.
        positions = [i for i, s in enumerate(template) if s in slots and i > 0]
        cut = positions[int(rng.integers(len(positions)))]
        prefix, answer = words[:cut], words[cut]
        admissible = admissible_next(prefix)
        pool = [w for w in vocabulary if w not in admissible and w != answer]
        picks = rng.choice(len(pool), size=n_choices - 1, replace=False)
        distractors = [pool[i] for i in sorted(picks.tolist())]
        slot = int(rng.integers(n_choices))
        options = [*distractors[:slot], answer, *distractors[slot:]]
        context = " ".join(prefix)
        questions.append(
            {
                ID_FIELD: f"{task}_{q:04d}",
                F.QUESTION: CANON.CONST.SYNTHETIC_CLOZE_QUESTION_TEMPLATE.format(context=context),
                F.CHOICES: {F.LABEL: labels, F.TEXT: options},
                F.ANSWER_KEY: labels[slot],
                TASK_FIELD: task,
            }
        )
    return questions


def gold_index(question: dict[str, Any]) -> int:
    return question[F.CHOICES][F.LABEL].index(question[F.ANSWER_KEY])
