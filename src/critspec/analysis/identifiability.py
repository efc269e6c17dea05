"""Is gstar identifiable? (spec/12_STATISTICS_AND_BOOTSTRAP.md, "Identifiability of gstar").

Per (spike_def_id, target_rate): b_tot must vary over the gain grid by more than its
widest bootstrap CI, that CI width must be within BOOTSTRAP_CI_WIDTH_MAX, and gstar
must not sit on the grid's edge; identifiable is the conjunction. A statistic that
is NaN at every gain makes its comparisons False (nothing is identified).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Identifiability:
    gstar: float
    gstar_at_edge: bool
    b_tot_min: float
    b_tot_max: float
    b_tot_range: float
    b_tot_ci_width_max: float
    varies_beyond_ci: bool
    ci_width_within_max: bool
    identifiable: bool


def _nan_reduce(fn, values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(fn(finite)) if finite.size else float("nan")


def identifiability(
    b_tot: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    gstar: float,
    gains: Sequence[float],
    ci_width_max: float,
) -> Identifiability:
    """Flags for one (sd, r) from b_tot and its CI over the grid (arrays aligned over gains)."""
    b_min, b_max = _nan_reduce(np.min, b_tot), _nan_reduce(np.max, b_tot)
    width = _nan_reduce(np.max, np.asarray(ci_high) - np.asarray(ci_low))
    at_edge = bool(gstar == min(gains) or gstar == max(gains))
    b_range = b_max - b_min
    varies = bool(b_range > width)
    within = bool(width <= ci_width_max)
    return Identifiability(
        gstar=float(gstar),
        gstar_at_edge=at_edge,
        b_tot_min=b_min,
        b_tot_max=b_max,
        b_tot_range=b_range,
        b_tot_ci_width_max=width,
        varies_beyond_ci=varies,
        ci_width_within_max=within,
        identifiable=varies and within and not at_edge,
    )
