"""Avalanche components on hand-counted toy rasters (spec/11_AVALANCHES_AND_SIGNATURES.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from canon import CANON
from critspec.analysis.avalanches import avalanches
from critspec.errors import ComponentLimitExceeded

ADJ = CANON.ENUM.ADJACENCY
BIG = 10**6


def toy() -> np.ndarray:
    """Sequence 0: a diagonal pair (l0,t0)=2, (l1,t1)=3 and a bar l2, t3..t5 = 1,1,4.
    Sequence 1: one site at (l0, t0) = 5, right 'behind' sequence 0's first site."""
    A = np.zeros((2, 3, 6), dtype=np.uint16)
    A[0, 0, 0], A[0, 1, 1] = 2, 3
    A[0, 2, 3:6] = [1, 1, 4]
    A[1, 0, 0] = 5
    return A


def test_4n_keeps_the_diagonal_pair_apart() -> None:
    av = avalanches(toy(), ADJ.ADJ_4N, BIG, cond_id=0, seq_ids=np.array([7, 9]))
    assert av.seq_index.tolist() == [0, 0, 0, 1]
    assert av.size.tolist() == [2, 3, 6, 5]
    assert av.duration.tolist() == [1, 1, 3, 1]
    assert av.height.tolist() == [1, 1, 1, 1]
    assert av.t_min.tolist() == [0, 1, 3, 0]
    assert av.l_min.tolist() == [0, 1, 2, 0]


def test_8n_joins_the_diagonal_pair_but_never_two_sequences() -> None:
    av = avalanches(toy(), ADJ.ADJ_8N, BIG, cond_id=0, seq_ids=np.array([7, 9]))
    # (l1,t1) and (l2,t3) are two tokens apart: still separate under 8N.
    assert av.seq_index.tolist() == [0, 0, 1]
    assert av.size.tolist() == [5, 6, 5]
    assert av.duration.tolist() == [2, 3, 1]
    assert av.height.tolist() == [2, 1, 1]
    assert av.t_min.tolist() == [0, 3, 0]
    assert av.l_min.tolist() == [0, 2, 0]


def test_component_limit_names_condition_and_sequence() -> None:
    A = np.zeros((2, 1, 9), dtype=np.uint16)
    A[1, 0, ::2] = 1  # five isolated sites in sequence 1
    avalanches(A, ADJ.ADJ_4N, 5, cond_id=3, seq_ids=np.array([40, 41]))
    with pytest.raises(ComponentLimitExceeded, match=r"condition 3, sequence 41"):
        avalanches(A, ADJ.ADJ_4N, 4, cond_id=3, seq_ids=np.array([40, 41]))


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint16, (3, 4, 7), elements=st.integers(0, 3)))
def test_sizes_sum_to_the_events_of_each_sequence(A: np.ndarray) -> None:
    counts = {}
    for adjacency in (ADJ.ADJ_4N, ADJ.ADJ_8N):
        av = avalanches(A, adjacency, BIG, cond_id=0, seq_ids=np.arange(3))
        per_seq = np.bincount(av.seq_index, weights=av.size, minlength=3)
        assert per_seq.tolist() == A.sum(axis=(1, 2)).tolist()
        assert (av.duration >= 1).all() and (av.height >= 1).all()
        assert (av.t_min + av.duration <= A.shape[2]).all()
        counts[adjacency] = av.size.size
    assert counts[ADJ.ADJ_8N] <= counts[ADJ.ADJ_4N]
