"""One batched forward pass feeding many consumers (spec/06_MODELS_AND_HOOKS.md §5, §7).

`drive` runs the windows in batches of the configured size (no padding, so no attention
mask), under one intervention, hands every layer's u to the consumers that read u and
the logits to those that read logits, and checks that the u hook fired exactly once per
layer and batch with the expected shape. It knows nothing of phases; `model_forward`
adapts a loaded model to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

import numpy as np
import torch

from critspec.errors import CheckFailed
from critspec.events.scan import check_u
from critspec.models.hooks import capture_u, intervene
from critspec.passes.consumers.base import Consumer, PassShape
from critspec.passes.intervention import Intervention

if TYPE_CHECKING:  # transformers is imported only where a model is loaded
    from critspec.models.loading import LoadedModel

OnU = Callable[[int, torch.Tensor], None]
ModelForward = Callable[[torch.Tensor, Intervention, OnU | None, bool], torch.Tensor | None]
"""forward(batch [B, T] on the device, intervention, on_u or None, want_logits) runs the
model once and returns the logits when asked."""


def model_forward(loaded: LoadedModel) -> ModelForward:
    """The ModelForward of a loaded model: hooks for the intervention and u, inference mode."""

    def forward(
        batch: torch.Tensor, intervention: Intervention, on_u: OnU | None, want_logits: bool
    ) -> torch.Tensor | None:
        with ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            stack.enter_context(intervene(loaded.sites, intervention))
            if on_u is not None:
                stack.enter_context(capture_u(loaded.sites, on_u))
            out = loaded.model(input_ids=batch, use_cache=False)
        return out.logits if want_logits else None

    return forward


def gain_forward(forward_fn: Callable[[torch.Tensor, float, OnU], None]) -> ModelForward:
    """A ModelForward from a (batch, g, on_u) callable that applies the default gain
    (test models and the benchmark's); it has no logits."""

    def forward(
        batch: torch.Tensor, intervention: Intervention, on_u: OnU | None, want_logits: bool
    ) -> torch.Tensor | None:
        if want_logits or not intervention.is_default:
            raise CheckFailed(
                "this forward function applies the default gain and returns no logits"
            )
        forward_fn(batch, intervention.g, on_u or (lambda layer, u: None))
        return None

    return forward


def drive(
    forward: ModelForward,
    input_ids: torch.Tensor,
    *,
    n_layers: int,
    d_ff: int,
    batch_size: int,
    intervention: Intervention,
    consumers: Sequence[Consumer],
    device: torch.device | str,
    row_lengths: np.ndarray | None = None,
) -> list[dict[str, np.ndarray]]:
    """Run every window once under the intervention; each consumer's arrays, in order.

    With `row_lengths` (int [N], the positions each row needs) a batch is cut to its
    longest row before the forward: a causal model's logits at a position do not depend
    on the padding after it, so rows of similar length (the caller sorts them) cost their
    own length rather than the longest row's. Only logits consumers can use it: a u
    consumer sees every position of the lattice."""
    device = torch.device(device)
    n_windows, seq_len = input_ids.shape
    if row_lengths is not None:
        if any(c.needs_u for c in consumers):
            raise CheckFailed("row_lengths cut the windows; a consumer of u needs them whole")
        row_lengths = np.asarray(row_lengths, dtype=np.int64)
        if (
            row_lengths.shape != (n_windows,)
            or (row_lengths < 1).any()
            or (row_lengths > seq_len).any()
        ):
            raise CheckFailed(f"row_lengths must be {n_windows} lengths in 1..{seq_len}")
    shape = PassShape(int(n_windows), int(seq_len), int(n_layers), int(d_ff))
    accs = [c.start(shape, device) for c in consumers]
    u_accs = [a for a, c in zip(accs, consumers, strict=True) if c.needs_u]
    logit_accs = [a for a, c in zip(accs, consumers, strict=True) if c.needs_logits]
    g = intervention.g
    fired = np.zeros(n_layers, dtype=np.int64)
    row_start = batch_rows = 0

    def on_u(layer: int, u: torch.Tensor) -> None:
        check_u(u, layer, g, (batch_rows, seq_len, d_ff))
        fired[layer] += 1
        for acc in u_accs:
            acc.on_u(layer, u, row_start)

    with torch.inference_mode():
        for row_start in range(0, n_windows, batch_size):
            batch = input_ids[row_start : row_start + batch_size]
            if row_lengths is not None:
                batch = batch[:, : int(row_lengths[row_start : row_start + batch_size].max())]
            batch = batch.to(device)
            batch_rows = batch.shape[0]
            logits = forward(batch, intervention, on_u if u_accs else None, bool(logit_accs))
            if u_accs and not (fired == 1).all():
                raise CheckFailed(
                    f"at g={g} the u hook fired {fired.tolist()} times per layer for the batch at "
                    f"window {row_start}, expected once each: the hook must fire exactly once "
                    "per layer and batch"
                )
            fired[:] = 0
            if logit_accs:
                assert logits is not None
                for acc in logit_accs:
                    acc.on_logits(logits, batch, row_start)
    return [acc.finish() for acc in accs]
