"""The u scan Phases 2, 3 and 4 share (spec/02_RATE_MATCHING.md, spec/09_RASTERS.md,
spec/08_TEST_PLAN.md): per-unit u bounds of a z region, the candidate scan, and the
feed of one layer-batch into every spike definition's streaming top-K. No model here:
the pass engine's consumers (critspec.passes.consumers) call these on each u.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch

from canon import CANON
from critspec.errors import CheckFailed
from critspec.events.spikes import spike_values, standardize, z_region
from critspec.events.tail_quantile import StreamingTopK, indices_above, sample_stride


def check_u(u: torch.Tensor, layer: int, g: float, shape: tuple[int, ...]) -> None:
    if tuple(u.shape) != shape:
        raise CheckFailed(
            f"u of layer {layer} has shape {tuple(u.shape)}, expected {shape}: "
            "the architecture adapter hooks the wrong module"
        )
    # A sum is a single cheap pass and is non-finite whenever some u is; only then pay
    # for the exact elementwise test (a finite sum that overflowed is not a failure).
    if not bool(torch.isfinite(u.sum())) and not bool(torch.isfinite(u).all()):
        raise CheckFailed(
            f"non-finite u at layer {layer} at g={g}: the model overflows at this gain/dtype; "
            "run in fp32 or narrow the gain grid"
        )


# Relative slack of the u-space prefilter bounds: 64 float32 ulps, far above rounding,
# so every u whose z passes a floor also passes its bound; the exact test is on z.
U_BOUND_SLACK = 64 * float(np.finfo(np.float32).eps)


def u_bounds(
    mu_l: torch.Tensor, scale_l: torch.Tensor, lower: float, upper: float
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Per-unit u bounds, slightly relaxed, with z > upper => u > hi and z < lower => u < lo.

    z = (u - mu) / scale with scale = sigma + eps > 0, so z > c <=> u > mu + c * scale.
    """
    mu64, scale64 = mu_l.double(), scale_l.double()

    def bound(c: float, sign: float) -> torch.Tensor:
        edge = mu64 + c * scale64
        slack = U_BOUND_SLACK * (mu64.abs() + abs(c) * scale64) + torch.finfo(torch.float32).tiny
        return (edge + sign * slack).float()

    hi = bound(upper, -1.0) if upper > -math.inf else None
    lo = bound(lower, 1.0) if lower > -math.inf else None
    return lo, hi


class MaskBuffers:
    """Two reusable boolean buffers for the CPU scan: a fresh 1-byte-per-value mask per
    layer-batch would be allocated and page-faulted anew each time on the hot path."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()
        self._a = self._b = np.empty(0, dtype=bool)

    def get(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if shape != self._shape:
            self._shape = shape
            self._a, self._b = np.empty(shape, dtype=bool), np.empty(shape, dtype=bool)
        return self._a, self._b


def candidates(
    u2: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor, buffers: MaskBuffers
) -> torch.Tensor:
    """Ascending flat indices of u2 [rows, d_ff] outside the per-unit bounds."""
    if u2.device.type == CANON.ENUM.DEVICE.CPU:
        # numpy's compare and flatnonzero are several times faster than torch's CPU bool
        # kernels, and this scan is Phase 2's hot loop (spec/08_TEST_PLAN.md); same indices.
        arr = u2.numpy()
        mask, below = buffers.get(arr.shape)
        np.greater(arr, hi.numpy(), out=mask)
        if lo is not None:
            np.less(arr, lo.numpy(), out=below)
            np.logical_or(mask, below, out=mask)
        return torch.from_numpy(np.flatnonzero(mask))
    return candidates_torch(u2, lo, hi)


def candidates_torch(u2: torch.Tensor, lo: torch.Tensor | None, hi: torch.Tensor) -> torch.Tensor:
    """candidates with torch's kernels, as accelerators run it (any device)."""
    mask = u2 > hi
    if lo is not None:
        mask |= u2 < lo
    return torch.nonzero(mask.reshape(-1)).squeeze(1)


