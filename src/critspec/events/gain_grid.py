"""Phase 2 gain grid core: one forward pass per gain, every condition from it
(spec/02_RATE_MATCHING.md, spec/03_BRANCHING_AND_NULLS.md, spec/08_TEST_PLAN.md).

For each gain g the slice runs once, in batches. The u hook standardizes each
layer's u once and feeds v of every spike definition into a streaming top-K
buffer (K = the largest k over the target rates, plus one). After the pass,
each (spike definition, target rate, layer) gets its exact tail threshold tau,
the achieved rate (checked against the tolerance), and the event positions above
tau, which make the lattice A; branching on X = A > 0 and on its
time-permutation null gives the metrics. Memory per gain is the top-K buffers and
one lattice at a time, independent of how many batches the slice has.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np
import pandas as pd
import torch

from canon import CANON
from critspec.errors import CheckFailed
from critspec.events.branching import branching
from critspec.events.lattice import lattice_from_positions
from critspec.events.null import time_permute
from critspec.events.spikes import spike_values, standardize, z_region
from critspec.events.tail_quantile import (
    RateMatch,
    StreamingTopK,
    event_positions,
    indices_above,
    k_for_rate,
    match_rate,
    sample_stride,
)

OnU = Callable[[int, torch.Tensor], None]
ForwardFn = Callable[[torch.Tensor, float, OnU], None]
"""forward_fn(input_ids [B, T] on device, g, on_u) runs the model at gain g and calls
on_u(layer, u float32 [B, T, d_ff]) once per layer."""


@dataclass(frozen=True)
class MetricsRow:
    """One row of the metrics artifact: one (spike_def_id, target_rate, g)."""

    spike_def_id: str
    target_rate: float
    g: float
    b_time: float
    b_depth: float
    b_tot: float
    b_time_perm: float
    b_depth_perm: float
    b_tot_perm: float
    delta_b_time: float
    delta_b_depth: float
    delta_b_tot: float
    achieved_rate_mean: float
    achieved_rate_max_abs_err: float
    rate_match_tol_abs: float
    n_sequences: int
    n_events: int
    n_occupied: int


@dataclass(frozen=True)
class TauRow:
    """One row of the tau_rate_matched artifact: one (spike_def_id, target_rate, g, layer)."""

    spike_def_id: str
    target_rate: float
    g: float
    layer: int
    tau: float
    r_star: float
    achieved_rate: float
    abs_err: float
    k: int
    n: int


@dataclass(frozen=True)
class GainGridResult:
    """Rows sorted by (spike_def_id, target_rate, g[, layer])."""

    metrics: tuple[MetricsRow, ...]
    tau: tuple[TauRow, ...]


# Column dtypes of the artifacts, keyed by the row dataclasses' annotations.
_DTYPES = {"str": object, "float": "float64", "int": "int64"}


def _frame(rows: Sequence[object], row_type: type) -> pd.DataFrame:
    cols = fields(row_type)
    frame = pd.DataFrame([astuple(r) for r in rows], columns=[f.name for f in cols])
    return frame.astype({f.name: _DTYPES[f.type] for f in cols})


def metrics_frame(result: GainGridResult) -> pd.DataFrame:
    """The metrics rows as a DataFrame with the artifact's column order and dtypes."""
    return _frame(result.metrics, MetricsRow)


def tau_frame(result: GainGridResult) -> pd.DataFrame:
    """The tau rows as a DataFrame with the artifact's column order and dtypes."""
    return _frame(result.tau, TauRow)


def conditions(
    spike_def_ids: Sequence[str], r_star: Mapping[tuple[str, float], np.ndarray], n_layers: int
) -> list[tuple[str, float]]:
    """The (spike_def_id, target_rate) pairs to evaluate, sorted; each r_star must be [L]."""
    out = []
    for sd in sorted(set(spike_def_ids)):
        rates = sorted(float(r) for s, r in r_star if s == sd)
        if not rates:
            raise CheckFailed(f"no r_star for spike definition {sd}: rerun phase 1 calibration")
        for r in rates:
            if np.asarray(r_star[(sd, r)]).shape != (n_layers,):
                raise CheckFailed(
                    f"r_star for ({sd}, {r}) has shape {np.asarray(r_star[(sd, r)]).shape}, "
                    f"expected ({n_layers},): calibration and model disagree on L"
                )
            out.append((sd, r))
    return out


def check_rate_match(
    g: float, spike_def_id: str, target_rate: float, matches: Sequence[RateMatch], tol: float
) -> None:
    """Every layer's |achieved - r_star| must be within tol (spec/02_RATE_MATCHING.md,
    spec/03_BRANCHING_AND_NULLS.md, exit 2 otherwise)."""
    for layer, m in enumerate(matches):
        if not m.abs_err <= tol:
            raise CheckFailed(
                f"rate match failed at g={g}, {spike_def_id}, target_rate={target_rate}, "
                f"layer {layer}: achieved {m.achieved:.6g} vs r_star {m.r_star:.6g}, "
                f"|error| {m.abs_err:.3g} > tolerance {tol:g}; ties in v at tau or too few "
                "samples: use more windows or a larger target rate"
            )


