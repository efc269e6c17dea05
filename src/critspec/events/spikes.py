"""Standardization and spike values (spec/01_SPIKES_AND_STANDARDIZATION.md).

z = (u - mu) / (sigma + EPS); a unit spikes when v > tau (strict), with v = z for
SPIKE_ONE_SIDED_POS and v = |z| for SPIKE_TWO_SIDED_ABS.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from canon import CANON
from critspec.errors import ConfigError

SPIKE_DEF_IDS: tuple[str, ...] = (
    CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS,
    CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS,
)


def standardize(
    u: torch.Tensor, mu_l: torch.Tensor | np.ndarray, sigma_l: torch.Tensor | np.ndarray, eps: float
) -> torch.Tensor:
    """z = (u - mu) / (sigma + eps) for one layer, broadcast over the last (unit) axis."""
    mu_t = torch.as_tensor(mu_l, dtype=u.dtype, device=u.device)
    sigma_t = torch.as_tensor(sigma_l, dtype=u.dtype, device=u.device)
    return (u - mu_t) / (sigma_t + eps)


def spike_values(z: torch.Tensor, spike_def_id: str) -> torch.Tensor:
    """v for one spike definition (no copy for the one-sided definition)."""
    if spike_def_id == CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS:
        return z
    if spike_def_id == CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS:
        return z.abs()
    raise ConfigError(
        f"unknown spike definition {spike_def_id!r}: use one of {', '.join(SPIKE_DEF_IDS)}"
    )


def z_region(spike_def_id: str, floor: float) -> tuple[float, float]:
    """(lower, upper) with v > floor  <=>  z > upper or z < lower, for one definition.

    Lets one scan over z find the candidates of several definitions (the union of
    their regions) without computing every v over the whole batch.
    """
    if spike_def_id == CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS:
        return -math.inf, floor
    if spike_def_id == CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS:
        # |z| > floor is z > floor or z < -floor (negation is exact); a negative floor
        # admits every z.
        return (-floor, floor) if floor >= 0 else (-math.inf, -math.inf)
    raise ConfigError(
        f"unknown spike definition {spike_def_id!r}: use one of {', '.join(SPIKE_DEF_IDS)}"
    )


def count_sigma_clamped(sigma: np.ndarray | torch.Tensor, eps: float) -> int:
    """Number of units whose sigma is at most eps (their z is dominated by eps; logged)."""
    return int((torch.as_tensor(sigma) <= eps).sum())
