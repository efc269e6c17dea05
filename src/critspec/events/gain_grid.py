"""Phase 2 gain grid core as plan -> map -> reduce: one forward pass per gain, every
condition from it (spec/02_RATE_MATCHING.md, spec/03_BRANCHING_AND_NULLS.md,
spec/08_TEST_PLAN.md, spec/06_MODELS_AND_HOOKS.md §7). No model here.

plan_gain_grid sizes the streaming top-K buffers (K = the largest k over the target
rates, plus one) and describes one TopKConsumer; each gain's pass (a pass task, run by
an executor; run_gain_grid drives one in this process) feeds v of every spike
definition into it. reduce_gain then gives
each (spike definition, target rate, layer) its exact tail threshold tau,
the achieved rate (checked against the tolerance), and the event positions above
tau, which make the lattice A; branching on X = A > 0 and on its
time-permutation null gives the metrics. Memory per gain is the top-K buffers and
one lattice at a time, independent of how many batches the slice has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields

import numpy as np
import pandas as pd
import torch

from critspec.errors import CheckFailed
from critspec.events.branching import branching
from critspec.events.lattice import lattice_from_positions
from critspec.events.null import time_permute
from critspec.events.tail_quantile import RateMatch, event_positions, k_for_rate, match_rate
from critspec.passes.consumers.topk import TopKConsumer, top_k_layers
from critspec.passes.engine import drive, gain_forward
from critspec.passes.intervention import Condition, condition, default_intervention

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
    A_perm = time_permute(A, (null_id, *condition(spike_def_id, target_rate, g).seed_keys()))
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


@dataclass(frozen=True, eq=False)
class GainGridPlan:
    """The conditions, gains and the top-K consumer every gain's pass feeds."""

    conds: tuple[Condition, ...]
    gains: tuple[float, ...]
    n_windows: int
    seq_len: int
    n_layers: int
    d_ff: int
    consumer: TopKConsumer

    def pairs(self) -> list[tuple[str, float]]:
        """The (spike_def_id, target_rate) pairs, sorted."""
        return sorted({(c.spike_def_id, c.target_rate) for c in self.conds})


def plan_gain_grid(
    shape: tuple[int, int],
    *,
    mu: np.ndarray,
    sigma: np.ndarray,
    eps: float,
    gains: Sequence[float],
    spike_def_ids: Sequence[str],
    r_star: Mapping[tuple[str, float], np.ndarray],
) -> GainGridPlan:
    """The plan of a gain grid over a slice of shape (N, T)."""
    n_windows, seq_len = shape
    n_layers, d_ff = mu.shape
    pairs = conditions(spike_def_ids, r_star, n_layers)
    checked = _check_gains(gains)
    n = n_windows * seq_len * d_ff
    K = {
        sd: tuple(
            min(n, 1 + max(k_for_rate(r_star[(s, r)][layer], n) for s, r in pairs if s == sd))
            for layer in range(n_layers)
        )
        for sd in sorted({s for s, _ in pairs})
    }
    return GainGridPlan(
        conds=tuple(condition(sd, r, g) for g in checked for sd, r in pairs),
        gains=tuple(checked),
        n_windows=int(n_windows),
        seq_len=int(seq_len),
        n_layers=int(n_layers),
        d_ff=int(d_ff),
        consumer=TopKConsumer(
            mu=np.asarray(mu, dtype=np.float32),
            sigma=np.asarray(sigma, dtype=np.float32),
            eps=float(eps),
            K=K,
        ),
    )


def reduce_gain(
    plan: GainGridPlan,
    g: float,
    arrays: Mapping[str, np.ndarray],
    *,
    r_star: Mapping[tuple[str, float], np.ndarray],
    rate_match_tol_abs: float,
    null_id: str,
) -> tuple[list[MetricsRow], list[TauRow], float]:
    """Rows of one gain from its pass's top-K arrays; also the largest |rate error|."""
    n = plan.n_windows * plan.seq_len * plan.d_ff
    tops = {}
    for sd in plan.consumer.K:
        tops[sd] = top_k_layers(arrays, sd)
        seen = [t.n for t in tops[sd]]
        if seen != [n] * plan.n_layers:
            raise CheckFailed(
                f"at g={g} the u hook delivered {seen} values per layer for {sd}, expected {n} "
                "each: the hook must fire exactly once per layer and batch"
            )
    metrics: list[MetricsRow] = []
    taus: list[TauRow] = []
    max_err = 0.0
    for sd, r in plan.pairs():
        matches = [
            match_rate(tops[sd][layer], r_star[(sd, r)][layer]) for layer in range(plan.n_layers)
        ]
        check_rate_match(g, sd, r, matches, rate_match_tol_abs)
        A = lattice_from_positions(
            [event_positions(tops[sd][layer], m.tau) for layer, m in enumerate(matches)],
            plan.n_windows,
            plan.seq_len,
            plan.d_ff,
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
    return metrics, taus, max_err


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
    """Branching metrics and rate-matched thresholds for every (sd, r, g), each gain's
    pass driven here through forward_fn (spec/02_RATE_MATCHING.md,
    spec/03_BRANCHING_AND_NULLS.md); phases map the same plan on an executor."""
    plan = plan_gain_grid(
        tuple(input_ids.shape),
        mu=mu,
        sigma=sigma,
        eps=eps,
        gains=gains,
        spike_def_ids=spike_def_ids,
        r_star=r_star,
    )
    metrics: list[MetricsRow] = []
    taus: list[TauRow] = []
    for g in plan.gains:
        started = time.perf_counter()
        [arrays] = drive(
            gain_forward(forward_fn),
            input_ids,
            n_layers=plan.n_layers,
            d_ff=plan.d_ff,
            batch_size=batch_size,
            intervention=default_intervention(g),
            consumers=[plan.consumer],
            device=device,
        )
        rows, tau_rows, max_err = reduce_gain(
            plan, g, arrays, r_star=r_star, rate_match_tol_abs=rate_match_tol_abs, null_id=null_id
        )
        metrics.extend(rows)
        taus.extend(tau_rows)
        if on_progress is not None:
            on_progress(
                {"g": g, "seconds": time.perf_counter() - started, "max_abs_rate_err": max_err}
            )
    return sorted_result(metrics, taus)
