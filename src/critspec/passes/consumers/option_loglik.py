"""Consumer: option log-likelihoods for multiple choice (spec/06_MODELS_AND_HOOKS.md §7).

Each option is a span (window row n, start s, end e) of token positions, 1 <= s < e <= T:
its log-likelihood is sum_{t=s}^{e-1} log p(ids[n, t] | ids[n, :t]), in float64 from
float32 log-softmax. Output: `loglik` float64 [M] and `n_tokens` int64 [M], in span order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from canon import CANON
from critspec.errors import ConfigError
from critspec.passes.consumers.base import NoU, PassShape
from critspec.passes.consumers.nll import next_token_nll

LOGLIK, N_TOKENS = "loglik", "n_tokens"


@dataclass(frozen=True, eq=False)
class OptionLogLikConsumer:
    """spans int64 [M, 3]: (window row, first option token, one past the last)."""

    kind: ClassVar[str] = CANON.ENUM.CONSUMER.OPTION_LOGLIK
    needs_u: ClassVar[bool] = False
    needs_logits: ClassVar[bool] = True

    spans: np.ndarray

    def start(self, shape: PassShape, device: torch.device) -> _OptionAccumulator:
        spans = np.asarray(self.spans, dtype=np.int64).reshape(-1, 3)
        n, s, e = spans.T
        bad = (n < 0) | (n >= shape.n_windows) | (s < 1) | (e <= s) | (e > shape.seq_len)
        if bad.any():
            raise ConfigError(
                f"option span {spans[np.argmax(bad)].tolist()} is not (row < {shape.n_windows}, "
                f"1 <= start < end <= {shape.seq_len}): an option needs a context token before it"
            )
        return _OptionAccumulator(spans)


class _OptionAccumulator(NoU):
    def __init__(self, spans: np.ndarray) -> None:
        self.spans = spans
        self.loglik = np.zeros(len(spans), dtype=np.float64)

    def on_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, row_start: int) -> None:
        rows = logits.shape[0]
        mine = np.flatnonzero(
            (self.spans[:, 0] >= row_start) & (self.spans[:, 0] < row_start + rows)
        )
        if not len(mine):
            return
        # Token t is predicted at position t - 1: -nll[:, t - 1].
        logp = -next_token_nll(logits, input_ids).double().cpu().numpy()
        for i in mine:
            n, s, e = self.spans[i]
            self.loglik[i] = logp[n - row_start, s - 1 : e - 1].sum()

    def finish(self) -> dict[str, np.ndarray]:
        return {LOGLIK: self.loglik, N_TOKENS: (self.spans[:, 2] - self.spans[:, 1]).copy()}
