"""Option log-likelihoods of multiple-choice questions, batched on the pass engine
(spec/14_GENERALIZATION_MC_ABLATIONS.md "Batched scoring").

log P(option) = sum over its continuation tokens c_j of log softmax(logits at the
position before c_j)[c_j], in float32 from the model's logits, summed in float64.

A question whose options share one context and each have one continuation token (the
label regime with single-token labels) is one sequence — its context — and every option
is read from the logits of its last position. Any other question contributes one
sequence per option, (context + continuation)[:-1]. The sequences are right-padded into
one [S, W] array of token ids (longest first) that the pass engine runs in batches: a
causal model's logits at a real position do not depend on the padding after it. Each
continuation token is one read (sequence, position, token) of the `TokenReadsConsumer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from critspec.errors import CheckFailed
from critspec.mc.encode import EncodedOption


@dataclass(frozen=True)
class QuestionScores:
    loglik: np.ndarray  # float64 [K]
    n_tokens: np.ndarray  # int64 [K]


@dataclass(frozen=True)
class ScoringPlan:
    """input_ids int64 [S, W] (right-padded); reads int64 [M, 3] (sequence, position,
    token); owner int64 [M, 2] (question, option) of each read; options per question."""

    input_ids: np.ndarray
    reads: np.ndarray
    owner: np.ndarray
    n_options: tuple[int, ...]

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])


def plan_scoring(
    questions: Sequence[Sequence[EncodedOption]], pad_id: int, share_context: bool = True
) -> ScoringPlan:
    """The sequences and reads of every question; share_context=False gives every option
    its own sequence (the benchmark's reference)."""
    seqs: list[tuple[tuple[int, ...], list[tuple[int, int, int, int]]]] = []
    for q, options in enumerate(questions):
        shared = len({o.context_ids for o in options}) == 1
        if share_context and shared and all(len(o.continuation_ids) == 1 for o in options):
            ctx = options[0].context_ids
            reads = [(len(ctx) - 1, o.continuation_ids[0], q, k) for k, o in enumerate(options)]
            seqs.append((ctx, reads))
            continue
        for k, o in enumerate(options):
            full = o.context_ids + o.continuation_ids
            start = len(o.context_ids) - 1
            reads = [(start + j, c, q, k) for j, c in enumerate(o.continuation_ids)]
            seqs.append((full[:-1], reads))
    # Longest first (stable): batches of similar length, as lm-evaluation-harness orders.
    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i][0]), i))
    width = max(len(s[0]) for s in seqs)
    input_ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    reads, owner = [], []
    for row, i in enumerate(order):
        tokens, seq_reads = seqs[i]
        input_ids[row, : len(tokens)] = tokens
        for pos, tok, q, k in seq_reads:
            reads.append((row, pos, tok))
            owner.append((q, k))
    return ScoringPlan(
        input_ids=input_ids,
        reads=np.asarray(reads, dtype=np.int64).reshape(-1, 3),
        owner=np.asarray(owner, dtype=np.int64).reshape(-1, 2),
        n_options=tuple(len(o) for o in questions),
    )


def question_scores(plan: ScoringPlan, logp: np.ndarray) -> list[QuestionScores]:
    """Sum the reads' log-probabilities (float64 [M]) into each option's log-likelihood."""
    out = [np.zeros(k) for k in plan.n_options]
    n_tok = [np.zeros(k, dtype=np.int64) for k in plan.n_options]
    for (q, k), value in zip(plan.owner.tolist(), np.asarray(logp, np.float64), strict=True):
        out[q][k] += value
        n_tok[q][k] += 1
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
