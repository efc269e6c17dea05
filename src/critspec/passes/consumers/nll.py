"""Consumer: per-token next-token negative log-likelihood (spec/06_MODELS_AND_HOOKS.md §7).

nll[n, t] = -log softmax(logits[n, t])[ids[n, t + 1]] in nats, computed in float32
from the model's logits, for t = 0..T-2. Output: `nll` float32 [N, T - 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from canon import CANON
from critspec.passes.consumers.base import NoU, PassShape

NLL = CANON.ENUM.CONSUMER.NLL  # the output array is named after the consumer


def next_token_nll(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """float32 [B, T - 1]: -log p(ids[:, t + 1] | ids[:, :t + 1])."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = input_ids[:, 1:].to(logp.device).long().unsqueeze(-1)
    return -logp.gather(-1, target).squeeze(-1)


@dataclass(frozen=True)
class NllConsumer:
    kind: ClassVar[str] = CANON.ENUM.CONSUMER.NLL
    needs_u: ClassVar[bool] = False
    needs_logits: ClassVar[bool] = True

    def start(self, shape: PassShape, device: torch.device) -> _NllAccumulator:
        return _NllAccumulator(shape)


class _NllAccumulator(NoU):
    def __init__(self, shape: PassShape) -> None:
        self.out = np.zeros((shape.n_windows, shape.seq_len - 1), dtype=np.float32)

    def on_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, row_start: int) -> None:
        nll = next_token_nll(logits, input_ids)
        self.out[row_start : row_start + nll.shape[0]] = nll.cpu().numpy()

    def finish(self) -> dict[str, np.ndarray]:
        return {NLL: self.out}
