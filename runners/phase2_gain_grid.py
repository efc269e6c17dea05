"""Phase 2, gain grid (spec/02_RATE_MATCHING.md, spec/03_BRANCHING_AND_NULLS.md,
spec/08_TEST_PLAN.md), per model role, on Phase 1's calibration slice:

1. consume Phase 1's calibration_stats, calibration_slice and rate_targets (each
   re-hashed against the Phase 1 record; exit 3 on any change) and check that the
   slice hash recomputed under this model's tokenizer equals Phase 1's;
2. one batched forward pass per gain (a pass task on the configured executor,
   spec/06_MODELS_AND_HOOKS.md §7); from that pass, for both spike definitions
   and every target rate: exact tail-quantile tau per layer, the event lattice,
   b_time / b_depth / b_tot, the within-layer time-permutation null and delta_b;
3. write metrics.parquet and tau_rate_matched.parquet.
"""

from __future__ import annotations

import numpy as np

from canon import CANON
from critspec.data.windows import TokenSlice
from critspec.errors import DependencyError
from critspec.events.gain_grid import (
    MetricsRow,
    TauRow,
    metrics_frame,
    plan_gain_grid,
    reduce_gain,
    sorted_result,
    tau_frame,
)
from critspec.orchestrate import PhaseContext
from critspec.passes.intervention import default_intervention
from critspec.passes.task import PassResult
from critspec.store.writers import read_json, read_npz
from runners.common import (
    check_calibration_slice,
    check_model_is_calibrated,
    gain_progress,
    load_role_model,
    map_passes,
    pass_task,
)

EVENT = CANON.ENUM.LOG_EVENT


def r_star_table(targets: dict, spike_def_ids: tuple, rates: tuple) -> dict:
    """(spike_def_id, target_rate) -> r_star [L] from Phase 1's rate_targets.json."""
    table = {
        (sd["spike_def_id"], t["target_rate"]): np.asarray(t["r_star"], dtype=np.float64)
        for sd in targets["spike_defs"]
        for t in sd["targets"]
    }
    missing = [(sd, r) for sd in spike_def_ids for r in rates if (sd, r) not in table]
    if missing:
        raise DependencyError(
            f"Phase 1 rate_targets has no r_star for {missing[0]}: re-run Phase 1 with this config"
        )
    return {key: table[key] for key in ((sd, r) for sd in spike_def_ids for r in rates)}


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    cal, grid = cfg.calibration, cfg.gain_grid
    calibration = ctx.upstream_of("calibration_stats")
    stats = read_npz(ctx.consume("calibration_stats"))
    slice_arrays = read_npz(ctx.consume("calibration_slice"))
    targets = read_json(ctx.consume("rate_targets"))

    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    check_model_is_calibrated(loaded, calibration, stats["mu"].shape)

    p1_slice = check_calibration_slice(loaded, calibration, slice_arrays)
    token_slice = TokenSlice(slice_arrays["window_index"], slice_arrays["input_ids"])
    ctx.run.dataset_slices.append(p1_slice)
    ctx.run.log.event(EVENT.DATASET_LOADED, p1_slice)

    input_ids = token_slice.input_ids.astype(np.int64)
    r_star = r_star_table(targets, cal.spike_def_ids, cal.target_rates)
    plan = plan_gain_grid(
        input_ids.shape,
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=cal.eps,
        gains=grid.gains,
        spike_def_ids=cal.spike_def_ids,
        r_star=r_star,
    )
    tasks = [
        pass_task(ctx, loaded, input_ids, default_intervention(g), (plan.consumer,))
        for g in plan.gains
    ]
    rows: list[MetricsRow] = []
    tau_rows: list[TauRow] = []
    with gain_progress(ctx, len(tasks), "gain grid") as progress:

        def reduce(pass_result: PassResult) -> None:
            [g] = pass_result.key
            got, got_tau, max_err = reduce_gain(
                plan,
                g,
                pass_result.arrays[0],
                r_star=r_star,
                rate_match_tol_abs=grid.rate_match_tol_abs,
                null_id=grid.null_id,
            )
            rows.extend(got)
            tau_rows.extend(got_tau)
            progress({"g": g, "seconds": pass_result.seconds, "max_abs_rate_err": max_err})

        map_passes(ctx, loaded, tasks, reduce)
    result = sorted_result(rows, tau_rows)
    metrics = metrics_frame(result)
    taus = tau_frame(result)
    ctx.run.log.event(
        EVENT.CHECK,
        {
            "check_id": CANON.ENUM.CHECK_ID.RATE_MATCH,
            "passed": True,
            "max_abs_err": float(taus["abs_err"].max()),
            "tol": grid.rate_match_tol_abs,
        },
    )
    n_nan = int(metrics[CANON.ENUM.SELECTION_INPUT.B_TOT].isna().sum())
    ctx.run.log.event(
        EVENT.CHECK, {"check_id": CANON.ENUM.CHECK_ID.BRANCHING_NAN, "n_nan_rows": n_nan}
    )
    ctx.run.write_parquet("metrics", {c: metrics[c].to_numpy() for c in metrics.columns})
    ctx.run.write_parquet("tau_rate_matched", {c: taus[c].to_numpy() for c in taus.columns})
    ctx.run.summary.update(
        {
            "n_rows": len(metrics),
            "max_abs_rate_err": float(taus["abs_err"].max()),
            "n_nan_b_tot": n_nan,
        }
    )
