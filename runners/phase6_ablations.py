"""Phase 6, ablations at gstar (spec/14_GENERALIZATION_MC_ABLATIONS.md §4, §5), per model role:

1. consume Phase 1's calibration_stats, calibration_slice and rate_targets, the gain
   grid's tau_rate_matched, gstar and Phase 3's raster_slice (each re-hashed; exit 3 on a
   change), and check that the model and the calibration slice are Phase 1's;
2. per configured ablation (CANON.ENUM.ABLATION_ID) and distinct gstar, one pass task on
   the calibration slice under the ablation's intervention: tau re-matched exactly per
   (sd, r, layer) with Phase 2's machinery and tolerance check (the MLP-global tau must
   equal Phase 2's);
3. per ablation and gstar, one pass task on the held-out raster slice under the same
   intervention with that tau; per-window sufficient statistics with the
   time-permutation null;
4. b_tot, delta_b_tot_perm and chi with CIs and the paired difference to the MLP-global
   gain over one resampling plan of windows; write ablation_tau, ablation_windows and
   ablation_summary (Parquet, CSV).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.paired import paired_columns, resampling_plan
from critspec.analysis.window_metrics import B_TOT, lattice_metrics, measured, window_stats
from critspec.errors import CheckFailed, ConfigError, DependencyError
from critspec.events.gain_grid import TauRow, plan_gain_grid, reduce_gain
from critspec.events.null import time_permute_rasters
from critspec.events.rasters import RasterCondition, RasterReducer, plan_rasters
from critspec.orchestrate import PhaseContext
from critspec.passes.intervention import Intervention
from critspec.passes.task import PassResult
from critspec.select.gstar import gstar_table
from critspec.store.writers import read_json, read_npz, read_parquet
from runners.common import (
    check_calibration_slice,
    check_model_is_calibrated,
    gain_progress,
    load_role_model,
    map_passes,
    pass_task,
)
from runners.phase2_gain_grid import r_star_table

EVENT = CANON.ENUM.LOG_EVENT
ABL = CANON.ENUM.ABLATION_ID
SITE = CANON.ENUM.SITE
BAND = CANON.ENUM.LAYER_BAND
VS_MLP_ALL = "vs_mlp_all"
SUMMARY_METRICS = (B_TOT, "delta_b_tot_perm", "chi")

# Where each ablation puts the gain (spec/14 §4).
ABLATION_SITES: dict[str, tuple[str, str]] = {
    ABL.MLP_ALL: (SITE.MLP_OUT, BAND.ALL),
    ABL.ATTN_ALL: (SITE.ATTN_OUT, BAND.ALL),
    ABL.MLP_EARLY: (SITE.MLP_OUT, BAND.EARLY),
    ABL.MLP_MIDDLE: (SITE.MLP_OUT, BAND.MIDDLE),
    ABL.MLP_LATE: (SITE.MLP_OUT, BAND.LATE),
}


def intervention(ablation_id: str, g: float) -> Intervention:
    site, layers = ABLATION_SITES[ablation_id]
    return Intervention(g=g, site=site, layers=layers)


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    if cfg.ablations is None:
        raise ConfigError("the config has no `ablations` section; Phase 6 needs it")
    ablation_ids = list(cfg.ablations.ablation_ids)
    calibration = ctx.upstream_of("calibration_stats")
    stats = read_npz(ctx.consume("calibration_stats"))
    cal_slice = read_npz(ctx.consume("calibration_slice"))
    targets = read_json(ctx.consume("rate_targets"))
    phase2_tau = read_parquet(ctx.consume("tau_rate_matched")).to_pandas()
    gstar = gstar_table(read_json(ctx.consume("gstar")))
    rasters_run = ctx.upstream_of("raster_slice")
    raster_slice = read_npz(ctx.consume("raster_slice"))

    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    check_model_is_calibrated(loaded, calibration, stats["mu"].shape)
    p1_slice = check_calibration_slice(loaded, calibration, cal_slice)
    raster_record = next(
        s
        for s in rasters_run.record["dataset_slices"]
        if s["slice_name"] == CANON.ENUM.SLICE_NAME.RASTERS
    )
    ctx.run.dataset_slices.extend([raster_record, p1_slice])

    cal, grid = cfg.calibration, cfg.gain_grid
    gstars = sorted(set(gstar.values()))
    r_star = r_star_table(targets, cal.spike_def_ids, cal.target_rates)
    cal_ids = cal_slice["input_ids"].astype(np.int64)
    plan = plan_gain_grid(
        cal_ids.shape,
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=cal.eps,
        gains=gstars,
        spike_def_ids=cal.spike_def_ids,
        r_star=r_star,
    )
    cal_tasks = {
        (a, g): pass_task(ctx, loaded, cal_ids, intervention(a, g), (plan.consumer,))
        for a in ablation_ids
        for g in gstars
    }
    by_key = {t.key: ag for ag, t in cal_tasks.items()}
    tau_rows: dict[tuple[str, float], list[TauRow]] = {}
    with gain_progress(ctx, len(cal_tasks), "ablations: re-match tau") as progress:

        def reduce_cal(result: PassResult) -> None:
            a, g = by_key[result.key]
            _, rows, max_err = reduce_gain(
                plan,
                g,
                result.arrays[0],
                r_star=r_star,
                rate_match_tol_abs=grid.rate_match_tol_abs,
                null_id=grid.null_id,
            )
            tau_rows[(a, g)] = rows
            progress({"ablation_id": a, "g": g, "max_abs_rate_err": max_err})

        map_passes(ctx, loaded, list(cal_tasks.values()), reduce_cal)
    ctx.run.log.event(EVENT.CHECK, {"check_id": CANON.ENUM.CHECK_ID.RATE_MATCH, "passed": True})
    check_reference_tau(tau_rows, phase2_tau, gstars)

    raster_ids = raster_slice["input_ids"].astype(np.int64)
    seq_id = raster_slice["window_index"].astype(np.int64)
    n_windows, seq_len = raster_ids.shape
    tau_frame_rows, window_frames, stats_by_cond = [], [], {}
    for a in ablation_ids:
        conditions = ablation_conditions(tau_rows, a, gstar, loaded.info.n_layers)
        A = ablation_rasters(ctx, loaded, raster_ids, stats, conditions, a)
        keys = [(c.spike_def_id, c.target_rate, c.g) for c in conditions]
        A_perm = time_permute_rasters(A, keys, seq_id)
        heldout = A.sum(axis=(1, 3), dtype=np.int64) / (n_windows * seq_len * loaded.info.d_ff)
        for c in conditions:
            ws = window_stats(A[c.cond_id], A_perm[c.cond_id])
            stats_by_cond[(a, c.spike_def_id, c.target_rate, c.g)] = ws
            window_frames.append(
                pd.DataFrame(
                    {
                        "ablation_id": a,
                        "spike_def_id": c.spike_def_id,
                        "target_rate": c.target_rate,
                        "g": c.g,
                        "seq_id": seq_id,
                        **ws.columns(),
                    }
                )
            )
            for row in tau_rows[(a, c.g)]:
                if (row.spike_def_id, row.target_rate) == (c.spike_def_id, c.target_rate):
                    tau_frame_rows.append(
                        {
                            "ablation_id": a,
                            **vars(row),
                            "achieved_rate_heldout": float(heldout[c.cond_id, row.layer]),
                        }
                    )
    taus = pd.DataFrame(tau_frame_rows)
    windows = pd.concat(window_frames, ignore_index=True)
    weights = resampling_plan(
        n_windows,
        cfg.analysis.bootstrap_reps,
        (cfg.rasters.dataset_role, CANON.ENUM.SLICE_NAME.RASTERS),
        CANON.CONST.BOOTSTRAP_SEED,
    )
    summary = summary_table(stats_by_cond, taus, weights, cfg.analysis)
    ctx.run.write_parquet("ablation_tau", {c: taus[c].to_numpy() for c in taus})
    ctx.run.write_parquet("ablation_windows", {c: windows[c].to_numpy() for c in windows})
    ctx.run.write_table("ablation_summary", "ablation_summary_csv", summary)
    ctx.run.summary.update({"n_ablations": len(ablation_ids), "gstars": gstars})


def check_reference_tau(tau_rows, phase2_tau: pd.DataFrame, gstars) -> None:
    """The MLP-global re-match repeats Phase 2's pass: its tau must be Phase 2's exactly."""
    for g in gstars:
        for row in tau_rows.get((ABL.MLP_ALL, g), []):
            want = phase2_tau[
                (phase2_tau.spike_def_id == row.spike_def_id)
                & (phase2_tau.target_rate == row.target_rate)
                & (phase2_tau.g == g)
                & (phase2_tau.layer == row.layer)
            ]["tau"]
            if len(want) != 1 or float(want.iloc[0]) != row.tau:
                raise DependencyError(
                    f"tau re-matched under the MLP-global gain at g={g} ({row.spike_def_id}, "
                    f"r={row.target_rate}, layer {row.layer}) is {row.tau!r}, Phase 2 has "
                    f"{want.tolist()}: the gain grid run is not of this model and slice; "
                    "re-run Phase 2"
                )


def ablation_conditions(tau_rows, a: str, gstar, n_layers: int) -> list[RasterCondition]:
    """Each (sd, r) at its own gstar with the ablation's re-matched tau, numbered 0..C-1."""
    out = []
    for (sd, r), g in sorted(gstar.items()):
        rows = sorted(
            (x for x in tau_rows[(a, g)] if (x.spike_def_id, x.target_rate) == (sd, r)),
            key=lambda x: x.layer,
        )
        if [x.layer for x in rows] != list(range(n_layers)):
            raise CheckFailed(f"ablation {a}: tau at ({sd}, r={r}, g={g}) lacks layers")
        out.append(
            RasterCondition(
                cond_id=len(out),
                spike_def_id=sd,
                target_rate=r,
                g=g,
                tau=np.array([x.tau for x in rows], dtype=np.float64),
                r_star=np.array([x.r_star for x in rows], dtype=np.float64),
            )
        )
    return out