def condition_rows(
    *,
    spike_def_id: str,
    target_rate: float,
    g: float,
    A: np.ndarray,
    matches: Sequence[RateMatch],
    null_id: str,
    rate_match_tol_abs: float,
) -> tuple[MetricsRow, list[TauRow]]:
    """Branching, null and rows for one (sd, r, g) from its lattice and rate matches."""
    X = A > 0
    b = branching(X)
    A_perm = time_permute(A, (null_id, spike_def_id, target_rate, g))
    b_perm = branching(A_perm > 0)
    achieved = np.array([m.achieved for m in matches], dtype=np.float64)
    metrics = MetricsRow(
        spike_def_id=spike_def_id,
        target_rate=target_rate,
        g=g,
        b_time=b.b_time,
        b_depth=b.b_depth,
        b_tot=b.b_tot,
        b_time_perm=b_perm.b_time,
        b_depth_perm=b_perm.b_depth,
        b_tot_perm=b_perm.b_tot,
        delta_b_time=b.b_time - b_perm.b_time,
        delta_b_depth=b.b_depth - b_perm.b_depth,
        delta_b_tot=b.b_tot - b_perm.b_tot,
        achieved_rate_mean=float(achieved.mean()),
        achieved_rate_max_abs_err=max(m.abs_err for m in matches),
        rate_match_tol_abs=float(rate_match_tol_abs),
        n_sequences=int(A.shape[0]),
        n_events=int(A.sum(dtype=np.int64)),
        n_occupied=b.n_occupied,
    )
    taus = [
        TauRow(
            spike_def_id=spike_def_id,
            target_rate=target_rate,
            g=g,
            layer=layer,
            tau=m.tau,
            r_star=m.r_star,
            achieved_rate=m.achieved,
            abs_err=m.abs_err,
            k=m.k,
            n=m.n,
        )
        for layer, m in enumerate(matches)
    ]
    return metrics, taus


def sorted_result(metrics: list[MetricsRow], taus: list[TauRow]) -> GainGridResult:
    return GainGridResult(
        metrics=tuple(sorted(metrics, key=lambda m: (m.spike_def_id, m.target_rate, m.g))),
        tau=tuple(sorted(taus, key=lambda t: (t.spike_def_id, t.target_rate, t.g, t.layer))),
    )


def _check_gains(gains: Sequence[float]) -> list[float]:
    out = [float(g) for g in gains]
    if len(set(out)) != len(out):
        raise CheckFailed(f"gain grid {out} has duplicate gains: fix the configured grid")
    return out


def _check_u(u: torch.Tensor, layer: int, g: float, shape: tuple[int, ...]) -> None:
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


