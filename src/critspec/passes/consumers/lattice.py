"""Consumer: thresholds -> event lattice A (spec/09_RASTERS.md; scan from
critspec.events.scan).

Per layer, u is scanned once against per-unit u bounds of the loosest threshold of the
pass, z is computed only for the candidates by the Phase 1 formula (bit-identical to
standardizing everything), and every (spike definition, threshold) counts its events
v > threshold from that one z. The thresholds are float32 (the caller passes
float32_floor of a float64 tau, so the float32 test equals the float64 one). Counts stay
on the device until the pass ends.

Output: `<sd>` uint16 [n, N, L, T] per spike definition, its n thresholds in the
order given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from canon import CANON
from critspec.events.scan import MaskBuffers, candidates, u_bounds
from critspec.events.spikes import spike_values, standardize, z_region
from critspec.passes.consumers.base import NoLogits, PassShape


@dataclass(frozen=True, eq=False)
class LatticeConsumer:
    """mu, sigma float32 [L, d_ff], eps, and per spike definition its float32
    thresholds [L, n] (one column per condition)."""

    kind: ClassVar[str] = CANON.ENUM.CONSUMER.LATTICE
    needs_u: ClassVar[bool] = True
    needs_logits: ClassVar[bool] = False

    mu: np.ndarray
    sigma: np.ndarray
    eps: float
    thresholds: tuple[tuple[str, np.ndarray], ...]

    def start(self, shape: PassShape, device: torch.device) -> _LatticeAccumulator:
        return _LatticeAccumulator(self, shape, device)


def _layer_bounds(
    thresholds: Sequence[tuple[str, np.ndarray]],
    mu_t: torch.Tensor,
    sigma_t: torch.Tensor,
    eps: float,
) -> list[tuple[torch.Tensor | None, torch.Tensor] | None]:
    """Per layer, the u bounds of the union of every definition's region above its lowest
    threshold (None: some threshold admits every z, so every value is a candidate)."""
    out = []
    for layer in range(mu_t.shape[0]):
        regions = [z_region(sd, float(thr[layer].min())) for sd, thr in thresholds]
        lower, upper = max(lo for lo, _ in regions), min(up for _, up in regions)
        if upper == -math.inf:
            out.append(None)
            continue
        out.append(u_bounds(mu_t[layer], sigma_t[layer] + eps, lower, upper))
    return out


class _LatticeAccumulator(NoLogits):
    def __init__(self, spec: LatticeConsumer, shape: PassShape, device: torch.device) -> None:
        self.mu = torch.as_tensor(spec.mu, dtype=torch.float32, device=device)
        self.sigma = torch.as_tensor(spec.sigma, dtype=torch.float32, device=device)
        self.eps = spec.eps
        self.shape = shape
        self.sds = [sd for sd, _ in spec.thresholds]
        self.thr = [
            torch.from_numpy(np.asarray(t, np.float32)).to(device) for _, t in spec.thresholds
        ]
        self.bounds = _layer_bounds(spec.thresholds, self.mu, self.sigma, spec.eps)
        self.counts = [
            torch.zeros(
                (t.shape[1], shape.n_windows, shape.n_layers, shape.seq_len),
                dtype=torch.int32,
                device=device,
            )
            for t in self.thr
        ]
        self.buffers = MaskBuffers()

    def on_u(self, layer: int, u: torch.Tensor, row_start: int) -> None:
        d_ff, seq_len = self.shape.d_ff, self.shape.seq_len
        batch_rows = u.shape[0]
        u2 = u.reshape(-1, d_ff)
        n_sites = batch_rows * seq_len
        bounds = self.bounds[layer]
        if bounds is None:
            idx = torch.arange(u2.numel(), device=u2.device)
        else:
            idx = candidates(u2, *bounds, self.buffers).to(u2.device)
        units = idx % d_ff
        z = standardize(
            u2.reshape(-1).index_select(0, idx),
            self.mu[layer][units],
            self.sigma[layer][units],
            self.eps,
        )
        site = idx // d_ff
        for sd, thresholds, out in zip(self.sds, self.thr, self.counts, strict=True):
            thr = thresholds[layer]
            n = thr.numel()
            # Events of condition j go to bins j * n_sites + site; non-events to one
            # trailing bin that is dropped: a single weightless bincount (deterministic on
            # CUDA, no host sync) counts every condition of the definition.
            above = spike_values(z, sd)[None, :] > thr[:, None]
            offset = torch.arange(n, device=site.device)[:, None] * n_sites
            key = torch.where(above, site[None, :] + offset, n * n_sites)
            binned = torch.bincount(key.reshape(-1), minlength=n * n_sites + 1)[:-1]
            out[:, row_start : row_start + batch_rows, layer, :] = binned.reshape(
                n, batch_rows, seq_len
            )

    def finish(self) -> dict[str, np.ndarray]:
        # Every count is <= d_ff, which the planner checks against UINT16_MAX.
        return {
            sd: out.cpu().numpy().astype(np.uint16)
            for sd, out in zip(self.sds, self.counts, strict=True)
        }
