"""Option log-likelihoods of multiple-choice questions, batched
(spec/14_GENERALIZATION_MC_ABLATIONS.md "Batched scoring").

log P(option) = sum over its continuation tokens c_j of log softmax(logits at the
position before c_j)[c_j], in float32 from the model's logits, summed in float64.

A question whose options share one context and each have one continuation token (the
label regime with single-token labels) is one sequence — its context — and every option
is read from the logits of its last position. Any other question contributes one
sequence per option, (context + continuation)[:-1]. Sequences go through the model in
batches of `batch_size`, longest first, right-padded with an attention mask (a causal
model's logits at real positions do not depend on the padding after them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from critspec.errors import CheckFailed
from critspec.mc.encode import EncodedOption

# forward(input_ids [B, T] int64, attention_mask [B, T] int64) -> logits [B, T, V]
ForwardLogits = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class QuestionScores:
    loglik: np.ndarray  # float64 [K]
    n_tokens: np.ndarray  # int64 [K]


@dataclass(frozen=True)
class _Sequence:
    question: int
    tokens: tuple[int, ...]
    # (option index, first logits position, continuation ids)
    reads: tuple[tuple[int, int, tuple[int, ...]], ...]


def _plan(questions: Sequence[Sequence[EncodedOption]]) -> list[_Sequence]:
    seqs = []
    for q, options in enumerate(questions):
        shared = len({o.context_ids for o in options}) == 1
        if shared and all(len(o.continuation_ids) == 1 for o in options):
            ctx = options[0].context_ids
            reads = tuple((k, len(ctx) - 1, o.continuation_ids) for k, o in enumerate(options))
            seqs.append(_Sequence(q, ctx, reads))
            continue
        for k, o in enumerate(options):
            full = o.context_ids + o.continuation_ids
            seqs.append(_Sequence(q, full[:-1], ((k, len(o.context_ids) - 1, o.continuation_ids),)))
    return seqs


def n_forward_sequences(questions: Sequence[Sequence[EncodedOption]]) -> int:
    return len(_plan(questions))


def score_questions(
    forward: ForwardLogits,
    questions: Sequence[Sequence[EncodedOption]],
    batch_size: int,
    device: torch.device | str,
    pad_id: int = 0,
) -> list[QuestionScores]:
    """Per question, the log-likelihood and token count of each option."""
    seqs = _plan(questions)
    out = [np.full(len(opts), np.nan) for opts in questions]
    n_tok = [np.array([len(o.continuation_ids) for o in opts], np.int64) for opts in questions]
    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i].tokens), i))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [seqs[i] for i in order[start : start + batch_size]]
            width = max(len(s.tokens) for s in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, s in enumerate(batch):
                ids[row, : len(s.tokens)] = torch.tensor(s.tokens, dtype=torch.long)
                mask[row, : len(s.tokens)] = 1
            logits = forward(ids.to(device), mask.to(device))
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row, s in enumerate(batch):
                for k, pos, cont in s.reads:
                    positions = torch.arange(pos, pos + len(cont), device=logp.device)
                    target = torch.tensor(cont, dtype=torch.long, device=logp.device)
                    vals = logp[row, positions, target]
                    out[s.question][k] = float(vals.double().sum())
    for q, scores in enumerate(out):
        if not np.isfinite(scores).all():
            raise CheckFailed(
                f"question {q}: an option log-likelihood is not finite ({scores.tolist()}); "
                "the model's logits overflowed at this gain"
            )
    return [QuestionScores(o, n) for o, n in zip(out, n_tok, strict=True)]


def predictions(scores: QuestionScores, n_chars: Sequence[int]) -> tuple[int, int]:
    """(argmax of loglik, argmax of loglik / n_chars): acc and acc_norm's choices; ties go
    to the first option, as numpy's argmax (and lm-evaluation-harness) decide."""
    norm = scores.loglik / np.asarray(n_chars, dtype=np.float64)
    return int(np.argmax(scores.loglik)), int(np.argmax(norm))
