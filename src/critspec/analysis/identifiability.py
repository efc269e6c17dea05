"""Is gstar identifiable? (spec/12_STATISTICS_AND_BOOTSTRAP.md, "Identifiability of gstar").

Per (spike_def_id, target_rate), with one bootstrap resampling plan shared by every
gain (so replicate r of b_tot at two gains comes from the same windows and their
difference is a paired replicate):

- differs_from_baseline: the paired CI of b_tot(gstar) - b_tot(baseline) excludes 0;
- differs_from_neighbours: the paired CI of b_tot(gstar) - b_tot(g) excludes 0 for
  each grid neighbour g of gstar (none at the grid's edge);
- near_one: the CI of b_tot(gstar) comes at least as close to 1 as the closest point
  estimate on the grid does (|b_tot(gstar) - 1| is within its CI of min_g |b_tot(g) - 1|);
- ci_width_within_max: that CI is no wider than BOOTSTRAP_CI_WIDTH_MAX (a very wide
  CI would make near_one trivially true);
- not gstar_at_edge.

identifiable is the conjunction, and `why` says in words which parts failed. The
density-matched curve (b_tot - b_tot of the time-permutation null, per gain) is
reported by where its peak lies. NaN statistics make their comparisons False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from critspec.analysis.bootstrap import percentile_ci


@dataclass(frozen=True)
class Identifiability:
    gstar: float
    gstar_at_edge: bool
    b_tot_min: float
    b_tot_max: float
    b_tot_range: float
    b_tot_ci_width_max: float
    b_tot_gstar: float
    b_tot_gstar_ci_low: float
    b_tot_gstar_ci_high: float
    delta_baseline: float
    delta_baseline_ci_low: float
    delta_baseline_ci_high: float
    delta_lower: float
    delta_lower_ci_low: float
    delta_lower_ci_high: float
    delta_upper: float
    delta_upper_ci_low: float
    delta_upper_ci_high: float
    differs_from_baseline: bool
    differs_from_neighbours: bool
    abs_dev_one_min: float
    g_closest_to_one: float
    near_one: bool
    ci_width_within_max: bool
    dm_peak_g: float
    dm_peak: float
    dm_peak_at_edge: bool
    identifiable: bool
    why: str


def _nan_reduce(fn, values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(fn(finite)) if finite.size else math.nan


def _paired(point: float, reps: np.ndarray, pct: Sequence[float]) -> tuple[float, float, float]:
    if not math.isfinite(point):
        return math.nan, math.nan, math.nan
    low, high = percentile_ci(reps, pct)
    return float(point), float(low), float(high)


def _excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0.0 or high < 0.0)


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "NaN"


def _ci(est: tuple[float, float, float]) -> str:
    # No commas: the CSV twin refuses cells that would need quoting.
    return f"[{_fmt(est[1])} .. {_fmt(est[2])}]"


def identifiability(
    gains: Sequence[float],
    b_tot: np.ndarray,
    b_tot_reps: np.ndarray,
    b_tot_perm: np.ndarray,
    gstar: float,
    baseline: float,
    percentiles: Sequence[float],
    ci_width_max: float,
    ci: tuple[np.ndarray, np.ndarray] | None = None,
) -> Identifiability:
    """Flags for one (sd, r). b_tot, b_tot_perm [G] over sorted gains; b_tot_reps [R, G]
    are the replicates of one shared resampling plan; ci = the per-gain CI of b_tot as
    the summary reports it (studentized), else the percentile CI of the replicates."""
    gains_arr = np.asarray(gains, dtype=np.float64)
    if np.any(np.diff(gains_arr) <= 0):
        raise ValueError(f"gains must be strictly increasing, got {list(gains)}")
    b = np.asarray(b_tot, dtype=np.float64)
    reps = np.asarray(b_tot_reps, dtype=np.float64)
    if reps.ndim != 2 or reps.shape[1] != b.size or b.size != gains_arr.size:
        raise ValueError(f"b_tot {b.shape} and replicates {reps.shape} must cover {b.size} gains")
    k = int(np.flatnonzero(np.isclose(gains_arr, gstar))[0])
    k_base = int(np.flatnonzero(np.isclose(gains_arr, baseline))[0])
    at_edge = bool(k in (0, gains_arr.size - 1))
    pct = tuple(percentiles)

    lows, highs = ci if ci is not None else tuple(np.asarray(percentile_ci(reps, pct)))
    lows, highs = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
    star = (float(b[k]), float(lows[k]), float(highs[k]))
    if not math.isfinite(star[0]):
        star = (math.nan, math.nan, math.nan)
    width = _nan_reduce(np.max, highs - lows)
    base = _paired(b[k] - b[k_base], reps[:, k] - reps[:, k_base], pct)
    nan3 = (math.nan, math.nan, math.nan)
    lower = _paired(b[k] - b[k - 1], reps[:, k] - reps[:, k - 1], pct) if k > 0 else nan3
    upper = (
        _paired(b[k] - b[k + 1], reps[:, k] - reps[:, k + 1], pct)
        if k < gains_arr.size - 1
        else nan3
    )
    differs_base = k != k_base and _excludes_zero(base[1], base[2])
    differs_nb = (
        not at_edge and _excludes_zero(lower[1], lower[2]) and _excludes_zero(upper[1], upper[2])
    )

    dev = np.abs(b - 1.0)
    dev_min = _nan_reduce(np.min, dev)
    g_close = float(gains_arr[int(np.nanargmin(dev))]) if math.isfinite(dev_min) else math.nan
    # Distance from 1 to the CI of b_tot(gstar): 0 when the CI holds 1.
    ci_dist = max(star[1] - 1.0, 1.0 - star[2], 0.0) if math.isfinite(star[1]) else math.nan
    near_one = bool(math.isfinite(ci_dist) and ci_dist <= dev_min)
    within = bool(math.isfinite(star[1]) and star[2] - star[1] <= ci_width_max)

    dm = b - np.asarray(b_tot_perm, dtype=np.float64)
    if np.isfinite(dm).any():
        j = int(np.nanargmax(dm))
        dm_g, dm_peak, dm_edge = float(gains_arr[j]), float(dm[j]), j in (0, gains_arr.size - 1)
    else:
        dm_g, dm_peak, dm_edge = math.nan, math.nan, False

    reasons = []
    if at_edge:
        reasons.append("gstar is at the edge of the gain grid")
    if k == k_base:
        reasons.append("gstar is the baseline gain")
    elif not differs_base:
        reasons.append(f"b_tot(gstar) - b_tot(baseline) = {_fmt(base[0])} {_ci(base)} includes 0")
    if not at_edge and not differs_nb:
        reasons.append(
            f"a neighbour is not distinguishable (lower {_fmt(lower[0])} {_ci(lower)}; "
            f"upper {_fmt(upper[0])} {_ci(upper)})"
        )
    if not near_one:
        reasons.append(
            f"the CI of b_tot(gstar) {_ci(star)} is farther from 1 "
            f"than b_tot(g={g_close:g}) is (|b_tot - 1| = {_fmt(dev_min)})"
        )
    if not within:
        reasons.append(
            f"the CI of b_tot(gstar) is wider than {ci_width_max:g}"
            if math.isfinite(star[1])
            else "b_tot(gstar) has no CI"
        )
    identifiable = not reasons
    why = (
        f"identifiable: b_tot(gstar) = {_fmt(star[0])} {_ci(star)} "
        f"differs from the baseline by {_fmt(base[0])} {_ci(base)} "
        "and from both grid neighbours (paired CIs exclude 0) and is as close to 1 as the grid"
        if identifiable
        else "not identifiable: " + "; ".join(reasons)
    )
    return Identifiability(
        gstar=float(gstar),
        gstar_at_edge=at_edge,
        b_tot_min=_nan_reduce(np.min, b),
        b_tot_max=_nan_reduce(np.max, b),
        b_tot_range=_nan_reduce(np.max, b) - _nan_reduce(np.min, b),
        b_tot_ci_width_max=width,
        b_tot_gstar=star[0],
        b_tot_gstar_ci_low=star[1],
        b_tot_gstar_ci_high=star[2],
        delta_baseline=base[0],
        delta_baseline_ci_low=base[1],
        delta_baseline_ci_high=base[2],
        delta_lower=lower[0],
        delta_lower_ci_low=lower[1],
        delta_lower_ci_high=lower[2],
        delta_upper=upper[0],
        delta_upper_ci_low=upper[1],
        delta_upper_ci_high=upper[2],
        differs_from_baseline=bool(differs_base),
        differs_from_neighbours=bool(differs_nb),
        abs_dev_one_min=dev_min,
        g_closest_to_one=g_close,
        near_one=near_one,
        ci_width_within_max=within,
        dm_peak_g=dm_g,
        dm_peak=dm_peak,
        dm_peak_at_edge=bool(dm_edge),
        identifiable=identifiable,
        why=why,
    )
