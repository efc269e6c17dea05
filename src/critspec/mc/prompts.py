"""Prompts and continuations of the two multiple-choice regimes
(spec/14_GENERALIZATION_MC_ABLATIONS.md "Scoring regimes").

- CANON.ENUM.MC_REGIME.LABEL (the study's): the prompt CANON.CONST.MC_LABEL_PROMPT shows
  every choice as CANON.CONST.MC_LABEL_CHOICE_LINE; option k's continuation is
  " {label_k}".
- CANON.ENUM.MC_REGIME.TEXT (lm-evaluation-harness's ARC): the prompt
  CANON.CONST.MC_TEXT_PROMPT; option k's continuation is " {text_k}".

With a chat template (the INSTRUCT role, config `multiple_choice.chat_template`) the
prompt is the user turn of a one-turn conversation with the generation prompt added; the
continuation is then the answer without the delimiter, since the assistant turn starts
fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canon import CANON
from critspec.errors import ConfigError

F = CANON.ENUM.ARC_FIELD
REGIMES = (CANON.ENUM.MC_REGIME.LABEL, CANON.ENUM.MC_REGIME.TEXT)
CHAT_USER_ROLE = "user"


@dataclass(frozen=True)
class OptionRequest:
    """One option to score: log P(continuation | context); n_chars is the length in
    characters of the option as acc_norm divides by it (the label or the choice text)."""

    context: str
    continuation: str
    n_chars: int


def label_prompt(question: dict[str, Any]) -> str:
    lines = [
        CANON.CONST.MC_LABEL_CHOICE_LINE.format(label=lab, text=txt)
        for lab, txt in zip(question[F.CHOICES][F.LABEL], question[F.CHOICES][F.TEXT], strict=True)
    ]
    return CANON.CONST.MC_LABEL_PROMPT.format(
        question=question[F.QUESTION], choices="\n".join(lines)
    )


def text_prompt(question: dict[str, Any]) -> str:
    return CANON.CONST.MC_TEXT_PROMPT.format(question=question[F.QUESTION])


def chat_context(tokenizer: Any, prompt: str) -> str:
    """The prompt as the user turn of the tokenizer's chat template, generation prompt added."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ConfigError(
            "multiple_choice.chat_template is on but the tokenizer has no chat template; "
            "turn it off for this model"
        )
    return tokenizer.apply_chat_template(
        [{"role": CHAT_USER_ROLE, "content": prompt}], tokenize=False, add_generation_prompt=True
    )


def option_requests(
    question: dict[str, Any], regime: str, tokenizer: Any = None, chat: bool = False
) -> list[OptionRequest]:
    """One request per option of `question`, in label order."""
    if regime not in REGIMES:
        raise ConfigError(f"unknown multiple-choice regime {regime!r}; use one of {REGIMES}")
    labels, texts = question[F.CHOICES][F.LABEL], question[F.CHOICES][F.TEXT]
    if regime == CANON.ENUM.MC_REGIME.LABEL:
        prompt, answers = label_prompt(question), list(labels)
    else:
        prompt, answers = text_prompt(question), list(texts)
    delimiter = CANON.CONST.MC_TARGET_DELIMITER
    if chat:
        prompt, delimiter = chat_context(tokenizer, prompt), ""
    return [OptionRequest(prompt, delimiter + a, len(a)) for a in answers]
