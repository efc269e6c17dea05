"""Phase 3 raster extraction core: Phase 2's tau applied to a held-out slice (spec/09_RASTERS.md,
spec/08_TEST_PLAN.md).

Conditions (spike definition, target rate, gain) are grouped by gain; each gain
costs one batched forward pass. In that pass every layer's u is scanned once
against per-unit u bounds of the loosest threshold of the pass (the same scan as
Phase 2's, gain_grid._candidates), z is computed only for the candidates by the
Phase 1 formula (spikes.standardize, bit-identical to standardizing everything),
and every spike definition and rate of the pass counts its events v > tau from
that one z. Counts stay on the device until the pass ends; only the lattice
[conditions of the gain, N, L, T] comes back to the host.

tau is float64 and z float32: for float32 z, z > tau exactly when z > tau32, the
largest float32 <= tau (float32_floor), so the device compares in float32 and the
events equal Phase 2's float64 test value for value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from critspec.errors import CheckFailed, ConfigError
from critspec.events.gain_grid import (
    ForwardFn,
    MaskBuffers,
    _candidates,
    _check_u,
    _u_bounds,
)
from critspec.events.lattice import UINT16_MAX
from critspec.events.spikes import SPIKE_DEF_IDS, spike_values, standardize, z_region


@dataclass(frozen=True)
class RasterCondition:
    """One real condition of Phase 3: its id (= its row in A), keys and Phase 2's tau.

    tau and r_star are float64 [L]: the threshold of each layer calibrated by Phase 2
    at this (spike_def_id, target_rate, g), and the rate it was matched to.
    """

    cond_id: int
    spike_def_id: str
    target_rate: float
    g: float
    tau: np.ndarray
    r_star: np.ndarray


@dataclass(frozen=True)
class RasterResult:
    """A uint16 [C, N, L, T] event counts; achieved_rate float64 [C, L], #(v > tau) / (N T d_ff)."""

    A: np.ndarray
    achieved_rate: np.ndarray


def float32_floor(tau: np.ndarray) -> np.ndarray:
    """The largest float32 <= tau, elementwise.

    For float32 v: v > tau  <=>  v > float32_floor(tau) (nothing float32 lies strictly between).
    """
    tau = np.asarray(tau, dtype=np.float64)
    with np.errstate(over="ignore"):  # beyond float32's range rounds to inf, stepped back below
        out = tau.astype(np.float32)
    over = out.astype(np.float64) > tau
    out[over] = np.nextafter(out[over], np.float32(-np.inf))
    return out


def check_conditions(conditions: Sequence[RasterCondition], n_layers: int) -> None:
    """cond_id = position 0..C-1, known spike definitions, distinct keys, finite tau/r_star [L]."""
    if not conditions:
        raise ConfigError("no raster conditions: the gain grid run has no (sd, r, g) rows")
    seen: set[tuple[str, float, float]] = set()
    for pos, c in enumerate(conditions):
        where = f"raster condition {pos} ({c.spike_def_id}, r={c.target_rate}, g={c.g})"
        if c.cond_id != pos:
            raise ConfigError(f"{where} has cond_id {c.cond_id}: pass conditions in cond_id order")
        if c.spike_def_id not in SPIKE_DEF_IDS:
            raise ConfigError(f"{where}: unknown spike definition; use one of {SPIKE_DEF_IDS}")
        key = (c.spike_def_id, float(c.target_rate), float(c.g))
        if key in seen:
            raise ConfigError(f"{where} repeats an earlier condition: each (sd, r, g) once")
        seen.add(key)
        for name in ("tau", "r_star"):
            arr = np.asarray(getattr(c, name))
            if arr.shape != (n_layers,):
                raise ConfigError(
                    f"{where}: {name} has shape {arr.shape}, expected ({n_layers},): the gain "
                    "grid run and the calibration disagree with the model on L"
                )
            if not np.isfinite(arr).all():
                raise ConfigError(f"{where}: {name} is not finite; rerun the gain grid")


