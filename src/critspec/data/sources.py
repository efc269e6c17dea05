"""Dataset entries and their texts (spec/05_DATASETS_SAMPLING_HASHING.md "Datasets and sampling",
§5).

One config entry (keys as in CANON.DATASET.*) names where documents come from:
the synthetic generators, a local file (.txt, .jsonl, .parquet), a Hugging Face
dataset (optional `datasets` extra, offline unless ALLOW_HUB), or text that ships
with Python (critspec.data.stdlib: reference topics, module docstrings, and a cloze
multiple-choice task built from the docstrings). Documents keep their source order;
empty ones are dropped.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canon import CANON
from critspec.config.limits import at_most
from critspec.data import mc, stdlib
from critspec.data.synthetic import generate_corpus
from critspec.errors import ConfigError
from critspec.store.writers import parse_json, read_text

F = CANON.ENUM.ARC_FIELD

DatasetSource = Literal[
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC,
    CANON.ENUM.DATASET_SOURCE.LOCAL_FILE,
    CANON.ENUM.DATASET_SOURCE.HF_DATASET,
    CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS,
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS,
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE,
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE,
    CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE,
    CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET,
]
STDLIB_SOURCES = (
    CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS,
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS,
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE,
)

# Keys each source needs, and keys it accepts besides those and SOURCE.
_REQUIRED: dict[str, tuple[str, ...]] = {
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC: ("GENERATOR", "N_DOCS", "SEED"),
    CANON.ENUM.DATASET_SOURCE.LOCAL_FILE: ("PATH",),
    CANON.ENUM.DATASET_SOURCE.HF_DATASET: ("HF_ID", "SPLIT", "TEXT_FIELD"),
    CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS: (),
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS: ("MODULES",),
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE: (
        "MODULES",
        "N_QUESTIONS",
        "N_CHOICES",
        "CONTEXT_WORDS",
    ),
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE: ("GENERATOR", "N_QUESTIONS", "N_CHOICES", "SEED"),
    CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE: ("PATH",),
    CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET: ("HF_ID", "SPLIT"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC: (),
    CANON.ENUM.DATASET_SOURCE.LOCAL_FILE: ("TEXT_FIELD", "N_DOCS"),
    CANON.ENUM.DATASET_SOURCE.HF_DATASET: ("HF_CONFIG", "N_DOCS", "ALLOW_HUB"),
    CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS: ("N_DOCS",),
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS: ("N_DOCS",),
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE: (),
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE: (),
    CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE: ("N_QUESTIONS",),
    CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET: ("HF_CONFIG", "N_QUESTIONS", "ALLOW_HUB"),
}
# Sources of ARC-format multiple-choice questions (load_mc_questions).
MC_SOURCES = (
    CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE,
    CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE,
    CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE,
    CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET,
)

TXT_SUFFIX, JSONL_SUFFIX, PARQUET_SUFFIX = ".txt", ".jsonl", ".parquet"
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_HF_OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


class DatasetEntry(BaseModel):
    """One dataset config entry. N_DOCS caps local and hub sources at their first N documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    SOURCE: DatasetSource
    GENERATOR: str | None = None
    N_DOCS: int | None = Field(default=None, ge=1)
    SEED: int | None = None
    PATH: Path | None = None
    TEXT_FIELD: str | None = None
    HF_ID: str | None = None
    HF_CONFIG: str | None = None
    SPLIT: str | None = None
    ALLOW_HUB: bool = False
    MODULES: tuple[str, ...] | None = Field(default=None, min_length=1)
    N_QUESTIONS: int | None = Field(default=None, ge=1)
    N_CHOICES: int | None = Field(default=None, ge=2)
    CONTEXT_WORDS: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _keys_fit_source(self) -> DatasetEntry:
        required = _REQUIRED[self.SOURCE]
        allowed = {"SOURCE", *required, *_OPTIONAL[self.SOURCE]}
        missing = [k for k in required if getattr(self, k) is None]
        if missing:
            raise ValueError(f"SOURCE {self.SOURCE} needs {', '.join(missing)}")
        stray = sorted(k for k in self.model_fields_set if k not in allowed)
        if stray:
            raise ValueError(f"SOURCE {self.SOURCE} does not take {', '.join(stray)}")
        # N_QUESTIONS, N_CHOICES and CONTEXT_WORDS are checked against the text they draw on.
        if self.N_DOCS is not None:
            at_most(self.N_DOCS, "N_DOCS_MAX", "N_DOCS", "it sizes the documents held in memory")
        return self


