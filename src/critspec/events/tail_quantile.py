"""Exact tail quantiles from a streamed top-K buffer (spec/02_RATE_MATCHING.md, "Rate matching").

With n samples of v in a layer and k = floor(r_star * n + 0.5), sort v descending
(1-based v(1) >= v(2) >= ...): tau = v(1) when k = 0, else (v(k) + v(k+1)) / 2 in
float64. Every v > tau has rank <= k, so keeping the top K >= k + 1 values and
their positions is enough for tau, the achieved rate and the event lattice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from canon import CANON
from critspec.errors import CheckFailed


def k_for_rate(r_star: float, n: int) -> int:
    """k = floor(r_star * n + 0.5): the number of samples that should lie above tau."""
    return int(math.floor(float(r_star) * n + 0.5))


def tail_tau(v_k: float, v_k1: float, k: int) -> float:
    """tau from the k-th and (k+1)-th largest values (1-based); v_k is unused when k = 0."""
    if k == 0:
        return float(v_k1)
    return (float(v_k) + float(v_k1)) / 2.0


def exact_tail_tau(values_desc: np.ndarray, k: int) -> float:
    """tau from values sorted descending (at least k + 1 of them), in float64."""
    if k < 0 or len(values_desc) < k + 1:
        raise CheckFailed(
            f"tail quantile needs k + 1 = {k + 1} values but has {len(values_desc)}: "
            "the target rate is too close to 1 for this slice; lower the target rate"
        )
    return tail_tau(values_desc[k - 1] if k else values_desc[0], values_desc[k], k)


@dataclass(frozen=True)
class TopK:
    """The top-K values of one layer (float32) and their flat positions (int64).

    Stored in ascending position order; the set is the top K by (value descending,
    position ascending), so ties at the K-th value keep the earliest positions.
    """

    values: np.ndarray
    positions: np.ndarray
    n: int

    @cached_property
    def values64(self) -> np.ndarray:
        """The values in float64, for comparisons with a float64 tau (made once: every
        target rate of a spike definition compares the same buffer)."""
        return self.values.astype(np.float64)

    def sorted_desc(self) -> TopK:
        """The same entries ordered by value descending, then position ascending."""
        order = np.lexsort((self.positions, -self.values))
        return TopK(values=self.values[order], positions=self.positions[order], n=self.n)


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
    """Exact tau and achieved rate for one layer from its top-K buffer.

    Every v > tau has rank <= k < K, so it is in the buffer: counting there is exact.
    """
    k = k_for_rate(r_star, top.n)
    m = len(top.values)
    if m < k + 1:
        raise CheckFailed(
            f"tail quantile needs k + 1 = {k + 1} values but the top-K buffer holds {m} of "
            f"n = {top.n}: lower the target rate, or build the buffer with K = max k + 1"
        )
    if k == 0:
        tau = tail_tau(0.0, top.values.max(), 0)
    else:
        part = np.partition(top.values, (m - k - 1, m - k))
        tau = tail_tau(part[m - k], part[m - k - 1], k)
    # float64 compare: tau is a midpoint of two float32 values and must not be rounded.
    n_above = int(np.count_nonzero(top.values64 > tau))
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


def event_positions(top: TopK, tau: float) -> np.ndarray:
    """Flat positions of the events v > tau of one layer (all within the top-K buffer)."""
    return top.positions[top.values64 > tau]


# Streaming knobs (cost only; results are exact whatever their values).
SAMPLE_SIZE = 16384  # strided sample used to guess a floor
FLOOR_SIGMAS = 5.0  # a guessed floor keeps K survivors unless the sample is off by this many sd
BUFFER_SLACK = 2.0  # shrink a layer's buffer once it holds more than this many times K


def sample_stride(numel: int) -> int:
    """Stride of the strided sample of numel values (about SAMPLE_SIZE of them)."""
    return max(1, numel // SAMPLE_SIZE)


def guess_rank(K: int, sample_numel: int, numel: int) -> int:
    """Descending rank in a sample whose value should leave at least K of numel above it.

    K of numel values lie above the K-th largest; a sample of sample_numel holds about
    r = K * sample_numel / numel of them, with a binomial spread of about sqrt(r).
    Going FLOOR_SIGMAS spreads (and a few ranks) deeper makes a rejected guess rare;
    a rejection only costs one slower batch.
    """
    r = K * sample_numel / numel
    return math.ceil(r + FLOOR_SIGMAS * math.sqrt(r) + FLOOR_SIGMAS)


def indices_outside(values: torch.Tensor, lower: float, upper: float) -> torch.Tensor:
    """Ascending indices (int64, on values' device) of the 1-D values with
    value > upper or value < lower (lower = -inf: only the upper side)."""
    if values.device.type == CANON.ENUM.DEVICE.CPU:
        # Same result as below; numpy's compare and flatnonzero are several times faster
        # than torch's CPU bool kernels, and this scan is Phase 2's hot loop (spec/08_TEST_PLAN.md).
        arr = values.numpy()
        mask = arr > upper
        if lower > -math.inf:
            mask |= arr < lower
        return torch.from_numpy(np.flatnonzero(mask))
    mask = values > upper
    if lower > -math.inf:
        mask |= values < lower
    return torch.nonzero(mask).squeeze(1)


def indices_above(values: torch.Tensor, floor: float) -> torch.Tensor:
    """Ascending indices (int64, on values' device) of the 1-D values strictly above floor."""
    return indices_outside(values, -math.inf, floor)


def _take(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    # index_select is about twice as fast as advanced indexing on CPU.
    return values.index_select(0, idx)


def _kth_largest(values: torch.Tensor, rank: int) -> float:
    """The rank-th largest value (1-based) of the 1-D values."""
    if values.device.type == CANON.ENUM.DEVICE.CPU:
        # The same value; numpy's introselect is about three times faster than
        # torch.kthvalue on one CPU thread, and floors are chosen once per batch.
        arr = values.numpy()
        return float(np.partition(arr, arr.size - rank)[arr.size - rank])
    return float(torch.kthvalue(values, values.numel() - rank + 1).values)


class StreamingTopK:
    """Per-layer top-K values of v and their flat positions, streamed over batches.

    The flat position of v[b, t, i] in a batch starting at window row ``row_start``
    is ((row_start + b) * T + t) * d_ff + i, i.e. row_start * row_size plus the
    index into the flattened batch (row_size = T * d_ff). Batches of a layer must
    arrive in ascending row order, so a later value never outranks an equal kept one.

    Cost (spec/08_TEST_PLAN.md): each layer keeps a floor, a value below which nothing that
    arrives later can enter the top K. A batch costs one vectorized compare against
    the floor; only survivors are copied. The first batch gets a floor guessed from
    a strided sample (accepted only if at least K values survive, so the guess never
    changes the result). The buffer holds every kept value above the floor, between
    K and BUFFER_SLACK * K of them; when it overflows, a new floor is guessed the
    same way. The exact top K is cut once, in finalize().
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
        self._floor = [-math.inf] * n_layers
        self._n = [0] * n_layers
        self._next_row = [0] * n_layers

    def floor(self, layer: int) -> float:
        """Values at or below this never enter the top K any more (-inf until known)."""
        return self._floor[layer]

    def propose_floor(self, layer: int, v_sample: torch.Tensor, batch_numel: int) -> float:
        """A prefilter floor for the next batch: the known floor, else a guess from a
        strided sample of the batch's values (one in every sample_stride(batch_numel))."""
        if self._floor[layer] > -math.inf:
            return self._floor[layer]
        rank = guess_rank(self.K[layer], v_sample.numel(), batch_numel)
        if rank >= v_sample.numel():
            return -math.inf
        return _kth_largest(v_sample.reshape(-1), rank)

    def _start_batch(self, layer: int, numel: int, row_start: int) -> int:
        if row_start < self._next_row[layer]:
            raise ValueError(
                f"layer {layer}: batch at row {row_start} arrives after row "
                f"{self._next_row[layer]}; feed batches in ascending row order"
            )
        if numel % self.row_size:
            raise ValueError(f"batch of {numel} values is not whole rows of {self.row_size}")
        self._next_row[layer] = row_start + numel // self.row_size
        return row_start * self.row_size

    def offer(
        self,
        layer: int,
        values: torch.Tensor,
        positions: torch.Tensor,
        batch_numel: int,
        row_start: int,
        floor: float,
    ) -> bool:
        """Add a batch given as every value above ``floor`` with its flat position
        (ascending). Returns False, changing nothing, if a guessed floor leaves fewer
        than K values: then offer the batch again with floor=-inf."""
        kept_v, kept_p = self._values[layer], self._positions[layer]
        guessed = floor > self._floor[layer]
        if guessed and kept_v is not None:
            keep = indices_above(kept_v, floor)
            kept_v, kept_p = _take(kept_v, keep), _take(kept_p, keep)
        n_kept = 0 if kept_v is None else kept_v.numel()
        if guessed and n_kept + values.numel() < self.K[layer]:
            return False
        offset = self._start_batch(layer, batch_numel, row_start)
        self._n[layer] += batch_numel
        values = values.to(torch.float32)
        positions = positions + offset
        if kept_v is not None:
            values = torch.cat((kept_v, values))
            positions = torch.cat((kept_p, positions))
        self._values[layer], self._positions[layer] = values, positions
        if guessed:
            self._floor[layer] = floor
        if values.numel() > BUFFER_SLACK * self.K[layer]:
            self._shrink(layer)
        return True

    def update(self, layer: int, v: torch.Tensor, row_start: int) -> None:
        """Merge v [B, ...] (B window rows of row_size values each) of one layer."""
        flat = v.reshape(-1)
        floor = self.propose_floor(layer, flat[:: sample_stride(flat.numel())], flat.numel())
        if floor > -math.inf:
            idx = indices_above(flat, floor)
            if self.offer(layer, _take(flat, idx), idx, flat.numel(), row_start, floor):
                return
        idx = torch.arange(flat.numel(), device=flat.device)
        self.offer(layer, flat, idx, flat.numel(), row_start, -math.inf)

    def _shrink(self, layer: int) -> None:
        vals, pos = self._values[layer], self._positions[layer]
        K = self.K[layer]
        stride = sample_stride(vals.numel())
        sample = vals[::stride]
        rank = guess_rank(K, sample.numel(), vals.numel())
        floor = _kth_largest(sample, rank) if rank < sample.numel() else -math.inf
        keep = indices_above(vals, floor)
        if keep.numel() < K:
            # The guess kept too few (heavy ties or a skewed sample): cut the exact top K,
            # ties at the K-th value by earliest position (the buffer is in position order).
            floor = _kth_largest(vals, K)
            above = vals > floor
            tied = vals == floor
            mask = above | (tied & (torch.cumsum(tied, 0) <= K - int(above.sum())))
            keep = torch.nonzero(mask).squeeze(1)
        self._values[layer], self._positions[layer] = _take(vals, keep), _take(pos, keep)
        self._floor[layer] = max(self._floor[layer], floor)

    def n_seen(self, layer: int) -> int:
        return self._n[layer]

    def finalize(self) -> list[TopK]:
        """Per layer, the exact top K by (value desc, position asc), in position order."""
        out = []
        for layer in range(self.n_layers):
            if self._values[layer] is None:
                out.append(TopK(np.empty(0, np.float32), np.empty(0, np.int64), self._n[layer]))
                continue
            vals = self._values[layer].cpu().numpy()
            pos = self._positions[layer].cpu().numpy()
            K = self.K[layer]
            if len(vals) > K:
                kth = np.partition(vals, len(vals) - K)[len(vals) - K]
                above = vals > kth
                tied = vals == kth
                keep = above | (tied & (np.cumsum(tied) <= K - int(above.sum())))
                vals, pos = vals[keep], pos[keep]
            out.append(TopK(values=vals, positions=pos, n=self._n[layer]))
        return out
