"""Phase 3, extract rasters (spec/09_RASTERS.md), per model role, on a held-out slice:

1. consume Phase 1's calibration_stats and calibration_slice, the gain
   grid's tau_rate_matched and gstar (each re-hashed; exit 3 on a change), and check
   that the model is the one Phase 1 calibrated;
2. draw the raster slice from Dataset A windows outside the calibration slice
   (checked disjoint, recorded);
3. one batched forward pass per gain; every (spike definition, target rate) from
   that pass with Phase 2's tau applied unchanged: A[c, n, l, t], X = A > 0;
4. write raster_slice.npz, rasters.npz, raster_conditions.parquet and the
   out-of-sample rates raster_rates.parquet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from canon import CANON
from critspec.data.from_config import raster_slice
from critspec.data.windows import check_disjoint
from critspec.errors import DependencyError
from critspec.events.rasters import raster_conditions
from critspec.orchestrate import PhaseContext
from critspec.select.gstar import gstar_table
from critspec.store.writers import read_json, read_npz, read_parquet
from runners.common import (
    check_calibration_slice,
    check_model_is_calibrated,
    load_role_model,
    rasters_at_every_gain,
)

EVENT = CANON.ENUM.LOG_EVENT
CHECK = CANON.ENUM.CHECK_ID


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    calibration = ctx.upstream_of("calibration_stats")
    stats = read_npz(ctx.consume("calibration_stats"))
    cal_slice = read_npz(ctx.consume("calibration_slice"))
    taus = read_parquet(ctx.consume("tau_rate_matched")).to_pandas()
    gstar = gstar_table(read_json(ctx.consume("gstar")))

    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    check_model_is_calibrated(loaded, calibration, stats["mu"].shape)
    p1_slice = check_calibration_slice(loaded, calibration, cal_slice)

    token_slice, slice_record = raster_slice(
        ctx.config, loaded.tokenizer, exclude=cal_slice["window_index"]
    )
    if slice_record.get("content_sha256") != p1_slice.get("content_sha256"):
        raise DependencyError(
            f"Dataset {slice_record['dataset_role']} changed since Phase 1 run "
            f"{calibration.run_id} calibrated on it (content sha256 "
            f"{str(p1_slice.get('content_sha256'))[:12]}… -> "
            f"{str(slice_record.get('content_sha256'))[:12]}…): re-run Phase 1"
        )
    check_disjoint(
        token_slice.window_index,
        cal_slice["window_index"],
        what="raster slice vs calibration slice",
    )
    ctx.run.log.event(
        EVENT.CHECK,
        {
            "check_id": CHECK.HELDOUT_DISJOINT,
            "passed": True,
            "n_raster_windows": token_slice.n_windows,
            "n_calibration_windows": int(cal_slice["window_index"].size),
        },
    )
    ctx.run.dataset_slices.extend([slice_record, *calibration.record["dataset_slices"]])
    ctx.run.log.event(EVENT.DATASET_LOADED, slice_record)

    conditions = raster_conditions(taus, loaded.info.n_layers)
    ctx.run.summary["n_conditions"] = len(conditions)
    result = rasters_at_every_gain(ctx, loaded, token_slice.input_ids, stats, conditions, "rasters")

    cond_table = condition_table(conditions, cfg.calibration.gain_baseline, gstar)
    rates = rate_rows(conditions, result.achieved_rate)
    max_err = float(rates["abs_err"].max())
    ctx.run.log.event(
        EVENT.CHECK,
        {
            "check_id": CHECK.OOS_RATE,
            "max_abs_err": max_err,
            "mean_abs_err": float(rates["abs_err"].mean()),
        },
    )
    ctx.run.write_npz(
        "raster_slice",
        {"window_index": token_slice.window_index, "input_ids": token_slice.input_ids},
    )
    ctx.run.write_npz(
        "rasters",
        {
            "A": result.A,
            "X": (result.A > 0).astype(np.uint8),
            "cond_id": cond_table["cond_id"].to_numpy(dtype=np.int64),
            "seq_id": token_slice.window_index.astype(np.int64),
        },
    )
    ctx.run.write_parquet("raster_conditions", {c: cond_table[c].to_numpy() for c in cond_table})
    ctx.run.write_parquet("raster_rates", {c: rates[c].to_numpy() for c in rates})
    ctx.run.summary.update(
        {"n_raster_windows": token_slice.n_windows, "max_abs_rate_err_oos": max_err}
    )


def condition_table(
    conditions: list, baseline: float, gstar: dict[tuple[str, float], float]
) -> pd.DataFrame:
    """The raster_conditions rows: keys and the baseline and gstar flags of each condition."""
    return pd.DataFrame(
        {
            "cond_id": [c.cond_id for c in conditions],
            "spike_def_id": [c.spike_def_id for c in conditions],
            "target_rate": [c.target_rate for c in conditions],
            "g": [c.g for c in conditions],
            "is_baseline": [c.g == baseline for c in conditions],
            "is_gstar": [gstar[(c.spike_def_id, c.target_rate)] == c.g for c in conditions],
            "null_id": [None] * len(conditions),
        }
    )


def rate_rows(conditions: list, achieved: np.ndarray) -> pd.DataFrame:
    """One row per (condition, layer): tau, r_star, the achieved rate and its error."""
    rows = [
        {
            "cond_id": c.cond_id,
            "spike_def_id": c.spike_def_id,
            "target_rate": c.target_rate,
            "g": c.g,
            "layer": layer,
            "tau": float(c.tau[layer]),
            "r_star": float(c.r_star[layer]),
            "achieved_rate": float(achieved[c.cond_id, layer]),
            "abs_err": abs(float(achieved[c.cond_id, layer]) - float(c.r_star[layer])),
        }
        for c in conditions
        for layer in range(len(c.tau))
    ]
    return pd.DataFrame(rows)
