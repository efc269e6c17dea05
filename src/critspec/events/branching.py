"""Branching ratios of an event lattice, pooled over sequences (spec/03_BRANCHING_AND_NULLS.md).

b_time = sum X[n,l,t] X[n,l,t+1] / sum X;  b_depth = sum X[n,l,t] X[n,l+1,t] / sum X;
b_tot = b_time + b_depth. Pairs stay inside a window (the window is axis 0 and
pairs are formed along t and l only); every occupied site counts in the
denominator, including those at the last token or layer. No occupied site gives NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Branching:
    b_time: float
    b_depth: float
    b_tot: float
    n_occupied: int
    n_time_pairs: int
    n_depth_pairs: int


def branching(X: np.ndarray) -> Branching:
    """Branching of a boolean lattice X [N, L, T]."""
    X = np.asarray(X, dtype=bool)
    if X.ndim != 3:
        raise ValueError(f"X must be [N, L, T], got shape {X.shape}")
    n_occupied = int(np.count_nonzero(X))
    n_time = int(np.count_nonzero(X[:, :, :-1] & X[:, :, 1:]))
    n_depth = int(np.count_nonzero(X[:, :-1, :] & X[:, 1:, :]))
    if n_occupied == 0:
        b_time = b_depth = math.nan
    else:
        b_time, b_depth = n_time / n_occupied, n_depth / n_occupied
    return Branching(
        b_time=b_time,
        b_depth=b_depth,
        b_tot=b_time + b_depth,
        n_occupied=n_occupied,
        n_time_pairs=n_time,
        n_depth_pairs=n_depth,
    )
