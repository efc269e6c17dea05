"""Phase 3 raster extraction core as plan -> map -> reduce: Phase 2's tau applied to a
held-out slice (spec/09_RASTERS.md, spec/08_TEST_PLAN.md, spec/06_MODELS_AND_HOOKS.md §7).
No model here.

Conditions (spike definition, target rate, gain) are grouped by gain; each gain
costs one batched forward pass (a pass task with one LatticeConsumer, run by an
executor; extract_rasters drives them in this process). In that pass every layer's
u is scanned once against per-unit u bounds of the loosest threshold of the pass
(critspec.events.scan, the same scan as Phase 2's), z is computed only for the
candidates by the Phase 1 formula (bit-identical to standardizing everything), and
every spike definition and rate of the pass counts its events v > tau from that one z.
Only the lattice [conditions of the gain, N, L, T] comes back to the host.

tau is float64 and z float32: for float32 z, z > tau exactly when z > tau32, the
largest float32 <= tau (float32_floor), so the device compares in float32 and the
events equal Phase 2's float64 test value for value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from critspec.errors import ConfigError
from critspec.events.gain_grid import ForwardFn
from critspec.events.lattice import UINT16_MAX
from critspec.events.spikes import SPIKE_DEF_IDS
from critspec.passes.consumers.lattice import LatticeConsumer
from critspec.passes.engine import drive, gain_forward
from critspec.passes.intervention import (
    COND_KEY_COLUMNS,
    Condition,
    condition,
    default_intervention,
)


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

    @property
    def condition(self) -> Condition:
        return condition(self.spike_def_id, self.target_rate, self.g)


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
    seen: set[tuple] = set()
    for pos, c in enumerate(conditions):
        where = f"raster condition {pos} ({c.spike_def_id}, r={c.target_rate}, g={c.g})"
        if c.cond_id != pos:
            raise ConfigError(f"{where} has cond_id {c.cond_id}: pass conditions in cond_id order")
        if c.spike_def_id not in SPIKE_DEF_IDS:
            raise ConfigError(f"{where}: unknown spike definition; use one of {SPIKE_DEF_IDS}")
        key = c.condition.key()
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
    keys = list(COND_KEY_COLUMNS)
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


@dataclass(frozen=True, eq=False)
class RasterPlan:
    """Per gain (ascending), the condition ids of each spike definition and the
    LatticeConsumer of that gain's pass (float32_floor of each tau)."""

    n_conditions: int
    n_windows: int
    seq_len: int
    n_layers: int
    d_ff: int
    gains: tuple[float, ...]
    cond_ids: tuple[tuple[tuple[int, ...], ...], ...]
    consumers: tuple[LatticeConsumer, ...]
    r_star: np.ndarray


def plan_rasters(
    shape: tuple[int, int],
    *,
    mu: np.ndarray,
    sigma: np.ndarray,
    eps: float,
    conditions: Sequence[RasterCondition],
) -> RasterPlan:
    """One pass per distinct g over a slice of shape (N, T) (spec/09_RASTERS.md)."""
    n_layers, d_ff = mu.shape
    if d_ff > UINT16_MAX:
        raise ConfigError(
            f"d_ff {d_ff} exceeds {UINT16_MAX}, the largest count a uint16 raster holds: "
            "this model cannot be rastered with the contracted uint16 A"
        )
    check_conditions(conditions, n_layers)
    mu32 = np.asarray(mu, dtype=np.float32)
    sigma32 = np.asarray(sigma, dtype=np.float32)
    gains, ids, consumers = [], [], []
    for g, conds in _gain_groups(conditions).items():
        per_sd, thresholds = [], []
        for sd in SPIKE_DEF_IDS:
            mine = [c for c in conds if c.spike_def_id == sd]
            if mine:
                per_sd.append(tuple(c.cond_id for c in mine))
                thresholds.append((sd, np.stack([float32_floor(c.tau) for c in mine], axis=1)))
        gains.append(g)
        ids.append(tuple(per_sd))
        consumers.append(
            LatticeConsumer(mu=mu32, sigma=sigma32, eps=float(eps), thresholds=tuple(thresholds))
        )
    n_windows, seq_len = shape
    return RasterPlan(
        n_conditions=len(conditions),
        n_windows=int(n_windows),
        seq_len=int(seq_len),
        n_layers=int(n_layers),
        d_ff=int(d_ff),
        gains=tuple(gains),
        cond_ids=tuple(ids),
        consumers=tuple(consumers),
        r_star=np.stack([np.asarray(c.r_star, dtype=np.float64) for c in conditions]),
    )


class RasterReducer:
    """Fills A [C, N, L, T] gain by gain from the passes' lattice arrays."""

    def __init__(self, plan: RasterPlan) -> None:
        self.plan = plan
        self.A = np.zeros(
            (plan.n_conditions, plan.n_windows, plan.n_layers, plan.seq_len), dtype=np.uint16
        )
        self.n = plan.n_windows * plan.seq_len * plan.d_ff

    def add(self, index: int, arrays: dict[str, np.ndarray]) -> float:
        """Store the counts of the plan's index-th gain; the largest |achieved - r_star|
        over that gain's conditions and layers."""
        consumer, ids = self.plan.consumers[index], self.plan.cond_ids[index]
        for (sd, _), cond_ids in zip(consumer.thresholds, ids, strict=True):
            self.A[list(cond_ids)] = arrays[sd]
        every = [i for group in ids for i in group]
        achieved = self.A[every].sum(axis=(1, 3), dtype=np.int64) / self.n
        return float(np.abs(achieved - self.plan.r_star[every]).max())

    def result(self) -> RasterResult:
        achieved_rate = self.A.sum(axis=(1, 3), dtype=np.int64) / self.n
        return RasterResult(A=self.A, achieved_rate=achieved_rate)


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
    """Event counts of every condition on the slice, one forward pass per distinct g,
    driven here through forward_fn (spec/09_RASTERS.md). on_progress gets {"g", "seconds",
    "max_abs_rate_err"} per gain, the error being the largest |achieved - r_star| over
    that gain's conditions and layers."""
    plan = plan_rasters(tuple(input_ids.shape), mu=mu, sigma=sigma, eps=eps, conditions=conditions)
    reducer = RasterReducer(plan)
    for index, (g, consumer) in enumerate(zip(plan.gains, plan.consumers, strict=True)):
        started = time.perf_counter()
        [arrays] = drive(
            gain_forward(forward_fn),
            input_ids,
            n_layers=plan.n_layers,
            d_ff=plan.d_ff,
            batch_size=batch_size,
            intervention=default_intervention(g),
            consumers=[consumer],
            device=device,
        )
        max_err = reducer.add(index, arrays)
        if on_progress is not None:
            on_progress(
                {"g": g, "seconds": time.perf_counter() - started, "max_abs_rate_err": max_err}
            )
    return reducer.result()
