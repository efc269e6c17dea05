"""Dataset entries and local/synthetic/HF text sources (spec/05_DATASETS_SAMPLING_HASHING.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from canon import CANON
from critspec.data.sources import DatasetEntry, load_texts
from critspec.data.synthetic import generate_corpus
from critspec.errors import ConfigError

LOCAL = CANON.ENUM.DATASET_SOURCE.LOCAL_FILE
FIELD = "body"
DOCS = ["first doc line one\nline two", "second doc", "third, with punctuation."]


def _canon_entry(group: type) -> dict:
    return {k: v for k, v in vars(group).items() if not k.startswith("_")}


def _local(path: Path, **extra) -> DatasetEntry:
    return DatasetEntry(SOURCE=LOCAL, PATH=path, **extra)


def test_txt_documents_are_separated_by_blank_lines(tmp_path: Path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n" + DOCS[0] + "\n \n" + DOCS[1] + "\n\n\n\n" + DOCS[2] + "\n")
    assert load_texts(_local(path)) == DOCS
    assert load_texts(_local(path, N_DOCS=2)) == DOCS[:2]


def test_jsonl_round_trip_drops_empty_and_null(tmp_path: Path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {FIELD: DOCS[0]},
        {FIELD: ""},
        {FIELD: DOCS[1], "id": 2},
        {FIELD: None},
        {FIELD: DOCS[2]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_texts(_local(path, TEXT_FIELD=FIELD)) == DOCS
    with pytest.raises(ConfigError, match=r"corpus.jsonl:1: no field 'title'"):
        load_texts(_local(path, TEXT_FIELD="title"))
    with pytest.raises(ConfigError, match="needs TEXT_FIELD"):
        load_texts(_local(path))


def test_parquet_round_trip(tmp_path: Path):
    path = tmp_path / "corpus.parquet"
    pq.write_table(
        pa.table({FIELD: [DOCS[0], None, DOCS[1], "  ", DOCS[2]], "n": [1, 2, 3, 4, 5]}), path
    )
    assert load_texts(_local(path, TEXT_FIELD=FIELD)) == DOCS
    with pytest.raises(ConfigError, match="no column 'title'"):
        load_texts(_local(path, TEXT_FIELD="title"))


def test_bad_local_files_fail_with_the_path(tmp_path: Path):
    with pytest.raises(ConfigError, match="absent.txt does not exist"):
        load_texts(_local(tmp_path / "absent.txt"))
    odd = tmp_path / "corpus.csv"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="unsupported suffix '.csv'"):
        load_texts(_local(odd, TEXT_FIELD=FIELD))


def test_synthetic_entry_from_canon_equals_the_generator():
    raw = _canon_entry(CANON.DATASET.EMBEDDED_B)
    entry = DatasetEntry.model_validate(raw)
    assert load_texts(entry) == generate_corpus(raw["GENERATOR"], raw["N_DOCS"], raw["SEED"])


def test_entries_are_validated_per_source():
    with pytest.raises(ValidationError, match="needs SEED"):
        DatasetEntry(
            SOURCE=CANON.ENUM.DATASET_SOURCE.SYNTHETIC,
            GENERATOR=CANON.ENUM.SYNTHETIC_GENERATOR.A,
            N_DOCS=2,
        )
    with pytest.raises(ValidationError, match="does not take PATH"):
        DatasetEntry.model_validate({**_canon_entry(CANON.DATASET.EMBEDDED_A), "PATH": "x.txt"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        DatasetEntry.model_validate({**_canon_entry(CANON.DATASET.EMBEDDED_A), "COLOR": 1})
    with pytest.raises(ValidationError):
        DatasetEntry(SOURCE="ftp", PATH="x.txt")
    hf = DatasetEntry.model_validate(_canon_entry(CANON.DATASET.PAPER_A))
    assert hf.ALLOW_HUB is False


def test_hf_dataset_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    entry = DatasetEntry.model_validate(_canon_entry(CANON.DATASET.PAPER_A))
    with pytest.raises(ConfigError, match=r"pip install .*\[datasets\]"):
        load_texts(entry)
