"""Paired bootstrap over shared items (spec/14_GENERALIZATION_MC_ABLATIONS.md "Paired confidence
intervals", spec/12_STATISTICS_AND_BOOTSTRAP.md).

Phase 6 compares conditions (g = GAIN_BASELINE against gstar, an ablation against the
MLP-global gain) measured on the same windows or questions. One resampling plan — an
index matrix [R, N] drawn from a generator seeded by the bootstrap base seed and the
slice's semantic keys — is applied to both conditions, so resample r of the difference
is stat(condition b on draw r) - stat(condition a on draw r). Every statistic here is a
ratio of per-item sums (pooled b, mean NLL, accuracy), so a resample is a weight vector
(how often each item was drawn) and all R resamples are one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from critspec.analysis.bootstrap import bootstrap_indices, percentile_ci, resample_weights


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float


def resampling_plan(
    n_items: int, reps: int, seed_keys: Sequence[object], base_seed: int
) -> np.ndarray:
    """float64 weights [R, N] of one resampling plan, shared by every condition of a slice."""
    return resample_weights(bootstrap_indices(n_items, reps, seed_keys, base_seed), n_items).astype(
        np.float64
    )


def ratio_of_sums(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_n w_n num_n / sum_n w_n den_n for each row of weights [R, N] (NaN where the
    denominator is 0)."""
    top = np.asarray(weights, dtype=np.float64) @ np.asarray(num, dtype=np.float64)
    bottom = np.asarray(weights, dtype=np.float64) @ np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / bottom, np.nan)


def interval(point: float, samples: np.ndarray, percentiles: Sequence[float]) -> Interval:
    low, high = percentile_ci(np.asarray(samples, dtype=np.float64), percentiles)
    return Interval(float(point), float(low), float(high))


def paired_difference(
    point_a: float,
    point_b: float,
    samples_a: np.ndarray,
    samples_b: np.ndarray,
    percentiles: Sequence[float],
) -> Interval:
    """b - a with the interval of (b - a) over the shared resamples (samples [R] each)."""
    if np.shape(samples_a) != np.shape(samples_b):
        raise ValueError("paired samples must come from the same resampling plan")
    diff = np.asarray(samples_b, dtype=np.float64) - np.asarray(samples_a, dtype=np.float64)
    return interval(float(point_b) - float(point_a), diff, percentiles)


# A metric evaluated under one condition: its point estimate and its value on each
# resample of the shared plan.
Measured = tuple[float, np.ndarray]


def paired_columns(
    measured: dict[str, Measured],
    reference: dict[str, Measured],
    suffix: str,
    percentiles: Sequence[float],
) -> dict[str, float]:
    """Per metric m: m, m_ci_low, m_ci_high, and m_<suffix> (this condition minus the
    reference condition) with its paired interval."""
    out: dict[str, float] = {}
    for name, (point, samples) in measured.items():
        own = interval(point, samples, percentiles)
        ref_point, ref_samples = reference[name]
        diff = paired_difference(ref_point, point, ref_samples, samples, percentiles)
        out[name] = own.value
        out[f"{name}_ci_low"] = own.ci_low
        out[f"{name}_ci_high"] = own.ci_high
        out[f"{name}_{suffix}"] = diff.value
        out[f"{name}_{suffix}_ci_low"] = diff.ci_low
        out[f"{name}_{suffix}_ci_high"] = diff.ci_high
    return out
