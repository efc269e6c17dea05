"""Phase 5 analysis time on the benchmark profile (spec/08_TEST_PLAN.md).

Builds synthetic rasters of CANON.PROFILE.BENCH's shape (N_WINDOWS sequences,
N_LAYERS layers, SEQ_LEN_TOKENS tokens; both spike definitions x the profile's target
rates x CANON.CONST.GAIN_GRID_DEFAULT) and times `analyze` with the study's bootstrap
and fit constants. Counts are Poisson with mean target_rate * D_FF * g^k per site,
modulated by a per-(sequence, layer) factor, so avalanche statistics are non-trivial;
`--sparse` divides the rates by 20 for the many-small-avalanche regime (the fitting
worst case). Prints seconds per condition and, last, the total.

    .venv/bin/python bench/phase5_analysis.py [--reps R] [--sparse]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.tables import CANON_NULL_SUFFIXES, AnalysisParams, analyze
from critspec.events.spikes import SPIKE_DEF_IDS
from critspec.seeding import rng_for

BENCH = CANON.PROFILE.BENCH
C = CANON.CONST
SPARSE_FACTOR = 20.0
GAIN_EXPONENT = 4.0  # how strongly the synthetic density moves with g


def synthetic(sparse: bool) -> tuple:
    gains = tuple(C.GAIN_GRID_DEFAULT)
    conds = [(sd, r, g) for sd in SPIKE_DEF_IDS for r in BENCH.TARGET_LAYER_RATES for g in gains]
    shape = (BENCH.N_WINDOWS, BENCH.N_LAYERS, BENCH.SEQ_LEN_TOKENS)
    rng = rng_for("bench_phase5")
    A = np.empty((len(conds), *shape), dtype=np.uint16)
    for c, (_, r, g) in enumerate(conds):
        mean = r * BENCH.D_FF * g**GAIN_EXPONENT / (SPARSE_FACTOR if sparse else 1.0)
        modulation = rng.gamma(2.0, 0.5, size=shape[:2])[:, :, None]
        A[c] = rng.poisson(mean * modulation, size=shape)
    null_A = np.stack([np.stack([rng.permuted(a, axis=2) for a in A])] * 3).reshape(-1, *shape)
    conditions = pd.DataFrame(
        {
            "cond_id": np.arange(len(conds), dtype=np.int64),
            "spike_def_id": [sd for sd, _, _ in conds],
            "target_rate": [r for _, r, _ in conds],
            "g": [g for _, _, g in conds],
            "is_baseline": [g == C.GAIN_BASELINE for _, _, g in conds],
            "is_gstar": [g == C.GAIN_BASELINE for _, _, g in conds],
        }
    )
    null_ids = [nid for nid, _ in CANON_NULL_SUFFIXES]
    null_conditions = pd.DataFrame(
        {
            "null_cond_id": np.arange(len(null_A), dtype=np.int64),
            "null_id": [nid for nid in null_ids for _ in conds],
            "cond_id": [c for _ in null_ids for c in range(len(conds))],
        }
    )
    rates = pd.DataFrame(
        {
            "cond_id": np.repeat(np.arange(len(conds)), shape[1]),
            "layer": np.tile(np.arange(shape[1]), len(conds)),
            "r_star": 0.0,
            "achieved_rate": 0.0,
            "abs_err": 0.0,
        }
    )
    gstar = {(sd, r): C.GAIN_BASELINE for sd, r, _ in conds}
    return A, null_A, conditions, null_conditions, rates, gains, gstar


def bench_params(
    reps: int, gains: tuple[float, ...], gstar: dict[tuple[str, float], float]
) -> AnalysisParams:
    """The study's analysis constants (CANON.CONST) with the given bootstrap reps."""
    return AnalysisParams(
        bootstrap_seed=C.BOOTSTRAP_SEED,
        bootstrap_reps=reps,
        ci_percentiles=tuple(C.BOOTSTRAP_CI_PERCENTILES),
        chi_eps=C.CHI_EPS,
        cc_max=C.CC_MAX_COMPONENTS_PER_SEQ,
        d_range_min=C.CRACKLING_D_RANGE_MIN,
        d_range_max=C.CRACKLING_D_RANGE_MAX,
        crackling_min_points=C.CRACKLING_MIN_POINTS,
        tail_min_samples=C.TAIL_FIT_MIN_TAIL_SAMPLES,
        ci_width_max=C.BOOTSTRAP_CI_WIDTH_MAX,
        gains=gains,
        gstar=gstar,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=C.BOOTSTRAP_REPS)
    parser.add_argument("--sparse", action="store_true")
    args = parser.parse_args()
    A, null_A, conditions, null_conditions, rates, gains, gstar = synthetic(args.sparse)
    params = bench_params(args.reps, gains, gstar)
    seq_ids = np.arange(A.shape[1], dtype=np.int64)
    start = time.perf_counter()
    tables = analyze(A, A > 0, conditions, null_A, null_conditions, rates, seq_ids, params)
    total = time.perf_counter() - start
    n_cond = len(conditions)
    print(f"conditions {n_cond}  shape {A.shape[1:]}  reps {args.reps}  sparse {args.sparse}")
    print(f"avalanches {len(tables.avalanches)}  crackling NaN reasons:")
    print(tables.crackling["reason"].value_counts(dropna=False).to_string())
    print(f"phase5_seconds_per_condition {total / n_cond:.4f}")
    print(f"phase5_seconds_total {total:.3f}")


if __name__ == "__main__":
    main()