def _u_bounds(
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


def _candidates(
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
    mask = u2 > hi
    if lo is not None:
        mask |= u2 < lo
    return torch.nonzero(mask.reshape(-1)).squeeze(1)


def _feed(
    tops: Mapping[str, StreamingTopK],
    layer: int,
    u: torch.Tensor,
    mu_l: torch.Tensor,
    sigma_l: torch.Tensor,
    eps: float,
    row_start: int,
    buffers: MaskBuffers,
) -> None:
    """Offer one layer-batch of u to every spike definition's top-K with one shared scan.

    Each definition's floor is a region of z (z_region). The scan compares u itself
    with per-unit bounds of the union of the regions (no full standardization pass);
    z is computed only for the candidates, by the same formula, so it is bit-identical
    to standardizing everything, and the exact floor test is made on that z.
    """
    d_ff = u.shape[-1]
    u2 = u.reshape(-1, d_ff)
    numel = u2.numel()
    floors = {}
    for sd, top in tops.items():
        floor = top.floor(layer)
        if floor == -math.inf:
            stride = sample_stride(numel)
            flat_idx = torch.arange(0, numel, stride, device=u.device)
            units = flat_idx % d_ff
            z_sample = standardize(u2.reshape(-1)[::stride], mu_l[units], sigma_l[units], eps)
            floor = top.propose_floor(layer, spike_values(z_sample, sd), numel)
        floors[sd] = floor
    regions = [z_region(sd, floor) for sd, floor in floors.items()]
    lower, upper = max(lo for lo, _ in regions), min(up for _, up in regions)
    if upper > -math.inf:
        lo_u, hi_u = _u_bounds(mu_l, sigma_l + eps, lower, upper)
        idx = _candidates(u2, lo_u, hi_u, buffers)
        units = idx % d_ff
        z_cand = standardize(u2.reshape(-1).index_select(0, idx), mu_l[units], sigma_l[units], eps)
    z_all = None
    for sd, top in tops.items():
        if upper > -math.inf:
            v = spike_values(z_cand, sd)
            sel = indices_above(v, floors[sd])
            if top.offer(
                layer,
                v.index_select(0, sel),
                idx.index_select(0, sel),
                numel,
                row_start,
                floors[sd],
            ):
                continue
        if z_all is None:
            z_all = standardize(u2, mu_l, sigma_l, eps).reshape(-1)
        everything = torch.arange(numel, device=u.device)
        top.offer(layer, spike_values(z_all, sd), everything, numel, row_start, -math.inf)


def _stream_one_gain(
    forward_fn: ForwardFn,
    input_ids: torch.Tensor,
    g: float,
    *,
    mu_t: torch.Tensor,
    sigma_t: torch.Tensor,
    eps: float,
    K: Mapping[str, list[int]],
    batch_size: int,
    device: torch.device | str,
) -> dict[str, StreamingTopK]:
    n_windows, seq_len = input_ids.shape
    n_layers, d_ff = mu_t.shape
    tops = {sd: StreamingTopK(n_layers, ks, seq_len * d_ff) for sd, ks in K.items()}
    row_start = 0
    buffers = MaskBuffers()
    batch_rows = 0

    def on_u(layer: int, u: torch.Tensor) -> None:
        _check_u(u, layer, g, (batch_rows, seq_len, d_ff))
        _feed(tops, layer, u, mu_t[layer], sigma_t[layer], eps, row_start, buffers)

    with torch.inference_mode():
        for row_start in range(0, n_windows, batch_size):
            batch = input_ids[row_start : row_start + batch_size].to(device)
            batch_rows = batch.shape[0]
            forward_fn(batch, g, on_u)

    n = n_windows * seq_len * d_ff
    for sd, top in tops.items():
        seen = [top.n_seen(layer) for layer in range(n_layers)]
        if seen != [n] * n_layers:
            raise CheckFailed(
                f"at g={g} the u hook delivered {seen} values per layer for {sd}, expected {n} "
                "each: the hook must fire exactly once per layer and batch"
            )
    return tops


def run_gain_grid(
    forward_fn: ForwardFn,
    input_ids: torch.Tensor,
    *,
    mu: np.ndarray,
    sigma: np.ndarray,
    eps: float,
    gains: Sequence[float],
    spike_def_ids: Sequence[str],
    r_star: Mapping[tuple[str, float], np.ndarray],
    rate_match_tol_abs: float,
    null_id: str,
    batch_size: int,
    device: torch.device | str,
    on_progress: Callable[[dict], None] | None = None,
) -> GainGridResult:
    """Branching metrics and rate-matched thresholds for every (sd, r, g)
    (spec/02_RATE_MATCHING.md, spec/03_BRANCHING_AND_NULLS.md)."""
    n_windows, seq_len = input_ids.shape
    n_layers, d_ff = mu.shape
    conds = conditions(spike_def_ids, r_star, n_layers)
    n = n_windows * seq_len * d_ff
    K = {
        sd: [
            min(n, 1 + max(k_for_rate(r_star[(s, r)][layer], n) for s, r in conds if s == sd))
            for layer in range(n_layers)
        ]
        for sd in sorted({s for s, _ in conds})
    }
    mu_t = torch.as_tensor(mu, dtype=torch.float32, device=device)
    sigma_t = torch.as_tensor(sigma, dtype=torch.float32, device=device)
    metrics: list[MetricsRow] = []
    taus: list[TauRow] = []
    for g in _check_gains(gains):
        started = time.perf_counter()
        streamed = _stream_one_gain(
            forward_fn,
            input_ids,
            g,
            mu_t=mu_t,
            sigma_t=sigma_t,
            eps=eps,
            K=K,
            batch_size=batch_size,
            device=device,
        )
        tops = {sd: top.finalize() for sd, top in streamed.items()}
        max_err = 0.0
        for sd, r in conds:
            matches = [
                match_rate(tops[sd][layer], r_star[(sd, r)][layer]) for layer in range(n_layers)
            ]
            check_rate_match(g, sd, r, matches, rate_match_tol_abs)
            A = lattice_from_positions(
                [event_positions(tops[sd][layer], m.tau) for layer, m in enumerate(matches)],
                n_windows,
                seq_len,
                d_ff,
            )
            row, tau_rows = condition_rows(
                spike_def_id=sd,
                target_rate=r,
                g=g,
                A=A,
                matches=matches,
                null_id=null_id,
                rate_match_tol_abs=rate_match_tol_abs,
            )
            metrics.append(row)
            taus.extend(tau_rows)
            max_err = max(max_err, row.achieved_rate_max_abs_err)
        if on_progress is not None:
            on_progress(
                {"g": g, "seconds": time.perf_counter() - started, "max_abs_rate_err": max_err}
            )
    return sorted_result(metrics, taus)