def load_texts(entry: DatasetEntry) -> list[str]:
    """The entry's documents in source order, empty ones dropped, at most N_DOCS of them."""
    docs: Iterable[str]
    if entry.SOURCE == CANON.ENUM.DATASET_SOURCE.SYNTHETIC:
        docs = generate_corpus(str(entry.GENERATOR), int(entry.N_DOCS or 0), int(entry.SEED or 0))
    elif entry.SOURCE == CANON.ENUM.DATASET_SOURCE.LOCAL_FILE:
        docs = _local_file(Path(str(entry.PATH)), entry.TEXT_FIELD)
    elif entry.SOURCE == CANON.ENUM.DATASET_SOURCE.HF_DATASET:
        docs = _hf_dataset(entry)
    elif entry.SOURCE == CANON.ENUM.DATASET_SOURCE.STDLIB_TOPICS:
        docs = stdlib.topic_documents()
    elif entry.SOURCE == CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRINGS:
        docs = stdlib.docstring_documents(tuple(entry.MODULES or ()))
    elif entry.SOURCE in MC_SOURCES:
        docs = [q[F.QUESTION] for q in load_mc_questions(entry)]
    else:
        raise ConfigError(f"dataset source {entry.SOURCE} has no loader")
    return list(itertools.islice((d for d in docs if d.strip()), entry.N_DOCS))


def load_mc_questions(entry: DatasetEntry) -> list[dict[str, Any]]:
    """ARC-format questions (question, choices {label, text}, answerKey) of a multiple-choice
    entry (spec/14_GENERALIZATION_MC_ABLATIONS.md "Multiple-choice data"), in source order,
    at most N_QUESTIONS of a file or hub split."""
    if entry.SOURCE == CANON.ENUM.DATASET_SOURCE.STDLIB_DOCSTRING_CLOZE:
        return stdlib.cloze_questions(
            tuple(entry.MODULES or ()),
            int(entry.N_QUESTIONS or 0),
            int(entry.N_CHOICES or 0),
            int(entry.CONTEXT_WORDS or 0),
        )
    if entry.SOURCE == CANON.ENUM.DATASET_SOURCE.SYNTHETIC_CLOZE:
        if entry.GENERATOR != CANON.ENUM.SYNTHETIC_GENERATOR.B:
            raise ConfigError(
                f"{entry.SOURCE} builds its questions from generator "
                f"{CANON.ENUM.SYNTHETIC_GENERATOR.B}; got GENERATOR {entry.GENERATOR!r}"
            )
        return mc.synthetic_cloze_questions(
            int(entry.N_QUESTIONS or 0), int(entry.N_CHOICES or 0), int(entry.SEED or 0)
        )
    if entry.SOURCE == CANON.ENUM.DATASET_SOURCE.LOCAL_MC_FILE:
        questions = mc.local_mc_file(Path(str(entry.PATH)))
    elif entry.SOURCE == CANON.ENUM.DATASET_SOURCE.HF_MC_DATASET:
        questions = mc.hf_rows_to_questions(_hf_rows(entry), f"dataset {entry.HF_ID}")
    else:
        raise ConfigError(
            f"dataset source {entry.SOURCE} has no questions; use one of {list(MC_SOURCES)}"
        )
    return questions[: entry.N_QUESTIONS]


def content_provenance(entry: DatasetEntry, docs: list[str]) -> dict[str, str]:
    """content_sha256 of the documents, and for text shipped with Python its origin
    (the Python version decides the bytes)."""
    out = {"content_sha256": stdlib.content_sha256(docs)}
    if entry.SOURCE in STDLIB_SOURCES:
        out["content_origin"] = stdlib.content_origin(entry.SOURCE)
    return out


def _local_file(path: Path, text_field: str | None) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"dataset file {path} does not exist; fix PATH in the dataset entry")
    suffix = path.suffix.lower()
    if suffix == TXT_SUFFIX:
        return [d.strip() for d in _BLANK_LINES.split(read_text(path, ConfigError))]
    if suffix not in (JSONL_SUFFIX, PARQUET_SUFFIX):
        raise ConfigError(
            f"dataset file {path}: unsupported suffix {suffix!r}; use "
            f"{TXT_SUFFIX}, {JSONL_SUFFIX} or {PARQUET_SUFFIX}"
        )
    if not text_field:
        raise ConfigError(f"dataset file {path}: {suffix} needs TEXT_FIELD in the dataset entry")
    if suffix == JSONL_SUFFIX:
        return _jsonl(path, text_field)
    return _parquet(path, text_field)


