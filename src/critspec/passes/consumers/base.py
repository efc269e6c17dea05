"""The consumer protocol of the pass engine (spec/06_MODELS_AND_HOOKS.md §7).

A consumer is a picklable, frozen description (it travels inside a PassTask); at the
start of a pass it makes an accumulator, which sees every batch's u (per layer, float32
[B, T, d_ff] on the model's device) and/or logits, and at the end returns compact numpy
arrays by name. Adding a consumer is one module: a frozen dataclass with `kind`,
`needs_u`, `needs_logits` and `start`, plus its accumulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class PassShape:
    """The pass's sizes: windows N, tokens per window T, layers L, MLP width d_ff."""

    n_windows: int
    seq_len: int
    n_layers: int
    d_ff: int


class Accumulator(Protocol):
    """Per-pass state of a consumer; batches arrive in ascending row order."""

    def on_u(self, layer: int, u: torch.Tensor, row_start: int) -> None:
        """u float32 [B, T, d_ff] of one layer for windows row_start..row_start+B-1."""
        ...

    def on_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, row_start: int) -> None:
        """logits [B, T, V] (the model's dtype) and the batch's token ids [B, T]."""
        ...

    def finish(self) -> dict[str, np.ndarray]:
        """The compact arrays of the pass."""
        ...


class Consumer(Protocol):
    """A picklable consumer description (CANON.ENUM.CONSUMER `kind`)."""

    kind: ClassVar[str]
    needs_u: ClassVar[bool]
    needs_logits: ClassVar[bool]

    def start(self, shape: PassShape, device: torch.device) -> Accumulator: ...


class NoU:
    """Mixin for accumulators that only read logits."""

    def on_u(self, layer: int, u: torch.Tensor, row_start: int) -> None:
        return None


class NoLogits:
    """Mixin for accumulators that only read u."""

    def on_logits(self, logits: torch.Tensor, input_ids: torch.Tensor, row_start: int) -> None:
        return None
