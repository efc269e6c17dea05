"""Batched forward passes at a gain with u captured (spec/06_MODELS_AND_HOOKS.md,
spec/08_TEST_PLAN.md).

Windows go through the model in batches of the configured size (never one at a
time); there is no padding, so no attention mask is needed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm import tqdm

from critspec.models.hooks import apply_gain, capture_u
from critspec.models.loading import LoadedModel

OnU = Callable[[int, torch.Tensor], None]


def forward_slice(
    loaded: LoadedModel, input_ids: torch.Tensor, batch_size: int, g: float, on_u: OnU
) -> None:
    """One pass over every window at gain g; on_u(layer, u[B, T, d_ff] float32) per batch."""
    device = next(loaded.model.parameters()).device
    starts = range(0, input_ids.shape[0], batch_size)
    # disable=None: a bar on a terminal, silence in logs and captured output.
    bar = tqdm(starts, desc=f"forward g={g}", unit="batch", disable=None, leave=False)
    with torch.inference_mode(), apply_gain(loaded.sites, g), capture_u(loaded.sites, on_u):
        for start in bar:
            batch = input_ids[start : start + batch_size].to(device)
            loaded.model(input_ids=batch, use_cache=False)


def make_forward_fn(loaded: LoadedModel) -> Callable[[torch.Tensor, float, OnU], None]:
    """The callable the gain-grid core drives: one batch at gain g with u captured."""

    def forward_fn(batch: torch.Tensor, g: float, on_u: OnU) -> None:
        with torch.inference_mode(), apply_gain(loaded.sites, g), capture_u(loaded.sites, on_u):
            loaded.model(input_ids=batch, use_cache=False)

    return forward_fn


def logits(loaded: LoadedModel, input_ids: torch.Tensor, g: float | None = None) -> torch.Tensor:
    """Logits of the plain model (g None) or with every MLP output scaled by g."""
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        if g is None:
            return loaded.model(input_ids=input_ids.to(device), use_cache=False).logits
        with apply_gain(loaded.sites, g):
            return loaded.model(input_ids=input_ids.to(device), use_cache=False).logits
