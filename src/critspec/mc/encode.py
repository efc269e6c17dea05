"""Continuation tokenization of multiple-choice options (spec/14_GENERALIZATION_MC_ABLATIONS.md
"Continuation tokens"), the convention of lm-evaluation-harness:

a trailing whitespace run of the context moves to the front of the continuation; the
continuation's tokens are tokens(context + continuation) minus the first
len(tokens(context)) of them; the scored sequence is tokens(context) + those tokens.
No special tokens are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critspec.errors import ConfigError
from critspec.mc.prompts import OptionRequest


@dataclass(frozen=True)
class EncodedOption:
    context_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    n_chars: int


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) with the trailing context whitespace moved over."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = _ids(tokenizer, context + continuation)
    ctx = _ids(tokenizer, context)
    return ctx, whole[len(ctx) :]


def encode_options(
    tokenizer: Any, requests: Sequence[OptionRequest], max_len: int, where: str
) -> list[EncodedOption]:
    out = []
    for k, req in enumerate(requests):
        ctx, cont = encode_pair(tokenizer, req.context, req.continuation)
        if not ctx or not cont:
            raise ConfigError(
                f"{where} option {k}: the {'context' if not ctx else 'continuation'} has no "
                "tokens; every question and option needs text"
            )
        if len(ctx) + len(cont) - 1 > max_len:
            raise ConfigError(
                f"{where} option {k}: {len(ctx) + len(cont) - 1} tokens exceed the model's "
                f"{max_len} positions; shorten the question or drop it from the file"
            )
        out.append(EncodedOption(tuple(ctx), tuple(cont), req.n_chars))
    return out
