"""Per-unit mean and population std of u, streamed in float64
(spec/01_SPIKES_AND_STANDARDIZATION.md).

Batches are merged with Chan et al.'s pairwise update, so the result depends only
on the order of the batches (fixed by the slice), never on how many there are
beyond floating-point rounding. The accumulators live on u's device: a CUDA run
never copies a whole u to the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from critspec.errors import CheckFailed


@dataclass(frozen=True)
class Moments:
    """mu and sigma (population std) as float32 [L, d_ff]; count samples per layer."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


class MomentAccumulator:
    """Streams u of every layer into per-unit float64 mean and M2
    (spec/01_SPIKES_AND_STANDARDIZATION.md)."""

    def __init__(self, n_layers: int, d_ff: int) -> None:
        self.n_layers = n_layers
        self.d_ff = d_ff
        self._count = [0] * n_layers
        self._mean: list[torch.Tensor | None] = [None] * n_layers
        self._m2: list[torch.Tensor | None] = [None] * n_layers

    def update(self, layer: int, u: torch.Tensor) -> None:
        """Merge u [..., d_ff] of one layer; a non-finite value is a hard failure."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer {layer} outside [0, {self.n_layers})")
        if u.shape[-1] != self.d_ff:
            raise ValueError(f"u of layer {layer} has last dim {u.shape[-1]}, expected {self.d_ff}")
        x = u.detach().reshape(-1, self.d_ff).to(torch.float64)
        if not bool(torch.isfinite(x).all()):
            n_bad = int((~torch.isfinite(x)).sum())
            raise CheckFailed(
                f"non-finite u at layer {layer} ({n_bad} values): the model overflows at this "
                "dtype/gain; run in fp32 or check the weights"
            )
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b = x.mean(dim=0)
        m2_b = (x - mean_b).square().sum(dim=0)
        n_a = self._count[layer]
        if n_a == 0:
            self._mean[layer], self._m2[layer] = mean_b, m2_b
        else:
            n = n_a + n_b
            delta = mean_b - self._mean[layer]
            self._mean[layer] = self._mean[layer] + delta * (n_b / n)
            self._m2[layer] = self._m2[layer] + m2_b + delta.square() * (n_a * n_b / n)
        self._count[layer] = n_a + n_b

    def finalize(self) -> Moments:
        """mu and population sigma as float32; every layer must have seen the same samples."""
        counts = set(self._count)
        if len(counts) != 1 or 0 in counts:
            raise CheckFailed(
                f"moment accumulation saw unequal or zero samples per layer {self._count}: "
                "the u hook did not fire once per layer and batch"
            )
        count = self._count[0]
        mu = torch.stack([m.cpu() for m in self._mean]).numpy()
        var = torch.stack([m.cpu() for m in self._m2]).numpy() / count
        return Moments(
            mu=mu.astype(np.float32),
            sigma=np.sqrt(var).astype(np.float32),
            count=count,
        )