def raster_conditions(tau: pd.DataFrame, n_layers: int) -> list[RasterCondition]:
    """The conditions of a Phase 2 tau table (one row per spike_def_id, target_rate, g,
    layer; columns tau and r_star), sorted by (spike_def_id, target_rate, g) and numbered
    0..C-1 in that order; every condition must have every layer 0..L-1 exactly once."""
    keys = ["spike_def_id", "target_rate", "g"]
    out = []
    ordered = tau.sort_values([*keys, "layer"], kind="stable")
    for cond_id, (key, rows) in enumerate(ordered.groupby(keys, sort=True)):
        if rows["layer"].tolist() != list(range(n_layers)):
            raise ConfigError(
                f"tau table: condition {key} has layers {rows['layer'].tolist()}, expected "
                f"0..{n_layers - 1} once each: the gain grid run does not match the model"
            )
        out.append(
            RasterCondition(
                cond_id=cond_id,
                spike_def_id=str(key[0]),
                target_rate=float(key[1]),
                g=float(key[2]),
                tau=rows["tau"].to_numpy(dtype=np.float64),
                r_star=rows["r_star"].to_numpy(dtype=np.float64),
            )
        )
    return out


def _gain_groups(conditions: Sequence[RasterCondition]) -> dict[float, list[RasterCondition]]:
    groups: dict[float, list[RasterCondition]] = {}
    for c in conditions:
        groups.setdefault(float(c.g), []).append(c)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class _SpikeDefPlan:
    """The conditions of one spike definition in one pass: float32 thresholds [L, n]
    (float32_floor of each tau), on the host and on the device."""

    spike_def_id: str
    cond_ids: list[int]
    thresholds_host: np.ndarray
    thresholds: torch.Tensor


def _plans(conds: Sequence[RasterCondition], device: torch.device | str) -> list[_SpikeDefPlan]:
    plans = []
    for sd in SPIKE_DEF_IDS:
        mine = [c for c in conds if c.spike_def_id == sd]
        if mine:
            tau32 = np.stack([float32_floor(c.tau) for c in mine], axis=1)  # [L, n]
            ids = [c.cond_id for c in mine]
            plans.append(_SpikeDefPlan(sd, ids, tau32, torch.from_numpy(tau32).to(device)))
    return plans


def _layer_bounds(
    plans: Sequence[_SpikeDefPlan], mu_t: torch.Tensor, sigma_t: torch.Tensor, eps: float
) -> list[tuple[torch.Tensor | None, torch.Tensor] | None]:
    """Per layer, the u bounds of the union of every plan's region above its lowest
    threshold (None: some threshold admits every z, so every value is a candidate)."""
    out = []
    for layer in range(mu_t.shape[0]):
        regions = [z_region(p.spike_def_id, float(p.thresholds_host[layer].min())) for p in plans]
        lower, upper = max(lo for lo, _ in regions), min(up for _, up in regions)
        if upper == -math.inf:
            out.append(None)
            continue
        lo_u, hi_u = _u_bounds(mu_t[layer], sigma_t[layer] + eps, lower, upper)
        out.append((lo_u, hi_u))
    return out


