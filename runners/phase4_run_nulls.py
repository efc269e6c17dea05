"""Phase 4, nulls (spec/10_NULLS.md), per model role, on Phase 3's rasters:

1. consume Phase 3's rasters, conditions, raster slice and out-of-sample rates and
   Phase 1's calibration_stats (each re-hashed; exit 3 on a change);
2. within-layer time permutation and within-layer circular shift of every row of A,
   seeded from (null, spike definition, rate, gain, window, layer); the sorted rows
   must equal the real ones (hard check);
3. token shuffle: the interior tokens of each raster window permuted (seeded from
   the window alone), the model re-run at every gain with Phase 2's tau unchanged,
   the achieved rates recorded;
4. write null_rasters.npz, null_conditions.parquet and null_rates.parquet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from canon import CANON
from critspec.errors import DependencyError
from critspec.events.null import (
    circular_shift_rasters,
    null_condition_table,
    shuffle_interior_tokens,
    time_permute_rasters,
)
from critspec.events.rasters import raster_conditions
from critspec.orchestrate import PhaseContext
from critspec.passes.intervention import COND_KEY_COLUMNS
from critspec.store.writers import read_npz, read_parquet
from runners.common import check_model_is_calibrated, load_role_model, rasters_at_every_gain
from runners.phase3_extract_rasters import rate_rows

EVENT = CANON.ENUM.LOG_EVENT
NULL = CANON.ENUM.NULL_ID
COND_KEYS = list(COND_KEY_COLUMNS)


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    rasters_run = ctx.upstream_of("rasters")
    rasters = read_npz(ctx.consume("rasters"))
    cond_table = read_parquet(ctx.consume("raster_conditions")).to_pandas()
    raster_slice = read_npz(ctx.consume("raster_slice"))
    rates = read_parquet(ctx.consume("raster_rates")).to_pandas()
    stats = read_npz(ctx.consume("calibration_stats"))
    ctx.run.model = rasters_run.record["model"]
    ctx.run.dataset_slices.extend(rasters_run.record["dataset_slices"])

    A, seq_id = rasters["A"], rasters["seq_id"]
    conditions = raster_conditions(rates, A.shape[2])
    listed = cond_table.sort_values("cond_id")[["cond_id", *COND_KEYS]]
    planned = [(c.cond_id, c.spike_def_id, c.target_rate, c.g) for c in conditions]
    if [tuple(r) for r in listed.itertuples(index=False)] != planned:
        raise DependencyError(
            f"Phase 3 run {rasters_run.run_id}: raster_conditions and raster_rates disagree "
            "on the conditions; re-run Phase 3"
        )
    cond_keys = [c.condition.key() for c in conditions]

    null_A: list[np.ndarray] = []
    null_rates: list[pd.DataFrame] = []
    loaded = None
    for null_id in cfg.nulls.null_ids:
        if null_id == NULL.TIME_PERM:
            null_A.append(time_permute_rasters(A, cond_keys, seq_id))
        elif null_id == NULL.CIRCULAR_SHIFT:
            null_A.append(circular_shift_rasters(A, cond_keys, seq_id))
        else:
            if loaded is None:
                loaded = load_role_model(ctx, ctx.model_role)
                check_model_is_calibrated(
                    loaded, ctx.upstream_of("calibration_stats"), stats["mu"].shape
                )
            shuffled = shuffle_interior_tokens(raster_slice["input_ids"], seq_id)
            result = rasters_at_every_gain(
                ctx, loaded, shuffled, stats, conditions, "token shuffle"
            )
            offset = len(null_A) * len(conditions)
            table = rate_rows(conditions, result.achieved_rate)
            table.insert(0, "null_id", null_id)
            table.insert(0, "null_cond_id", table.pop("cond_id") + offset)
            null_rates.append(table)
            null_A.append(result.A)
        ctx.run.log.event(
            EVENT.CHECK,
            {
                "check_id": CANON.ENUM.CHECK_ID.NULL_SORTED_ROWS,
                "null_id": null_id,
                "passed": True,
                "checked": null_id != NULL.TOKEN_SHUFFLE,
            },
        )

    null_conditions = null_condition_table(cfg.nulls.null_ids, conditions)
    ctx.run.summary["n_null_conditions"] = len(null_conditions)
    A_null = np.concatenate(null_A, axis=0)
    ctx.run.write_npz(
        "null_rasters",
        {
            "A": A_null,
            "X": (A_null > 0).astype(np.uint8),
            "null_cond_id": null_conditions["null_cond_id"].to_numpy(dtype=np.int64),
            "seq_id": seq_id.astype(np.int64),
        },
    )
    ctx.run.write_parquet(
        "null_conditions", {c: null_conditions[c].to_numpy() for c in null_conditions}
    )
    # The config lists every null (config.schema.Nulls), the token shuffle included.
    rates_out = pd.concat(null_rates, ignore_index=True)
    ctx.run.write_parquet("null_rates", {c: rates_out[c].to_numpy() for c in rates_out})
    ctx.run.summary["max_abs_rate_err_token_shuffle"] = float(rates_out["abs_err"].max())
