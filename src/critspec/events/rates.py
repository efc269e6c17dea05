"""Baseline rates and per-layer target rates (spec/01_SPIKES_AND_STANDARDIZATION.md).

r_base[sd][l] is the fraction of (n, t, i) with v > TAU0 (strict) at the baseline
gain; r_star[sd][r][l] = clip(r_base[sd][l] * r / mean_l r_base[sd][l], 0, 1)
keeps the layer profile and rescales its mean to the target r.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from critspec.errors import CheckFailed
from critspec.events.spikes import spike_values


class RateCounter:
    """Counts v > tau0 per spike definition and layer over streamed batches of z."""

    def __init__(self, n_layers: int, spike_def_ids: Sequence[str], tau0: float) -> None:
        self.n_layers = n_layers
        self.spike_def_ids = tuple(spike_def_ids)
        self.tau0 = float(tau0)
        self._above = {sd: [0] * n_layers for sd in self.spike_def_ids}
        self._n = [0] * n_layers

    def update(self, layer: int, z: torch.Tensor) -> None:
        """Add one batch of standardized values z [..., d_ff] of one layer."""
        for sd in self.spike_def_ids:
            # Compare in float64: a float32 compare would round tau0 for non-representable values.
            v = spike_values(z, sd).to(torch.float64)
            self._above[sd][layer] += int((v > self.tau0).sum())
        self._n[layer] += z.numel()

    @property
    def samples_per_layer(self) -> list[int]:
        return list(self._n)

    def r_base(self) -> dict[str, np.ndarray]:
        """r_base per spike definition: float64 [L]."""
        if 0 in self._n:
            raise CheckFailed(
                f"baseline rate counting saw no samples for some layer ({self._n}): "
                "the u hook did not fire for every layer"
            )
        n = np.asarray(self._n, dtype=np.float64)
        return {sd: np.asarray(self._above[sd], dtype=np.float64) / n for sd in self.spike_def_ids}


@dataclass(frozen=True)
class RateTarget:
    """r_star float64 [L] for one (spike definition, target rate); clipped if any hit 1."""

    r_star: np.ndarray
    clipped: bool


def rate_targets(
    r_base: np.ndarray, target_rate: float, *, spike_def_id: str | None = None
) -> RateTarget:
    """r_star = clip(r_base * r / mean(r_base), 0, 1); a zero mean is a hard failure."""
    r_base = np.asarray(r_base, dtype=np.float64)
    mean = float(r_base.mean())
    if not mean > 0:
        where = f" for {spike_def_id}" if spike_def_id else ""
        raise CheckFailed(
            f"baseline mean rate is zero{where} (no v above TAU0 in any layer): "
            "lower TAU0 or use a longer calibration slice"
        )
    raw = r_base * (float(target_rate) / mean)
    return RateTarget(r_star=np.clip(raw, 0.0, 1.0), clipped=bool((raw > 1.0).any()))
