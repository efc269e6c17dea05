"""A pass-engine consumer that reads chosen next-token log-probabilities
(spec/14_GENERALIZATION_MC_ABLATIONS.md "Batched scoring"; the consumer protocol of
spec/06_MODELS_AND_HOOKS.md §7).

Read i = (row n, position t, token c) gives log softmax(logits[n, t])[c], in float32 from
the model's logits, returned as float64 [M] in read order. Unlike the engine's span
consumer, the token need not be in the sequence, so every single-token option of a
question is read from one position of one sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from canon import CANON
from critspec.errors import ConfigError
from critspec.mc.encode import EncodedOption
from critspec.mc.score import QuestionScores, plan_scoring, question_scores
from critspec.passes.consumers.base import NoU, PassShape
from critspec.passes.engine import drive, model_forward
from critspec.passes.intervention import Intervention

LOGP = "logp"


@dataclass(frozen=True, eq=False)
class TokenReadsConsumer:
    """reads int64 [M, 3]: (window row, logits position, token id)."""

    kind: ClassVar[str] = CANON.ENUM.CONSUMER.OPTION_LOGLIK
    needs_u: ClassVar[bool] = False
    needs_logits: ClassVar[bool] = True

    reads: np.ndarray

    def start(self, shape: PassShape, device: torch.device) -> _ReadsAccumulator:
        reads = np.asarray(self.reads, dtype=np.int64).reshape(-1, 3)
        n, t = reads[:, 0], reads[:, 1]
        bad = (n < 0) | (n >= shape.n_windows) | (t < 0) | (t >= shape.seq_len)
        if bad.any():
            raise ConfigError(
                f"token read {reads[np.argmax(bad)].tolist()} is outside the pass's "
                f"{shape.n_windows} x {shape.seq_len} positions"
            )
        return _ReadsAccumulator(reads)


class _ReadsAccumulator(NoU):
    def __init__(self, reads: np.ndarray) -> None:
        self.reads = reads
        self.logp = np.full(len(reads), np.nan, dtype=np.float64)

    def on_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, row_start: int) -> None:
        rows = logits.shape[0]
        mine = np.flatnonzero(
            (self.reads[:, 0] >= row_start) & (self.reads[:, 0] < row_start + rows)
        )
        if not len(mine):
            return
        sel = torch.from_numpy(self.reads[mine]).to(logits.device)
        # Only the read positions are normalized: [m, V] instead of [B, T, V].
        picked = logits[sel[:, 0] - row_start, sel[:, 1]].float()
        logp = torch.log_softmax(picked, dim=-1).gather(1, sel[:, 2:3]).squeeze(1)
        self.logp[mine] = logp.double().cpu().numpy()

    def finish(self) -> dict[str, np.ndarray]:
        return {LOGP: self.logp}


def score_in_process(
    loaded: Any,
    questions: Sequence[Sequence[EncodedOption]],
    batch_size: int,
    intervention: Intervention,
    pad_id: int = 0,
    share_context: bool = True,
) -> list[QuestionScores]:
    """Every question's option scores from one engine pass in this process (tests and the
    benchmark; the phase maps the same consumer as a pass task)."""
    plan = plan_scoring(questions, pad_id, share_context)
    device = next(loaded.model.parameters()).device
    [out] = drive(
        model_forward(loaded),
        torch.from_numpy(plan.input_ids),
        n_layers=loaded.info.n_layers,
        d_ff=loaded.info.d_ff,
        batch_size=batch_size,
        intervention=intervention,
        consumers=(TokenReadsConsumer(plan.reads),),
        device=device,
    )
    return question_scores(plan, out[LOGP])