def ablation_rasters(ctx, loaded, input_ids, stats, conditions, a: str) -> np.ndarray:
    """The held-out lattices of one ablation: one pass task per gstar."""
    plan = plan_rasters(
        input_ids.shape,
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=ctx.config.pipeline.calibration.eps,
        conditions=conditions,
    )
    reducer = RasterReducer(plan)
    tasks = [
        pass_task(ctx, loaded, input_ids, intervention(a, g), (consumer,))
        for g, consumer in zip(plan.gains, plan.consumers, strict=True)
    ]
    index = {task.key: i for i, task in enumerate(tasks)}
    with gain_progress(ctx, len(tasks), f"ablation {a}") as progress:

        def reduce(result: PassResult) -> None:
            i = index[result.key]
            max_err = reducer.add(i, result.arrays[0])
            progress({"ablation_id": a, "g": plan.gains[i], "max_abs_rate_err": max_err})

        map_passes(ctx, loaded, tasks, reduce)
    return reducer.result().A


def summary_table(stats_by_cond, taus: pd.DataFrame, weights, an) -> pd.DataFrame:
    n_windows = weights.shape[1]
    ones = np.ones((1, n_windows))
    meas = {}
    for key, ws in stats_by_cond.items():
        point = lattice_metrics(ws, ones, an.chi_eps)
        samples = lattice_metrics(ws, weights, an.chi_eps)
        meas[key] = {k: v for k, v in measured(point, samples).items() if k in SUMMARY_METRICS}
    rows = []
    for (a, sd, r, g), m in meas.items():
        mine = taus[(taus.ablation_id == a) & (taus.spike_def_id == sd) & (taus.target_rate == r)]
        rows.append(
            {
                "ablation_id": a,
                "spike_def_id": sd,
                "target_rate": r,
                "g": g,
                "n_windows": n_windows,
                "rate_err_max_abs": float(mine["abs_err"].max()),
                **paired_columns(m, meas[(ABL.MLP_ALL, sd, r, g)], VS_MLP_ALL, an.ci_percentiles),
            }
        )
    return pd.DataFrame(rows).sort_values(
        ["ablation_id", "spike_def_id", "target_rate", "g"], kind="stable"
    )