def _jsonl(path: Path, text_field: str) -> list[str]:
    docs: list[str] = []
    for lineno, line in enumerate(read_text(path, ConfigError).splitlines(), start=1):
        if not line.strip():
            continue
        # The bounded reader: a deeply nested line is refused, not a RecursionError.
        record = parse_json(line, f"{path}:{lineno}", ConfigError)
        if not isinstance(record, dict) or text_field not in record:
            raise ConfigError(
                f"{path}:{lineno}: no field {text_field!r}; set TEXT_FIELD to the text key"
            )
        docs.append(_as_text(record[text_field], f"{path}:{lineno}"))
    return docs


def _parquet(path: Path, text_field: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        column = pq.read_table(path, columns=[text_field]) if text_field in names else None
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"dataset file {path}: not a readable Parquet file ({exc})") from None
    if column is None:
        raise ConfigError(
            f"{path}: no column {text_field!r} (columns: {names}); "
            f"set TEXT_FIELD to the text column"
        )
    values = column.column(text_field).to_pylist()
    return [_as_text(v, f"{path} row {i}") for i, v in enumerate(values)]


def _as_text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: text field holds {type(value).__name__}, expected a string")
    return value


@contextmanager
def _offline_env(enabled: bool) -> Iterator[None]:
    """HF offline switches in the environment, restored afterwards."""
    saved = {k: os.environ.get(k) for k in _HF_OFFLINE_ENV}
    if enabled:
        os.environ.update({k: "1" for k in _HF_OFFLINE_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _offline_config(module: Any, enabled: bool) -> Iterator[None]:
    """`datasets` reads the offline switches into its config module at import time, so a
    process that imported it earlier needs the flags set there as well."""
    config = getattr(module, "config", None)
    saved = {k: getattr(config, k) for k in _HF_OFFLINE_ENV if hasattr(config, k)}
    if enabled:
        for k in saved:
            setattr(config, k, True)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(config, k, v)


def _hf_dataset(entry: DatasetEntry) -> Iterator[str]:
    where = f"dataset {entry.HF_ID} ({entry.HF_CONFIG}, split {entry.SPLIT})"
    ds = _hf_load(entry, where)
    if entry.TEXT_FIELD not in ds.column_names:
        raise ConfigError(
            f"{where}: no column {entry.TEXT_FIELD!r} (columns: {ds.column_names}); fix TEXT_FIELD"
        )
    # Row by row so that an N_DOCS cap stops early on large splits (e.g. c4).
    for i, row in enumerate(ds.select_columns([entry.TEXT_FIELD])):
        yield _as_text(row[entry.TEXT_FIELD], f"{where} row {i}")


def _hf_rows(entry: DatasetEntry) -> list[dict[str, Any]]:
    """The rows of an ARC-format hub split (at most N_QUESTIONS), from the local cache."""
    where = f"dataset {entry.HF_ID} ({entry.HF_CONFIG}, split {entry.SPLIT})"
    ds = _hf_load(entry, where)
    n = len(ds) if entry.N_QUESTIONS is None else min(len(ds), entry.N_QUESTIONS)
    return [dict(ds[i]) for i in range(n)]


def _hf_load(entry: DatasetEntry, where: str) -> Any:
    offline = not entry.ALLOW_HUB
    with _offline_env(offline):
        try:
            import datasets
        except ImportError as e:
            raise ConfigError(
                f"{where} needs the optional `datasets` package; "
                f"run `pip install {CANON.PROJECT.NAME}[datasets]`"
            ) from e
        with _offline_config(datasets, offline):
            try:
                ds = datasets.load_dataset(str(entry.HF_ID), entry.HF_CONFIG, split=entry.SPLIT)
            except Exception as e:  # datasets raises many types for a missing cache entry
                hint = "; it is not in the local cache: set ALLOW_HUB: true" if offline else ""
                raise ConfigError(
                    f"{where} could not be loaded ({type(e).__name__}: {e}){hint}"
                ) from e
    return ds
