"""Naive reference for the gain grid: keep every v, sort fully, threshold again
(spec/08_TEST_PLAN.md).

An independent route to the same numbers as run_gain_grid, for tests and the
benchmark: no top-K buffer, no positions. Per (g, sd, layer) every v of the slice
is kept, tau comes from a full numpy sort, and the lattice from a second
thresholding pass v > tau over all values. Only the definitions (standardize,
spike values, branching, the null) and row assembly are shared. Memory grows with
the slice; never use it in a phase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from critspec.events.gain_grid import (
    ForwardFn,
    GainGridResult,
    MetricsRow,
    TauRow,
    check_rate_match,
    condition_rows,
    conditions,
    sorted_result,
)
from critspec.events.spikes import spike_values, standardize
from critspec.events.tail_quantile import RateMatch


def _all_values(
    forward_fn: ForwardFn,
    input_ids: torch.Tensor,
    g: float,
    mu: np.ndarray,
    sigma: np.ndarray,
    eps: float,
    spike_def_ids: Sequence[str],
    batch_size: int,
    device: torch.device | str,
) -> dict[str, list[np.ndarray]]:
    """v [N, T, d_ff] float32 per spike definition and layer, for the whole slice."""
    n_layers = mu.shape[0]
    chunks: dict[str, list[list[np.ndarray]]] = {
        sd: [[] for _ in range(n_layers)] for sd in spike_def_ids
    }
    mu_t = torch.as_tensor(mu, dtype=torch.float32, device=device)
    sigma_t = torch.as_tensor(sigma, dtype=torch.float32, device=device)

    def on_u(layer: int, u: torch.Tensor) -> None:
        z = standardize(u, mu_t[layer], sigma_t[layer], eps)
        for sd in spike_def_ids:
            chunks[sd][layer].append(spike_values(z, sd).cpu().numpy().copy())

    with torch.inference_mode():
        for start in range(0, input_ids.shape[0], batch_size):
            forward_fn(input_ids[start : start + batch_size].to(device), g, on_u)
    return {sd: [np.concatenate(c, axis=0) for c in chunks[sd]] for sd in spike_def_ids}


def _naive_match(v: np.ndarray, r_star: float) -> tuple[RateMatch, np.ndarray]:
    """tau by full sort, then the spiking mask by a separate pass over every value."""
    n = v.size
    desc = np.sort(v.reshape(-1).astype(np.float64))[::-1]
    k = int(math.floor(r_star * n + 0.5))
    tau = float(desc[0]) if k == 0 else float((desc[k - 1] + desc[k]) / 2)
    spiking = v.astype(np.float64) > tau
    achieved = float(spiking.sum()) / n
    match = RateMatch(
        tau=tau,
        r_star=float(r_star),
        k=k,
        n=n,
        n_above=int(spiking.sum()),
        achieved=achieved,
        abs_err=abs(achieved - float(r_star)),
    )
    return match, spiking


def naive_gain_grid(
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
    """Same inputs and result as run_gain_grid, computed the slow, obvious way."""
    n_layers = mu.shape[0]
    conds = conditions(spike_def_ids, r_star, n_layers)
    sds = sorted({sd for sd, _ in conds})
    metrics: list[MetricsRow] = []
    taus: list[TauRow] = []
    for g in (float(x) for x in gains):
        values = _all_values(forward_fn, input_ids, g, mu, sigma, eps, sds, batch_size, device)
        for sd, r in conds:
            matches, layers_spiking = [], []
            for layer in range(n_layers):
                match, spiking = _naive_match(values[sd][layer], float(r_star[(sd, r)][layer]))
                matches.append(match)
                layers_spiking.append(spiking.sum(axis=2))
            check_rate_match(g, sd, r, matches, rate_match_tol_abs)
            A = np.stack(layers_spiking, axis=1).astype(np.uint16)
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
        if on_progress is not None:
            on_progress({"g": g})
    return sorted_result(metrics, taus)
