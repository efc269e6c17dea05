"""Avalanches: connected components of X per sequence (spec/11_AVALANCHES_AND_SIGNATURES.md).

A component lives on one sequence's [L, T] lattice: ADJ_4N joins sites one step
apart in t or in l, ADJ_8N also joins diagonal neighbours. The whole [N, L, T] stack
is labelled in one scipy.ndimage.label call with a 3x3x3 structure whose n = ±1
planes are empty, so no component ever spans two sequences. Size S = sum of A over
the component, duration D = t_max - t_min + 1, height H = l_max - l_min + 1. An
avalanche touches the boundary when it reaches the first or last token or the first or
last layer: it may have been cut by the window (spec/11 section 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from canon import CANON
from critspec.errors import ComponentLimitExceeded

ADJ = CANON.ENUM.ADJACENCY
ADJACENCIES = (ADJ.ADJ_4N, ADJ.ADJ_8N)


def structure(adjacency: str) -> np.ndarray:
    """The ndimage.label structure of an adjacency: [3, 3, 3] with only the n = 0 plane set."""
    if adjacency == ADJ.ADJ_4N:
        plane = ndimage.generate_binary_structure(2, 1)
    elif adjacency == ADJ.ADJ_8N:
        plane = ndimage.generate_binary_structure(2, 2)
    else:
        raise ValueError(f"unknown adjacency {adjacency!r}; expected one of {ADJACENCIES}")
    out = np.zeros((3, 3, 3), dtype=bool)
    out[1] = plane
    return out


@dataclass(frozen=True)
class Avalanches:
    """One entry per component, sorted by (seq_index, l_min, t_min); int64 arrays."""

    seq_index: np.ndarray  # position n in the raster (not the seq_id)
    size: np.ndarray
    duration: np.ndarray
    height: np.ndarray
    t_min: np.ndarray
    l_min: np.ndarray
    boundary: np.ndarray  # bool: touches the first/last token or the first/last layer

    def subset(self, keep: np.ndarray) -> Avalanches:
        """The avalanches where keep is True (order kept)."""
        return Avalanches(
            *(getattr(self, f)[keep] for f in self.__dataclass_fields__)  # type: ignore[arg-type]
        )


def avalanches(
    A: np.ndarray, adjacency: str, cc_max: int, cond_id: int, seq_ids: np.ndarray
) -> Avalanches:
    """Components of A [N, L, T] > 0; raises ComponentLimitExceeded past cc_max per sequence."""
    if A.ndim != 3:
        raise ValueError(f"A must be [N, L, T], got shape {A.shape}")
    labels, n_comp = ndimage.label(A > 0, structure=structure(adjacency))
    flat = np.flatnonzero(labels)
    lab = labels.ravel()[flat].astype(np.int64) - 1
    n_idx, l_idx, t_idx = np.unravel_index(flat, A.shape)
    # All sites of a component share its n; any one of them names the sequence.
    seq = np.zeros(n_comp, dtype=np.int64)
    seq[lab] = n_idx
    per_seq = np.bincount(seq, minlength=A.shape[0])
    if per_seq.size and per_seq.max() > cc_max:
        worst = int(np.argmax(per_seq))
        raise ComponentLimitExceeded(
            f"condition {cond_id}, sequence {int(seq_ids[worst])} ({adjacency}): "
            f"{int(per_seq[worst])} avalanches exceed CC_MAX_COMPONENTS_PER_SEQ = {cc_max}; "
            "the raster is far denser than a rate-matched one; check the Phase 3 rates"
        )
    size = np.bincount(lab, weights=A.ravel()[flat], minlength=n_comp).astype(np.int64)
    # ndimage labels are 1..n_comp with none skipped, so after a stable sort by label
    # every component is one contiguous run and reduceat gives its extent.
    by_label = np.argsort(lab, kind="stable")
    starts = np.flatnonzero(np.diff(lab[by_label], prepend=-1))
    t_sorted, l_sorted = t_idx[by_label], l_idx[by_label]
    t_lo = np.minimum.reduceat(t_sorted, starts) if n_comp else t_sorted
    t_hi = np.maximum.reduceat(t_sorted, starts) if n_comp else t_sorted
    l_lo = np.minimum.reduceat(l_sorted, starts) if n_comp else l_sorted
    l_hi = np.maximum.reduceat(l_sorted, starts) if n_comp else l_sorted
    order = np.lexsort((t_lo, l_lo, seq))
    _, n_layers, n_tokens = A.shape
    boundary = (t_lo == 0) | (t_hi == n_tokens - 1) | (l_lo == 0) | (l_hi == n_layers - 1)
    return Avalanches(
        seq_index=seq[order],
        size=size[order],
        duration=(t_hi - t_lo + 1)[order],
        height=(l_hi - l_lo + 1)[order],
        t_min=t_lo[order],
        l_min=l_lo[order],
        boundary=boundary[order],
    )
