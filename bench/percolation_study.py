"""How reliable is the selfcheck's percolation case (spec/12_STATISTICS_AND_BOOTSTRAP.md,
section 5)? tau_S of the interior clusters of 2D site percolation at p_c, fitted by
Phase 5's power-law fit (spec/11_AVALANCHES_AND_SIGNATURES.md, section 2), on K
independent data sets of the selfcheck's shape (SELFCHECK_PERC_LATTICES lattices of
side L), under several fitting rules: the mean, the spread between data sets and how
many land within SELFCHECK_PERC_TAU_TOL of 187/91.

Rules: Phase 5's estimator as shipped, "bagged": the mean of the fit over BOOTSTRAP_REPS
lattice-bootstrap replicates (Phase 5's resampling plan, lattices as sequences, xmin
re-chosen in each; powerlaw_fit.bagged_fit), which averages out the KS distance's jumps
between xmin candidates; the single fit of the whole sample (KS-chosen xmin in
POWERLAW_XMIN_RANGE, no upper cutoff), which Phase 5 reported before; an upper size
cutoff xmax = L^2 / k (left out above it, pmf normalized on [xmin, xmax]); a lower
bound on the xmin search; and interior clusters weighted by the Miles-Lantuejoul edge
correction L^2 / ((L - 1 - H)(L - 1 - D)) (the inverse of the fraction of positions at
which a cluster of that extent lies inside the boundary: undoes the depletion of large
clusters that excluding boundary clusters causes).

    .venv/bin/python bench/percolation_study.py [--sets 8] [--sides 512 1024] [--lattices 16]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from canon import CANON
from critspec.analysis.avalanches import avalanches
from critspec.analysis.powerlaw_fit import XMIN_RANGE, fit_rows
from critspec.analysis.selfcheck import TAU_2D, TAU_TOL, lattice_bagged_fit
from critspec.seeding import rng_for

C = CANON.CONST
ADJ = CANON.ENUM.ADJACENCY
# (label, xmax as a divisor of L^2 or None, lower end of the xmin search, edge-weighted)
RULES = (
    ("whole-sample fit", None, XMIN_RANGE[0], False),
    ("xmax L^2/256", 256, XMIN_RANGE[0], False),
    ("xmax L^2/1024", 1024, XMIN_RANGE[0], False),
    ("xmin >= 10", None, 10, False),
    ("xmin >= 10, xmax L^2/256", 256, 10, False),
    ("xmin >= 32", None, 32, False),
    ("edge-weighted", None, XMIN_RANGE[0], True),
    ("edge-weighted, xmin >= 32", None, 32, True),
    ("edge-weighted, xmin >= 64", None, 64, True),
)
BAGGED = "shipped (bagged)"
BAGGED_KEY = "bagged"  # the plan's seed key


@dataclass(frozen=True)
class DataSet:
    """The interior clusters of one data set: sizes, Miles-Lantuejoul weights, lattice."""

    sizes: np.ndarray
    weights: np.ndarray
    lattice: np.ndarray
    keys: tuple


def interior(adjacency: str, p: float, side: int, k: int, n: int) -> DataSet:
    """The interior clusters of data set k (n lattices; the selfcheck's n keeps the seeds it
    always had)."""
    keys = (adjacency, p, side, k) if n == C.SELFCHECK_PERC_LATTICES else (adjacency, p, side, k, n)
    rng = rng_for("percolation_study", *keys)
    X = (rng.random((n, side, side)) < p).astype(np.uint8)
    av = avalanches(X, adjacency, X[0].size, 0, np.arange(n))
    keep = ~av.boundary
    h, d = av.height[keep].astype(np.float64), av.duration[keep].astype(np.float64)
    weights = side * side / ((side - 1.0 - h) * (side - 1.0 - d))
    return DataSet(av.size[keep].astype(np.float64), weights, av.seq_index[keep], keys)


def bagged(data: DataSet, n: int) -> float:
    """Phase 5's estimate, as the selfcheck makes it."""
    return lattice_bagged_fit(data.sizes, data.lattice, n, (BAGGED_KEY, *data.keys)).alpha


def fit(data: DataSet, side: int, rule: tuple) -> float:
    _, divisor, lower, weighted = rule
    values, inverse = np.unique(data.sizes, return_inverse=True)
    counts = np.bincount(inverse, weights=data.weights if weighted else None)[None, :]
    xmax = None if divisor is None else side * side / divisor
    rows = fit_rows(counts, values, C.SELFCHECK_PERC_MIN_TAIL, xmax, (lower, XMIN_RANGE[1]))
    return float(rows.alpha[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=8)
    parser.add_argument(
        "--sides",
        type=int,
        nargs="*",
        default=[2**C.SELFCHECK_PERC_SIDE_SMALL_LOG2, 2**C.SELFCHECK_PERC_SIDE_FULL_LOG2],
    )
    parser.add_argument(
        "--lattices",
        type=int,
        default=C.SELFCHECK_PERC_LATTICES,
        help="lattices per data set (default: the selfcheck's)",
    )
    args = parser.parse_args()
    cases = ((ADJ.ADJ_4N, C.SELFCHECK_PERC_PC_4N), (ADJ.ADJ_8N, C.SELFCHECK_PERC_PC_8N))
    print(f"tau_S of interior clusters, truth {TAU_2D:.4f} +- {TAU_TOL:g}; {args.sets} data sets")
    print(f"{'case':28} {'rule':27} {'mean':>6} {'sd':>6} {'within':>7}")
    for side in args.sides:
        for adjacency, p in cases:
            start = time.perf_counter()
            data = [interior(adjacency, p, side, k, args.lattices) for k in range(args.sets)]
            case = f"{adjacency} {args.lattices}x{side}^2"
            estimators = [(r[0], lambda d, r=r, s=side: fit(d, s, r)) for r in RULES]
            estimators.append((BAGGED, lambda d: bagged(d, args.lattices)))
            for label, estimate in estimators:
                tau = np.array([estimate(d) for d in data])
                within = int(np.sum(np.abs(tau - TAU_2D) <= TAU_TOL))
                print(
                    f"{case:28} {label:27} {tau.mean():6.3f} {tau.std(ddof=1):6.3f} "
                    f"{within:3d}/{args.sets}"
                )
            print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
