"""The event lattice (spec/03_BRANCHING_AND_NULLS.md, "Lattice").

A[n, l, t] = number of units of layer l spiking at token t of window n; X = A > 0.
"""

from __future__ import annotations

import numpy as np

UINT16_MAX = np.iinfo(np.uint16).max


def lattice_from_positions(
    positions_per_layer: list[np.ndarray], n_windows: int, seq_len: int, d_ff: int
) -> np.ndarray:
    """A uint16 [N, L, T] from each layer's event positions ((n * T) + t) * d_ff + i."""
    if d_ff > UINT16_MAX:
        raise ValueError(f"d_ff {d_ff} exceeds the uint16 range of A; counts could overflow")
    n_sites = n_windows * seq_len
    A = np.zeros((n_windows, len(positions_per_layer), seq_len), dtype=np.uint16)
    for layer, positions in enumerate(positions_per_layer):
        site = np.asarray(positions, dtype=np.int64) // d_ff
        if site.size and (site.min() < 0 or site.max() >= n_sites):
            raise ValueError(
                f"layer {layer}: event position outside the {n_windows}x{seq_len} slice"
            )
        A[:, layer, :] = np.bincount(site, minlength=n_sites).reshape(n_windows, seq_len)
    return A
