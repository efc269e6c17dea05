"""Exact tail quantiles from a streamed top-K buffer (DESIGN §4 Phase 2, "Rate matching").

With n samples of v in a layer and k = floor(r_star * n + 0.5), sort v descending
(1-based v(1) >= v(2) >= ...): tau = v(1) when k = 0, else (v(k) + v(k+1)) / 2 in
float64. Every v > tau has rank <= k, so keeping the top K >= k + 1 values and
their positions is enough for tau, the achieved rate and the event lattice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from critspec.errors import CheckFailed


def k_for_rate(r_star: float, n: int) -> int:
    """k = floor(r_star * n + 0.5): the number of samples that should lie above tau."""
    return int(math.floor(float(r_star) * n + 0.5))


def exact_tail_tau(values_desc: np.ndarray, k: int) -> float:
    """tau from values sorted descending (at least k + 1 of them), in float64."""
    if k < 0 or len(values_desc) < k + 1:
        raise CheckFailed(
            f"tail quantile needs k + 1 = {k + 1} values but has {len(values_desc)}: "
            "the target rate is too close to 1 for this slice; lower the target rate"
        )
    if k == 0:
        return float(values_desc[0])
    return (float(values_desc[k - 1]) + float(values_desc[k])) / 2.0


@dataclass(frozen=True)
class TopK:
    """The top values of one layer: float32 descending, ties by position ascending."""

    values: np.ndarray
    positions: np.ndarray
    n: int


@dataclass(frozen=True)
class RateMatch:
    """Rate matching of one layer: tau, k, n, achieved = n_above / n, |achieved - r_star|."""

    tau: float
    r_star: float
    k: int
    n: int
    n_above: int
    achieved: float
    abs_err: float


def match_rate(top: TopK, r_star: float) -> RateMatch:
    """Exact tau and achieved rate for one layer from its top-K buffer."""
    k = k_for_rate(r_star, top.n)
    if len(top.values) < min(k + 1, top.n):
        raise CheckFailed(
            f"top-K buffer holds {len(top.values)} values but k + 1 = {k + 1} are needed: "
            "build the buffer with K = max k + 1 over the target rates"
        )
    tau = exact_tail_tau(top.values, k)
    # float64 compare: tau is a midpoint of two float32 values and must not be rounded.
    n_above = int(np.count_nonzero(top.values.astype(np.float64) > tau))
    achieved = n_above / top.n
    return RateMatch(
        tau=tau,
        r_star=float(r_star),
        k=k,
        n=top.n,
        n_above=n_above,
        achieved=achieved,
        abs_err=abs(achieved - float(r_star)),
    )


class StreamingTopK:
    """Per-layer top-K values of v and their flat positions, streamed over batches.

    The flat position of v[b, t, i] in a batch starting at window row ``row_start``
    is ((row_start + b) * T + t) * d_ff + i, i.e. row_start * row_size plus the
    index into the flattened batch (row_size = T * d_ff). Batches of a layer must
    arrive in ascending row order; that is what makes the strict prefilter exact
    under ties (a later equal value never outranks a kept one).

    Cost: once a layer's buffer holds K values, a batch costs one vectorized compare
    against the current K-th value; only the survivors are merged. The buffer is an
    unordered set until finalize(), which sorts once.
    """

    def __init__(self, n_layers: int, K: int | Sequence[int], row_size: int) -> None:
        ks = [int(K)] * n_layers if isinstance(K, int) else [int(k) for k in K]
        if len(ks) != n_layers or min(ks) < 1:
            raise ValueError(f"K must be >= 1 for each of the {n_layers} layers, got {ks}")
        self.n_layers = n_layers
        self.K = ks
        self.row_size = int(row_size)
        self._values: list[torch.Tensor | None] = [None] * n_layers
        self._positions: list[torch.Tensor | None] = [None] * n_layers
        self._kth: list[torch.Tensor | None] = [None] * n_layers
        self._n = [0] * n_layers
        self._next_row = [0] * n_layers

    def update(self, layer: int, v: torch.Tensor, row_start: int) -> None:
        """Merge v [B, ...] (B window rows of row_size values each) of one layer."""
        if row_start < self._next_row[layer]:
            raise ValueError(
                f"layer {layer}: batch at row {row_start} arrives after row "
                f"{self._next_row[layer]}; feed batches in ascending row order"
            )
        flat = v.reshape(-1)
        if flat.numel() % self.row_size:
            raise ValueError(f"batch of {flat.numel()} values is not whole rows of {self.row_size}")
        self._next_row[layer] = row_start + flat.numel() // self.row_size
        self._n[layer] += flat.numel()
        offset = row_start * self.row_size
        kth = self._kth[layer]
        if kth is None:
            idx = torch.arange(flat.numel(), device=flat.device)
            vals = flat
        else:
            idx = torch.nonzero(flat > kth).squeeze(1)
            if idx.numel() == 0:
                return
            vals = flat[idx]
        vals = vals.to(torch.float32)
        pos = idx + offset
        if self._values[layer] is not None:
            vals = torch.cat((self._values[layer], vals))
            pos = torch.cat((self._positions[layer], pos))
        self._select(layer, vals, pos)

    def _select(self, layer: int, vals: torch.Tensor, pos: torch.Tensor) -> None:
        K = self.K[layer]
        if vals.numel() <= K:
            self._values[layer], self._positions[layer] = vals, pos
            return
        # K-th largest value; ties at it are resolved by smallest position so the kept
        # set is the top K of (value desc, position asc) whatever the selection kernel does.
        kth = torch.kthvalue(vals, vals.numel() - K + 1).values
        above = vals > kth
        n_above = int(above.sum())
        tied = torch.nonzero(vals == kth).squeeze(1)
        tied = tied[torch.argsort(pos[tied], stable=True)[: K - n_above]]
        keep = torch.cat((torch.nonzero(above).squeeze(1), tied))
        self._values[layer], self._positions[layer] = vals[keep], pos[keep]
        self._kth[layer] = kth

    def n_seen(self, layer: int) -> int:
        return self._n[layer]

    def finalize(self) -> list[TopK]:
        """Per layer: values descending, ties by position ascending, as numpy."""
        out = []
        for layer in range(self.n_layers):
            if self._values[layer] is None:
                out.append(TopK(np.empty(0, np.float32), np.empty(0, np.int64), self._n[layer]))
                continue
            vals = self._values[layer].cpu().numpy()
            pos = self._positions[layer].cpu().numpy()
            order = np.lexsort((pos, -vals))
            out.append(TopK(values=vals[order], positions=pos[order], n=self._n[layer]))
        return out
