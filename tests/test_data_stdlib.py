"""Text shipped with Python as Datasets A, B and MC, and the gguf_package checks that need
no wheel (spec/05_DATASETS_SAMPLING_HASHING.md "Real-weights profile")."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import platform
import re
import string
import tokenize
from pathlib import Path

import numpy as np
import pytest
import yaml

from canon import CANON
from critspec.cli import main
from critspec.data.sources import DatasetEntry, content_provenance, load_mc_questions, load_texts
from critspec.data.stdlib import MIN_CLOZE_WORD_LEN, content_sha256
from critspec.data.windows import TokenSlice, slice_sha256
from critspec.errors import ConfigError
from critspec.models.gguf_package import GgufPackageDef, locate, verify_file
from critspec.paths import project_root

F = CANON.ENUM.ARC_FIELD

SRC = CANON.ENUM.DATASET_SOURCE
MODULES = tuple(CANON.DATASET.SMOLLM2_B.MODULES)
MC = CANON.DATASET.SMOLLM2_MC
MODEL = CANON.MODEL.SMOLLM2_135M_INSTRUCT
WORD = re.compile(r"[A-Za-z]+")
_SKIP_TOKENS = (tokenize.ENCODING, tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE)


def entry_a() -> DatasetEntry:
    return DatasetEntry(SOURCE=SRC.STDLIB_TOPICS)


def entry_b() -> DatasetEntry:
    return DatasetEntry(SOURCE=SRC.STDLIB_DOCSTRINGS, MODULES=MODULES)


def entry_mc() -> DatasetEntry:
    return DatasetEntry(
        SOURCE=SRC.STDLIB_DOCSTRING_CLOZE,
        MODULES=MODULES,
        N_QUESTIONS=MC.N_QUESTIONS,
        N_CHOICES=MC.N_CHOICES,
        CONTEXT_WORDS=MC.CONTEXT_WORDS,
    )


def test_corpora_are_byte_stable_across_two_loads() -> None:
    for entry in (entry_a(), entry_b()):
        first, second = load_texts(entry), load_texts(entry)
        assert first == second and len(first) > 10
        assert b"\x00".join(d.encode() for d in first) == b"\x00".join(d.encode() for d in second)
        assert content_provenance(entry, first) == content_provenance(entry, second)


def test_topics_are_the_pydoc_topics_in_key_order() -> None:
    from pydoc_data.topics import topics

    docs = load_texts(entry_a())
    assert len(docs) == len([v for v in topics.values() if v.strip()])
    assert sorted(docs) == sorted(v for v in topics.values() if v.strip())
    # Some topics share a text (aliases), so order is checked key by key, in code-point order.
    keys = [k for k in topics if topics[k].strip()]
    keys.sort(key=lambda k: [ord(c) for c in k])
    assert docs == [topics[k] for k in keys]


def test_docstring_documents_start_with_the_imported_module_doc() -> None:
    docs = load_texts(entry_b())
    assert len(docs) == len(MODULES)
    n_module_docs = 0
    for name, doc in zip(MODULES, docs, strict=True):
        # Independent route: the first token of the source file is the module docstring
        # (tokenize, not ast; importing would not do: csv replaces its __doc__ at import).
        path = importlib.util.find_spec(name).origin
        with open(path, "rb") as f:
            tokens = [t for t in tokenize.tokenize(f.readline) if t.type not in _SKIP_TOKENS]
        if tokens[0].type != tokenize.STRING:  # no module docstring (e.g. dataclasses)
            continue
        expected = inspect.cleandoc(ast.literal_eval(tokens[0].string))
        assert expected and doc.startswith(expected), name
        n_module_docs += 1
    assert n_module_docs > len(MODULES) // 2


def test_content_hash_names_the_python_and_enters_the_slice_hash() -> None:
    docs = load_texts(entry_a())
    prov = content_provenance(entry_a(), docs)
    hand = hashlib.sha256(b"".join(d.encode("utf-8") + b"\x00" for d in docs)).hexdigest()
    assert prov["content_sha256"] == hand
    assert platform.python_version() in prov["content_origin"]
    # A corpus of another Python: one character more changes the content hash ...
    assert content_sha256([docs[0] + " ", *docs[1:]]) != hand
    # ... and the slice hash, although the windows are the same.
    s = TokenSlice(np.array([0, 3], dtype=np.int64), np.arange(8, dtype=np.int32).reshape(2, 4))
    tok = "ab" * 32
    without = slice_sha256(s, tok)
    with_content = slice_sha256(s, tok, hand)
    assert with_content != without != slice_sha256(s, tok, "cd" * 32)
    h = hashlib.sha256()
    for idx, row in zip(s.window_index, s.input_ids, strict=True):
        h.update(int(idx).to_bytes(8, "little", signed=True))
        h.update(b"".join(int(t).to_bytes(4, "little", signed=True) for t in row))
    h.update(tok.encode())
    h.update(hand.encode())
    assert with_content == h.hexdigest()
    # Synthetic text is not Python's: no origin, but still a content hash.
    fields = {k: v for k, v in vars(CANON.DATASET.EMBEDDED_A).items() if not k.startswith("_")}
    synthetic = DatasetEntry(**fields)
    assert set(content_provenance(synthetic, ["x"])) == {"content_sha256"}


def test_cloze_questions_are_arc_format_and_true_continuations() -> None:
    questions = load_mc_questions(entry_mc())
    assert questions == load_mc_questions(entry_mc())  # deterministic
    assert len(questions) == MC.N_QUESTIONS
    collapsed = [" ".join(d.split()) for d in load_texts(entry_b())]
    prefix, suffix = CANON.CONST.CLOZE_QUESTION_TEMPLATE.split("{context}")
    labels = list(string.ascii_uppercase[: MC.N_CHOICES])
    for q in questions:
        assert set(q) == {"id", F.QUESTION, F.CHOICES, F.ANSWER_KEY, "task"}
        assert q["task"] == CANON.ENUM.MC_TASK.CLOZE_FROM_DOCSTRINGS
        assert q[F.CHOICES][F.LABEL] == labels and q[F.ANSWER_KEY] in labels
        texts = q[F.CHOICES][F.TEXT]
        answer = texts[labels.index(q[F.ANSWER_KEY])]
        assert len({t.lower() for t in texts}) == MC.N_CHOICES
        assert all(t.isalpha() and len(t) >= MIN_CLOZE_WORD_LEN for t in texts)
        assert q[F.QUESTION].startswith(prefix) and q[F.QUESTION].endswith(suffix)
        context = q[F.QUESTION][len(prefix) : len(q[F.QUESTION]) - len(suffix)]
        assert len(WORD.findall(context)) == MC.CONTEXT_WORDS
        # The answer is what the docstring text says right after the context.
        assert any(f"{context} {answer}" in d or f"{context}{answer}" in d for d in collapsed)
    assert len({q[F.ANSWER_KEY] for q in questions}) > 1
    assert len({q["id"] for q in questions}) == len(questions)


def test_cloze_asks_for_more_than_the_text_has() -> None:
    entry = DatasetEntry(
        **{**entry_mc().model_dump(exclude_unset=True), "MODULES": ("queue",), "N_QUESTIONS": 10**5}
    )
    with pytest.raises(ConfigError, match="candidate words"):
        load_mc_questions(entry)


def test_docstring_module_without_python_source_is_refused() -> None:
    entry = DatasetEntry(SOURCE=SRC.STDLIB_DOCSTRINGS, MODULES=("sys",))
    with pytest.raises(ConfigError, match="'sys' has no Python source"):
        load_texts(entry)


def test_stdlib_entries_reject_foreign_keys() -> None:
    with pytest.raises(ValueError, match="needs MODULES"):
        DatasetEntry(SOURCE=SRC.STDLIB_DOCSTRINGS)
    with pytest.raises(ValueError, match="does not take SEED"):
        DatasetEntry(SOURCE=SRC.STDLIB_TOPICS, SEED=1)


def _defn(**changes: object) -> GgufPackageDef:
    entry = {k: v for k, v in vars(MODEL).items() if not k.startswith("_")}
    return GgufPackageDef.from_canon({**entry, **changes})


def test_gguf_file_checks_name_the_fix(tmp_path: Path) -> None:
    fix = _defn().install_command
    assert "--no-deps" in fix and f"{MODEL.DISTRIBUTION}=={MODEL.VERSION}" in fix
    payload = b"GGUF" + bytes(range(256)) * 4
    good = tmp_path / "model.gguf"
    good.write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    verify_file(good, len(payload), sha, fix)  # passes
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(payload[:100])
    with pytest.raises(ConfigError, match="truncated") as e:
        verify_file(cut, len(payload), sha, fix)
    assert fix in str(e.value)
    flipped = tmp_path / "flipped.gguf"
    flipped.write_bytes(b"X" + payload[1:])
    with pytest.raises(ConfigError, match="sha256") as e:
        verify_file(flipped, len(payload), sha, fix)
    assert fix in str(e.value)
    with pytest.raises(ConfigError, match="missing") as e:
        verify_file(tmp_path / "absent.gguf", len(payload), sha, fix)


def test_missing_package_is_one_line_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = "critspec-no-such-model-wheel"
    with pytest.raises(ConfigError, match="is not installed"):
        locate(_defn(DISTRIBUTION=absent))
    with pytest.raises(ConfigError, match="CONVERTER"):
        _defn(CONVERTER=MODEL.CONVERTER + 1)
    # Through the CLI: Phase 1 of the real profile with the wheel's name changed.
    models = tmp_path / CANON.PATH.CONFIG_MODELS_INCLUDE
    entry = {
        "SOURCE": "CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE",
        **_entry_refs(),
        "DISTRIBUTION": absent,
    }
    models.write_text(
        yaml.safe_dump({"models": [{"role": "CANON.ENUM.MODEL_ROLE.INSTRUCT", "entry": entry}]})
    )
    pipeline = yaml.safe_load((project_root() / CANON.PATH.CONFIG_SMOLLM2_PIPELINE).read_text())
    pipeline["models_file"] = str(models)
    pipeline["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_SMOLLM2_DATASETS)
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(pipeline))
    argv = [CANON.CLI.SUBCOMMAND.PHASE1_CALIBRATE, "--config", str(config)]
    argv += ["--runs-dir", str(tmp_path / "store"), "--model-role", CANON.ENUM.MODEL_ROLE.INSTRUCT]
    assert main(argv) == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"pip install --no-deps --force-reinstall {absent}==" in err[0], err


def _entry_refs() -> dict[str, str]:
    keys = ("VERSION", "FILE", "SHA256", "CONVERTER")
    return {k: f"CANON.MODEL.SMOLLM2_135M_INSTRUCT.{k}" for k in keys}


def test_single_role_profile_refuses_the_other_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project_root() / CANON.PATH.CONFIG_SMOLLM2_PIPELINE
    argv = [CANON.CLI.SUBCOMMAND.PHASE2_GAIN_GRID, "--config", str(config)]
    argv += ["--runs-dir", str(tmp_path), "--model-role", CANON.ENUM.MODEL_ROLE.BASE]
    assert main(argv) == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"declares only {CANON.ENUM.MODEL_ROLE.INSTRUCT}" in err[0], err
    assert not list(tmp_path.iterdir())
