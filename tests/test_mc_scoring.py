"""Multiple-choice prompts, continuation tokens and batched option scores
(spec/14_GENERALIZATION_MC_ABLATIONS.md), against one unbatched forward per option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from canon import CANON
from critspec.data.mc import synthetic_cloze_questions
from critspec.mc.consumer import score_in_process
from critspec.mc.encode import encode_options, encode_pair
from critspec.mc.prompts import label_prompt, option_requests, text_prompt
from critspec.mc.score import QuestionScores, plan_scoring, predictions
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.models.hooks import intervene
from critspec.models.loading import load_model
from critspec.passes.intervention import default_intervention

F = CANON.ENUM.ARC_FIELD
REGIME = CANON.ENUM.MC_REGIME
CPU = torch.device(CANON.ENUM.DEVICE.CPU)
SMALL = EmbeddedModelDef(n_layers=2, hidden=32, d_ff=48, n_heads=4, max_positions=64, seed=5)
QUESTION = {
    "id": "q0",
    F.QUESTION: "Which is wet?",
    F.CHOICES: {F.LABEL: ["A", "B"], F.TEXT: ["the river", "a stone"]},
    F.ANSWER_KEY: "A",
}


@pytest.fixture(scope="module")
def bpe() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here on a few lines: merges across a space exist."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["Question: Which is wet?\nAnswer: A the river", "Answer: B a stone"] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def test_prompts_follow_the_canon_templates() -> None:
    lines = "\n".join(
        CANON.CONST.MC_LABEL_CHOICE_LINE.format(label=lab, text=t)
        for lab, t in (("A", "the river"), ("B", "a stone"))
    )
    assert label_prompt(QUESTION) == CANON.CONST.MC_LABEL_PROMPT.format(
        question="Which is wet?", choices=lines
    )
    assert text_prompt(QUESTION) == CANON.CONST.MC_TEXT_PROMPT.format(question="Which is wet?")
    reqs = option_requests(QUESTION, REGIME.TEXT)
    assert [r.continuation for r in reqs] == [" the river", " a stone"]
    assert [r.n_chars for r in reqs] == [9, 7]
    assert [r.continuation for r in option_requests(QUESTION, REGIME.LABEL)] == [" A", " B"]


def test_continuation_is_whole_minus_context_and_trailing_space_moves(bpe) -> None:
    ctx, cont = encode_pair(bpe, "Answer:", " A the river")
    whole = bpe("Answer: A the river", add_special_tokens=False)["input_ids"]
    assert ctx == bpe("Answer:", add_special_tokens=False)["input_ids"]
    assert ctx + cont == whole
    # "Answer: " + "A ..." scores the same tokens as "Answer:" + " A ...".
    assert encode_pair(bpe, "Answer: ", "A the river") == (ctx, cont)
    # Without the move the space would be a context token of its own.
    naive = bpe("Answer: ", add_special_tokens=False)["input_ids"]
    assert naive != ctx


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    model_dir = materialize(SMALL, Path(tmp_path_factory.mktemp("mc_model")))
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        device=CPU,
        dtype=torch.float32,
        local_dir=model_dir,
    )


def _one_pass_per_option(loaded, options) -> np.ndarray:
    out = []
    for o in options:
        ids = torch.tensor([list(o.context_ids + o.continuation_ids)])
        with torch.inference_mode():
            logp = torch.log_softmax(loaded.model(input_ids=ids).logits[0].double(), -1)
        n = len(o.context_ids)
        out.append(sum(float(logp[n - 1 + j, c]) for j, c in enumerate(o.continuation_ids)))
    return np.array(out)


@pytest.mark.parametrize("g", [CANON.CONST.GAIN_BASELINE, CANON.CONST.PHASE0_PROBE_GAIN])
@pytest.mark.parametrize("regime", [REGIME.LABEL, REGIME.TEXT])
def test_batched_scores_equal_one_forward_per_option(loaded, regime: str, g: float) -> None:
    questions = [*synthetic_cloze_questions(5, 4, seed=3), QUESTION]
    tok = loaded.tokenizer
    encoded = [
        encode_options(tok, option_requests(q, regime), SMALL.max_positions, q["id"])
        for q in questions
    ]
    iv = default_intervention(g)
    scores = score_in_process(loaded, encoded, batch_size=3, intervention=iv)
    for opts, got in zip(encoded, scores, strict=True):
        with intervene(loaded.sites, iv):
            ref = _one_pass_per_option(loaded, opts)
        np.testing.assert_allclose(
            got.loglik, ref, rtol=0, atol=CANON.CONST.MC_LOGLIK_MATCH_TOL_ABS
        )
        assert got.n_tokens.tolist() == [len(o.continuation_ids) for o in opts]
    # Single-token options of the synthetic task: one sequence per question; the
    # two-word texts of QUESTION need one sequence per option.
    singles = 5 + (1 if regime == REGIME.LABEL else 2)
    assert plan_scoring(encoded, 0).n_sequences == singles


def test_predictions_break_ties_to_the_first_and_normalize_by_characters() -> None:
    s = QuestionScores(np.array([-4.0, -4.0, -6.0]), np.array([1, 1, 2]))
    assert predictions(s, [2, 2, 6]) == (0, 2)  # -6/6 = -1 beats -4/2 = -2


def test_too_long_and_empty_are_refused(loaded) -> None:
    from critspec.errors import ConfigError

    long_q = {**QUESTION, F.QUESTION: " ".join(["the"] * 80)}
    with pytest.raises(ConfigError, match="positions"):
        encode_options(
            loaded.tokenizer, option_requests(long_q, REGIME.TEXT), SMALL.max_positions, "q"
        )


def test_chat_template_wraps_the_prompt_and_drops_the_delimiter(loaded) -> None:
    import copy

    from critspec.errors import ConfigError

    tok = copy.deepcopy(loaded.tokenizer)
    with pytest.raises(ConfigError, match="no chat template"):
        option_requests(QUESTION, REGIME.LABEL, tok, chat=True)
    tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>\n{% endif %}"
    )
    reqs = option_requests(QUESTION, REGIME.LABEL, tok, chat=True)
    assert reqs[0].context == f"<user>{label_prompt(QUESTION)}\n<assistant>\n"
    assert [r.continuation for r in reqs] == ["A", "B"]
    # The context's trailing newline moves into the continuation when tokenized.
    ctx, cont = encode_pair(tok, reqs[0].context, reqs[0].continuation)
    assert ctx == tok(reqs[0].context.rstrip(), add_special_tokens=False)["input_ids"]