class ZBuffers:
    """Reusable buffers of the CPU scan: z of one layer-batch and two boolean masks (fresh
    ones per layer-batch would be allocated and page-faulted anew on the hot path)."""

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()
        self._z = torch.empty(0)
        self._a = self._b = np.empty(0, dtype=bool)

    def get(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        if shape != self._shape:
            self._shape = shape
            self._z = torch.empty(shape, dtype=torch.float32)
            self._a, self._b = np.empty(shape, dtype=bool), np.empty(shape, dtype=bool)
        return self._z, self._a, self._b


def feed(
    tops: Mapping[str, StreamingTopK],
    layer: int,
    u: torch.Tensor,
    mu_l: torch.Tensor,
    sigma_l: torch.Tensor,
    eps: float,
    row_start: int,
    buffers: ZBuffers,
) -> None:
    """Offer one layer-batch of u to every spike definition's top-K with one shared scan.

    On the CPU, z of the whole layer-batch is computed into a reused buffer and scanned
    (feed_z); elsewhere u is scanned against per-unit bounds (feed_u), which needs no
    buffer as large as u. Both give the same top-K.
    """
    if u.device.type == CANON.ENUM.DEVICE.CPU:
        feed_z(tops, layer, u, mu_l, sigma_l, eps, row_start, buffers)
    else:
        # Off the CPU the candidate scan uses torch's kernels and no mask buffers.
        feed_u(tops, layer, u, mu_l, sigma_l, eps, row_start, MaskBuffers())


def _offer_all(top: StreamingTopK, layer: int, z: torch.Tensor, sd: str, row_start: int) -> None:
    """Offer every value of a layer-batch (a guessed floor kept too few)."""
    everything = torch.arange(z.numel(), device=z.device)
    top.offer(layer, spike_values(z, sd), everything, z.numel(), row_start, -math.inf)


ZSample = Callable[[int], torch.Tensor]
"""z_sample(stride): z of every stride-th value of the layer-batch (flat order)."""


def _floors(
    tops: Mapping[str, StreamingTopK], layer: int, numel: int, z_sample: ZSample
) -> tuple[dict[str, float], float, float]:
    """Each definition's floor (guessed from a strided sample where none is known yet) and
    (lower, upper): v > floor for some definition  =>  z > upper or z < lower."""
    floors = {}
    for sd, top in tops.items():
        floor = top.floor(layer)
        if floor == -math.inf:
            sample = spike_values(z_sample(sample_stride(numel)), sd)
            floor = top.propose_floor(layer, sample, numel)
        floors[sd] = floor
    regions = [z_region(sd, floor) for sd, floor in floors.items()]
    return floors, max(lo for lo, _ in regions), min(up for _, up in regions)


def _offer_candidates(
    tops: Mapping[str, StreamingTopK],
    layer: int,
    floors: Mapping[str, float],
    candidates_z: tuple[torch.Tensor, torch.Tensor] | None,
    numel: int,
    row_start: int,
    z_all: Callable[[], torch.Tensor],
) -> None:
    """Offer each definition its values above its floor among the candidates (flat
    indices and their z; None when some floor admits every value); where a guessed floor
    kept too few, every value of the layer-batch, z_all() made once."""
    full = None
    for sd, top in tops.items():
        if candidates_z is not None:
            idx, z_cand = candidates_z
            v = spike_values(z_cand, sd)
            sel = indices_above(v, floors[sd])
            kept = v.index_select(0, sel), idx.index_select(0, sel)
            if top.offer(layer, *kept, numel, row_start, floors[sd]):
                continue
        if full is None:
            full = z_all()
        _offer_all(top, layer, full, sd, row_start)


def feed_z(
    tops: Mapping[str, StreamingTopK],
    layer: int,
    u: torch.Tensor,
    mu_l: torch.Tensor,
    sigma_l: torch.Tensor,
    eps: float,
    row_start: int,
    buffers: ZBuffers,
) -> None:
    """feed on the CPU: z of the whole layer-batch by standardize's own two operations
    (so bit-identical to it), floors and the candidate scan on z with scalar bounds, and
    the candidates' z gathered from the buffer. On one thread torch's subtract and
    divide and numpy's compare and flatnonzero are the fastest kernels for each step
    (bench/phase2_overhead.py measures the result)."""
    d_ff = u.shape[-1]
    u2 = u.reshape(-1, d_ff)
    numel = u2.numel()
    z, above, below = buffers.get(tuple(u2.shape))
    torch.sub(u2, mu_l, out=z)
    torch.div(z, sigma_l + eps, out=z)
    z_flat = z.reshape(-1)
    floors, lower, upper = _floors(tops, layer, numel, lambda stride: z_flat[::stride])
    found = None
    if upper > -math.inf:
        zn = z.numpy()
        np.greater(zn, upper, out=above)
        if lower > -math.inf:
            np.less(zn, lower, out=below)
            np.logical_or(above, below, out=above)
        idx_np = np.flatnonzero(above)
        found = torch.from_numpy(idx_np), torch.from_numpy(zn.reshape(-1).take(idx_np))
    # offer keeps what it is given: never hand it a view of the reused buffer.
    _offer_candidates(tops, layer, floors, found, numel, row_start, z_flat.clone)


def feed_u(
    tops: Mapping[str, StreamingTopK],
    layer: int,
    u: torch.Tensor,
    mu_l: torch.Tensor,
    sigma_l: torch.Tensor,
    eps: float,
    row_start: int,
    buffers: MaskBuffers,
) -> None:
    """feed without a z buffer (accelerators): the scan compares u itself with per-unit
    bounds of the union of the definitions' z regions (no full standardization pass);
    z is computed only for the candidates, by the same formula, so it is bit-identical
    to standardizing everything, and the exact floor test is made on that z.
    """
    d_ff = u.shape[-1]
    u2 = u.reshape(-1, d_ff)
    u_flat = u2.reshape(-1)
    numel = u2.numel()

    def z_at(idx: torch.Tensor) -> torch.Tensor:
        units = idx % d_ff
        return standardize(u_flat.index_select(0, idx), mu_l[units], sigma_l[units], eps)

    def z_sample(stride: int) -> torch.Tensor:
        return z_at(torch.arange(0, numel, stride, device=u.device))

    floors, lower, upper = _floors(tops, layer, numel, z_sample)
    found = None
    if upper > -math.inf:
        lo_u, hi_u = u_bounds(mu_l, sigma_l + eps, lower, upper)
        idx = candidates(u2, lo_u, hi_u, buffers)
        found = idx, z_at(idx)

    def z_all() -> torch.Tensor:
        return standardize(u2, mu_l, sigma_l, eps).reshape(-1)

    _offer_candidates(tops, layer, floors, found, numel, row_start, z_all)
