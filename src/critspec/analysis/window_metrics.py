"""Per-window sufficient statistics and the Phase 6 metrics built from them
(spec/14_GENERALIZATION_MC_ABLATIONS.md §2, §4, §5).

Every metric is a ratio of per-window sums, so the stored per-window columns determine
every number and every resample: pooled b (09), the time-permutation contrast, chi (12),
mean NLL per token and perplexity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from canon import CANON
from critspec.analysis.lattice_stats import SequenceStats, pooled, sequence_stats
from critspec.analysis.paired import Measured, ratio_of_sums

B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT
# Reported next to the NLL; never a selection input (spec/04_GAIN_AND_GSTAR.md).
PERPLEXITY = CANON.ENUM.FORBIDDEN_SELECTION_INPUT.PERPLEXITY
LATTICE_METRICS = ("b_time", "b_depth", B_TOT, "delta_b_tot_perm", "chi")
NLL_METRICS = ("nll_mean", PERPLEXITY)


@dataclass(frozen=True)
class WindowStats:
    """int64 [N] each: the columns of b_windows / ablation_windows for one condition."""

    n_occupied: np.ndarray
    n_time_pairs: np.ndarray
    n_depth_pairs: np.ndarray
    n_time_pairs_perm: np.ndarray
    n_depth_pairs_perm: np.ndarray
    y: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.int64) for k, v in vars(self).items()}


def window_stats(A: np.ndarray, A_perm: np.ndarray) -> WindowStats:
    """Statistics of A [N, L, T] and its time permutation (same occupied sites and y)."""
    real, perm = sequence_stats(A), sequence_stats(A_perm)
    return WindowStats(
        n_occupied=real.n_occupied,
        n_time_pairs=real.n_time_pairs,
        n_depth_pairs=real.n_depth_pairs,
        n_time_pairs_perm=perm.n_time_pairs,
        n_depth_pairs_perm=perm.n_depth_pairs,
        y=A.sum(axis=(1, 2), dtype=np.int64),
    )


def _seq(ws: WindowStats, perm: bool) -> SequenceStats:
    return SequenceStats(
        n_occupied=ws.n_occupied,
        n_time_pairs=ws.n_time_pairs_perm if perm else ws.n_time_pairs,
        n_depth_pairs=ws.n_depth_pairs_perm if perm else ws.n_depth_pairs,
        y=np.asarray(ws.y, dtype=np.float64),
    )


def lattice_metrics(ws: WindowStats, weights: np.ndarray, chi_eps: float) -> dict[str, np.ndarray]:
    """Each metric of LATTICE_METRICS for every row of weights [R, N]."""
    real = pooled(_seq(ws, False), weights, chi_eps)
    perm = pooled(_seq(ws, True), weights, chi_eps)
    return {
        "b_time": real.b_time,
        "b_depth": real.b_depth,
        B_TOT: real.b_tot,
        "delta_b_tot_perm": real.b_tot - perm.b_tot,
        "chi": real.chi,
    }


def nll_metrics(nll_sum: np.ndarray, n_tokens: np.ndarray, weights: np.ndarray) -> dict:
    mean = ratio_of_sums(nll_sum, n_tokens, weights)
    return {"nll_mean": mean, PERPLEXITY: np.exp(mean)}


def measured(point: dict[str, np.ndarray], samples: dict[str, np.ndarray]) -> dict[str, Measured]:
    """Pair each metric's point estimate (a [1] array) with its resamples."""
    return {k: (float(point[k][0]), samples[k]) for k in point}
