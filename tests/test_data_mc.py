"""Multiple-choice questions in ARC format (spec/14_GENERALIZATION_MC_ABLATIONS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canon import CANON
from critspec.data import mc
from critspec.data.sources import DatasetEntry, load_mc_questions, load_texts
from critspec.data.synthetic import NAMES, TIMES, lexicon
from critspec.errors import ConfigError

F = CANON.ENUM.ARC_FIELD
SRC = CANON.ENUM.DATASET_SOURCE


def _item(i: int, labels: list, key: str) -> dict:
    return {
        "id": f"q{i}",
        F.QUESTION: f"question {i}?",
        F.CHOICES: {F.LABEL: labels, F.TEXT: [f"opt {j}" for j in range(len(labels))]},
        F.ANSWER_KEY: key,
    }


def test_json_and_jsonl_files_give_the_same_questions(tmp_path: Path) -> None:
    items = [_item(0, ["A", "B", "C"], "B"), _item(1, ["1", "2", "3", "4"], "3")]
    j, jl = tmp_path / "q.json", tmp_path / "q.jsonl"
    j.write_text(json.dumps(items))
    jl.write_text("\n".join(json.dumps(x) for x in items) + "\n\n")
    a = load_mc_questions(DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=j))
    assert a == load_mc_questions(DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=jl))
    # Digit labels and keys become letters, as lm-evaluation-harness maps them.
    assert a[1][F.CHOICES][F.LABEL] == ["A", "B", "C", "D"] and a[1][F.ANSWER_KEY] == "C"
    assert [mc.gold_index(q) for q in a] == [1, 2]
    capped = DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=j, N_QUESTIONS=1)
    assert load_mc_questions(capped) == a[:1]
    assert load_texts(capped) == [a[0][F.QUESTION]]


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ({F.QUESTION: "q", F.CHOICES: {F.LABEL: ["A"], F.TEXT: ["x"]}}, "lacks"),
        (_item(0, ["A", "A"], "A"), "distinct"),
        (_item(0, ["A", "B"], "C"), "answer key"),
        ({**_item(0, ["A", "B"], "A"), F.CHOICES: {F.LABEL: ["A", "B"], F.TEXT: ["x"]}}, "equal"),
        (_item(0, ["A"], "A"), "at least 2"),
    ],
)
def test_malformed_items_are_refused_in_one_line(tmp_path: Path, item: dict, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([item]))
    with pytest.raises(ConfigError, match=match) as err:
        load_mc_questions(DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=path))
    assert "\n" not in str(err.value)


def test_missing_file_and_wrong_suffix_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_mc_questions(DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=tmp_path / "none.json"))
    (tmp_path / "q.csv").write_text("a,b\n")
    with pytest.raises(ConfigError, match="question file"):
        load_mc_questions(DatasetEntry(SOURCE=SRC.LOCAL_MC_FILE, PATH=tmp_path / "q.csv"))


def test_hub_source_without_datasets_names_the_extra() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        entry = DatasetEntry(SOURCE=SRC.HF_MC_DATASET, HF_ID="x/y", SPLIT="test")
        with pytest.raises(ConfigError, match=r"\[datasets\]"):
            load_mc_questions(entry)
    else:
        pytest.skip("`datasets` is installed: the refusal without it cannot be shown here")


def test_admissible_next_by_hand() -> None:
    """Generator B's templates: after "did" only a name; after "on" only a time; after
    "the" (sentence start) only a noun; "in" starts the time template only."""
    nouns = {w for topic in lexicon().nouns for w in topic}
    assert mc.admissible_next(["did"]) == set(NAMES)
    assert mc.admissible_next(["on"]) == set(TIMES)
    assert mc.admissible_next(["the"]) == nouns
    assert mc.admissible_next(["in"]) == set(TIMES)
    assert mc.admissible_next(["did", NAMES[0]]) == {w for t in lexicon().verbs for w in t}


def test_synthetic_task_has_exactly_one_admissible_option() -> None:
    entry = DatasetEntry(
        **{k: v for k, v in vars(CANON.DATASET.EMBEDDED_MC).items() if k.isupper()}
    )
    questions = load_mc_questions(entry)
    assert questions == load_mc_questions(entry)
    assert len(questions) == CANON.DATASET.EMBEDDED_MC.N_QUESTIONS
    prefix_start = CANON.CONST.SYNTHETIC_CLOZE_QUESTION_TEMPLATE.split("{context}")[0]
    suffix = CANON.CONST.SYNTHETIC_CLOZE_QUESTION_TEMPLATE.split("{context}")[1]
    keys = set()
    for q in questions:
        context = q[F.QUESTION][len(prefix_start) : len(q[F.QUESTION]) - len(suffix)]
        allowed = mc.admissible_next(context.split(" "))
        texts = q[F.CHOICES][F.TEXT]
        ok = [t in allowed for t in texts]
        assert ok.count(True) == 1 and ok.index(True) == mc.gold_index(q)
        assert len(set(texts)) == len(texts) == CANON.DATASET.EMBEDDED_MC.N_CHOICES
        keys.add(q[F.ANSWER_KEY])
    assert len(keys) > 1


def test_synthetic_task_needs_generator_b() -> None:
    entry = DatasetEntry(
        SOURCE=SRC.SYNTHETIC_CLOZE,
        GENERATOR=CANON.ENUM.SYNTHETIC_GENERATOR.A,
        N_QUESTIONS=2,
        N_CHOICES=4,
        SEED=1,
    )
    with pytest.raises(ConfigError, match="generator"):
        load_mc_questions(entry)
