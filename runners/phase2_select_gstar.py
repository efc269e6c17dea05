"""Phase 2, select gstar (spec/04_GAIN_AND_GSTAR.md): per (spike definition, target rate), the gain
whose b_tot is closest to one, with the tie rules, from a gain-grid run's metrics
(or a metrics file produced elsewhere, `--metrics PATH`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from canon import CANON
from critspec.errors import CheckFailed
from critspec.orchestrate import PhaseContext
from critspec.select.gstar import (
    B_TOT,
    FLOAT_KEY_ATOL,
    GstarChoice,
    check_complete,
    refuse_method,
    select_gstar,
)
from critspec.store.hashing import sha256_file

METRICS = "metrics"
KEY_COLUMNS = ("spike_def_id", "target_rate", "g")


def b_tot_by_gain(table: pd.DataFrame, choice: GstarChoice, gains: list[float]) -> list:
    """The condition's b_tot at every configured gain, in grid order (None for NaN): what
    the selection read, recorded so the gstar figure can show it (spec/04_GAIN_AND_GSTAR.md)."""
    rows = table[
        (table["spike_def_id"] == choice.spike_def_id)
        & (np.abs(table["target_rate"] - choice.target_rate) <= FLOAT_KEY_ATOL)
    ]
    g = rows["g"].to_numpy(dtype=np.float64)
    b = rows[B_TOT].to_numpy(dtype=np.float64)
    out = []
    for gain in gains:
        [at] = np.flatnonzero(np.abs(g - gain) <= FLOAT_KEY_ATOL)
        out.append(float(b[at]) if np.isfinite(b[at]) else None)
    return out


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    sel, cal, grid = cfg.select_gstar, cfg.calibration, cfg.gain_grid
    refuse_method(sel.method, sel.selection_inputs)
    if tuple(sel.selection_inputs) != (CANON.ENUM.SELECTION_INPUT.B_TOT,):
        raise CheckFailed(
            f"selection_inputs {list(sel.selection_inputs)} refused: "
            f"{sel.method} reads {CANON.ENUM.SELECTION_INPUT.B_TOT} and nothing else"
        )

    if ctx.inv.options.metrics is not None:
        bindings = {
            "spike_def_ids": list(cal.spike_def_ids),
            "target_rates": list(cal.target_rates),
            "gains": list(grid.gains),
        }
        path = ctx.run.consume_external(ctx.inv.options.metrics, METRICS, bindings)
    else:
        grid_run = ctx.upstream_of(METRICS)
        path = ctx.consume(METRICS)
        # The selection is about the model and slice the metrics were measured on.
        ctx.run.model = grid_run.record["model"]
        ctx.run.dataset_slices.extend(grid_run.record["dataset_slices"])

    # Only the key columns and the selection inputs are read: nothing else can sway gstar.
    table = pq.read_table(path, columns=[*KEY_COLUMNS, *sel.selection_inputs]).to_pandas()
    check_complete(table, cal.spike_def_ids, cal.target_rates, grid.gains)
    choices = select_gstar(table, tie_tol_abs=sel.tie_tol_abs, gain_baseline=cal.gain_baseline)
    for choice in choices:
        ctx.run.log.event(CANON.ENUM.LOG_EVENT.CHECK, {"selected": choice.to_json()})

    ctx.run.write_json(
        "gstar",
        {
            "method": sel.method,
            "selection_inputs": list(sel.selection_inputs),
            "tie_tol_abs": sel.tie_tol_abs,
            "gain_baseline": cal.gain_baseline,
            "gains": list(grid.gains),
            "metrics_sha256": sha256_file(path),
            "conditions": [
                {**c.to_json(), "b_tot_by_gain": b_tot_by_gain(table, c, grid.gains)}
                for c in choices
            ],
        },
    )
    ctx.run.summary.update(
        {
            "selection_inputs": list(sel.selection_inputs),
            "metrics_sha256": sha256_file(path),
            "gstar": {f"{c.spike_def_id}@{c.target_rate!r}": c.gstar for c in choices},
        }
    )