def _count_one_gain(
    forward_fn: ForwardFn,
    input_ids: torch.Tensor,
    g: float,
    conds: Sequence[RasterCondition],
    *,
    mu_t: torch.Tensor,
    sigma_t: torch.Tensor,
    eps: float,
    batch_size: int,
    device: torch.device | str,
) -> list[tuple[list[int], np.ndarray]]:
    """One pass at gain g: per spike definition, (cond ids, counts int32 [n, N, L, T])."""
    n_windows, seq_len = input_ids.shape
    n_layers, d_ff = mu_t.shape
    plans = _plans(conds, device)
    bounds = _layer_bounds(plans, mu_t, sigma_t, eps)
    counts = [
        torch.zeros(
            (len(p.cond_ids), n_windows, n_layers, seq_len), dtype=torch.int32, device=device
        )
        for p in plans
    ]
    buffers = MaskBuffers()
    fired = np.zeros(n_layers, dtype=np.int64)
    row_start = batch_rows = 0

    def on_u(layer: int, u: torch.Tensor) -> None:
        _check_u(u, layer, g, (batch_rows, seq_len, d_ff))
        fired[layer] += 1
        u2 = u.reshape(-1, d_ff)
        n_sites = batch_rows * seq_len
        if bounds[layer] is None:
            idx = torch.arange(u2.numel(), device=u2.device)
        else:
            idx = _candidates(u2, *bounds[layer], buffers).to(u2.device)
        units = idx % d_ff
        z = standardize(
            u2.reshape(-1).index_select(0, idx), mu_t[layer][units], sigma_t[layer][units], eps
        )
        site = idx // d_ff
        for plan, out in zip(plans, counts, strict=True):
            thr = plan.thresholds[layer]
            n = thr.numel()
            # Events of condition j go to bins j * n_sites + site; non-events to one
            # trailing bin that is dropped: a single weightless bincount (deterministic on
            # CUDA, no host sync) counts every condition of the definition.
            above = spike_values(z, plan.spike_def_id)[None, :] > thr[:, None]
            offset = torch.arange(n, device=site.device)[:, None] * n_sites
            key = torch.where(above, site[None, :] + offset, n * n_sites)
            binned = torch.bincount(key.reshape(-1), minlength=n * n_sites + 1)[:-1]
            out[:, row_start : row_start + batch_rows, layer, :] = binned.reshape(
                n, batch_rows, seq_len
            )

    with torch.inference_mode():
        for row_start in range(0, n_windows, batch_size):
            batch = input_ids[row_start : row_start + batch_size].to(device)
            batch_rows = batch.shape[0]
            forward_fn(batch, g, on_u)
            if not (fired == 1).all():
                raise CheckFailed(
                    f"at g={g} the u hook fired {fired.tolist()} times per layer for the batch at "
                    f"window {row_start}, expected once each: the hook must fire exactly once "
                    "per layer and batch"
                )
            fired[:] = 0
    return [(p.cond_ids, out.cpu().numpy()) for p, out in zip(plans, counts, strict=True)]


def extract_rasters(
    forward_fn: ForwardFn,
    input_ids: torch.Tensor,
    *,
    mu: np.ndarray,
    sigma: np.ndarray,
    eps: float,
    conditions: Sequence[RasterCondition],
    batch_size: int,
    device: torch.device | str,
    on_progress: Callable[[dict], None] | None = None,
) -> RasterResult:
    """Event counts of every condition on the slice, one forward pass per distinct g
    (spec/09_RASTERS.md). on_progress gets {"g", "seconds", "max_abs_rate_err"} per gain,
    the error being the largest |achieved - r_star| over that gain's conditions and layers."""
    n_windows, seq_len = input_ids.shape
    n_layers, d_ff = mu.shape
    if d_ff > UINT16_MAX:
        raise ConfigError(
            f"d_ff {d_ff} exceeds {UINT16_MAX}, the largest count a uint16 raster holds: "
            "this model cannot be rastered with the contracted uint16 A"
        )
    check_conditions(conditions, n_layers)
    mu_t = torch.as_tensor(mu, dtype=torch.float32, device=device)
    sigma_t = torch.as_tensor(sigma, dtype=torch.float32, device=device)
    A = np.zeros((len(conditions), n_windows, n_layers, seq_len), dtype=np.uint16)
    n = n_windows * seq_len * d_ff
    for g, conds in _gain_groups(conditions).items():
        started = time.perf_counter()
        per_sd = _count_one_gain(
            forward_fn,
            input_ids,
            g,
            conds,
            mu_t=mu_t,
            sigma_t=sigma_t,
            eps=eps,
            batch_size=batch_size,
            device=device,
        )
        for cond_ids, counts in per_sd:
            A[cond_ids] = counts  # every count is <= d_ff <= UINT16_MAX
        if on_progress is not None:
            ids = [c.cond_id for c in conds]
            achieved = A[ids].sum(axis=(1, 3), dtype=np.int64) / n
            r_star = np.stack([np.asarray(c.r_star, dtype=np.float64) for c in conds])
            on_progress(
                {
                    "g": g,
                    "seconds": time.perf_counter() - started,
                    "max_abs_rate_err": float(np.abs(achieved - r_star).max()),
                }
            )
    achieved_rate = A.sum(axis=(1, 3), dtype=np.int64) / n
    return RasterResult(A=A, achieved_rate=achieved_rate)
