"""Phase 6, generalization on Dataset B (spec/14_GENERALIZATION_MC_ABLATIONS.md §1, §2, §5),
per model role:

1. consume Phase 1's calibration_stats, the gain grid's tau_rate_matched and gstar (each
   re-hashed; exit 3 on a change), and check that the model is the one Phase 1
   calibrated;
2. draw the Dataset B slice (slice name CANON.ENUM.SLICE_NAME.B_EVAL);
3. one pass task per evaluated gain (GAIN_BASELINE and every distinct gstar) with two
   consumers: Dataset A's tau applied unchanged -> event lattice, and next-token NLL;
4. per (sd, r, g) and window the sufficient statistics (with the time-permutation null)
   and the NLL sum; b, delta_b_tot_perm, chi, mean NLL and perplexity with CIs and the
   paired difference to the baseline over one resampling plan of windows;
5. write b_eval_slice, b_windows, b_rates and the generalization table (Parquet, CSV).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from canon import CANON
from critspec.analysis.paired import paired_columns, resampling_plan
from critspec.analysis.window_metrics import (
    WindowStats,
    lattice_metrics,
    measured,
    nll_metrics,
    window_stats,
)
from critspec.data.from_config import b_eval_slice
from critspec.errors import CheckFailed, ConfigError
from critspec.events.null import time_permute_rasters
from critspec.events.rasters import RasterReducer, plan_rasters, raster_conditions
from critspec.orchestrate import PhaseContext
from critspec.passes.consumers.nll import NLL, NllConsumer
from critspec.passes.intervention import default_intervention
from critspec.passes.task import PassResult
from critspec.select.gstar import gstar_table
from critspec.store.writers import read_json, read_npz, read_parquet
from runners.common import (
    check_model_is_calibrated,
    gain_progress,
    load_role_model,
    map_passes,
    pass_task,
)
from runners.phase3_extract_rasters import rate_rows

EVENT = CANON.ENUM.LOG_EVENT
CHECK = CANON.ENUM.CHECK_ID
VS_BASELINE = "vs_baseline"


def evaluated_gains(baseline: float, gstar: dict[tuple[str, float], float]) -> list[float]:
    """GAIN_BASELINE and every distinct gstar, ascending (spec/14 §1)."""
    return sorted({float(baseline), *(float(g) for g in gstar.values())})


def run(ctx: PhaseContext) -> None:
    cfg = ctx.config.pipeline
    if cfg.generalization is None:
        raise ConfigError("the config has no `generalization` section; Phase 6 needs it")
    calibration = ctx.upstream_of("calibration_stats")
    stats = read_npz(ctx.consume("calibration_stats"))
    taus = read_parquet(ctx.consume("tau_rate_matched")).to_pandas()
    gstar = gstar_table(read_json(ctx.consume("gstar")))

    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    check_model_is_calibrated(loaded, calibration, stats["mu"].shape)
    token_slice, slice_record = b_eval_slice(ctx.config, loaded.tokenizer)
    ctx.run.dataset_slices.extend([slice_record, *calibration.record["dataset_slices"]])
    ctx.run.log.event(EVENT.DATASET_LOADED, slice_record)

    baseline = cfg.calibration.gain_baseline
    gains = evaluated_gains(baseline, gstar)
    taus = taus[taus["g"].isin(gains)]
    conditions = raster_conditions(taus, loaded.info.n_layers)
    missing = sorted(set(gains) - {c.g for c in conditions})
    if missing:
        raise CheckFailed(
            f"the gain grid run has no tau at g={missing}: GAIN_BASELINE and every gstar "
            "must be gains of the grid; re-run Phase 2 with them"
        )
    ctx.run.summary["n_conditions"] = len(conditions)
    A, nll = passes(ctx, loaded, token_slice.input_ids, stats, conditions)

    seq_id = token_slice.window_index.astype(np.int64)
    keys = [(c.spike_def_id, c.target_rate, c.g) for c in conditions]
    A_perm = time_permute_rasters(A, keys, seq_id)
    n_windows, seq_len = token_slice.input_ids.shape
    n_tokens = np.full(n_windows, seq_len - 1, dtype=np.int64)
    per_cond = {c.cond_id: window_stats(A[c.cond_id], A_perm[c.cond_id]) for c in conditions}
    nll_sum = {g: nll[g].astype(np.float64).sum(axis=1) for g in gains}
    nll_ok = all(np.isfinite(v).all() for v in nll_sum.values())
    ctx.run.log.event(EVENT.CHECK, {"check_id": CHECK.NLL_FINITE, "passed": nll_ok})
    if not nll_ok:
        raise CheckFailed("a window's next-token NLL is not finite: the logits overflowed")

    windows = window_rows(conditions, per_cond, seq_id, nll_sum, n_tokens)
    achieved = A.sum(axis=(1, 3), dtype=np.int64) / (n_windows * seq_len * loaded.info.d_ff)
    # Phase 3's per-(condition, layer) rate rows; Dataset B's table has no cond_id column.
    rates = rate_rows(conditions, achieved).drop(columns="cond_id")
    ctx.run.log.event(
        EVENT.CHECK,
        {"check_id": CHECK.OOS_RATE, "max_abs_err": float(rates["abs_err"].max())},
    )
    an = cfg.analysis
    weights = resampling_plan(
        n_windows,
        an.bootstrap_reps,
        (cfg.generalization.dataset_role, CANON.ENUM.SLICE_NAME.B_EVAL),
        CANON.CONST.BOOTSTRAP_SEED,
    )
    table = generalization_table(
        conditions, per_cond, nll_sum, n_tokens, rates, gstar, baseline, weights, an
    )
    ctx.run.write_npz(
        "b_eval_slice",
        {"window_index": token_slice.window_index, "input_ids": token_slice.input_ids},
    )
    ctx.run.write_parquet("b_windows", {c: windows[c].to_numpy() for c in windows})
    ctx.run.write_parquet("b_rates", {c: rates[c].to_numpy() for c in rates})
    ctx.run.write_table("generalization", "generalization_csv", table)
    ctx.run.summary.update({"n_b_windows": n_windows, "gains": gains})


def passes(ctx, loaded, input_ids, stats, conditions) -> tuple[np.ndarray, dict]:
    """One pass task per gain: the lattice of every (sd, r) and the per-token NLL."""
    plan = plan_rasters(
        input_ids.shape,
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=ctx.config.pipeline.calibration.eps,
        conditions=conditions,
    )
    reducer = RasterReducer(plan)
    tasks = [
        pass_task(ctx, loaded, input_ids, default_intervention(g), (consumer, NllConsumer()))
        for g, consumer in zip(plan.gains, plan.consumers, strict=True)
    ]
    index = {task.key: i for i, task in enumerate(tasks)}
    nll: dict[float, np.ndarray] = {}
    with gain_progress(ctx, len(tasks), "Dataset B") as progress:

        def reduce(result: PassResult) -> None:
            i = index[result.key]
            max_err = reducer.add(i, result.arrays[0])
            nll[plan.gains[i]] = result.arrays[1][NLL]
            progress({"g": plan.gains[i], "seconds": result.seconds, "max_abs_rate_err": max_err})

        map_passes(ctx, loaded, tasks, reduce)
    return reducer.result().A, nll


def window_rows(conditions, per_cond, seq_id, nll_sum, n_tokens) -> pd.DataFrame:
    frames = []
    for c in conditions:
        cols = per_cond[c.cond_id].columns()
        frames.append(
            pd.DataFrame(
                {
                    "spike_def_id": c.spike_def_id,
                    "target_rate": c.target_rate,
                    "g": c.g,
                    "seq_id": seq_id,
                    **cols,
                    "nll_sum": nll_sum[c.g],
                    "n_tokens": n_tokens,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def b_measured(ws: WindowStats, nll_sum, n_tokens, weights, chi_eps: float) -> dict:
    """Every generalization metric of one condition: point estimate and resamples."""
    ones = np.ones((1, len(n_tokens)))
    point = {**lattice_metrics(ws, ones, chi_eps), **nll_metrics(nll_sum, n_tokens, ones)}
    samples = {
        **lattice_metrics(ws, weights, chi_eps),
        **nll_metrics(nll_sum, n_tokens, weights),
    }
    return measured(point, samples)


def generalization_table(
    conditions, per_cond, nll_sum, n_tokens, rates, gstar, baseline, weights, an
) -> pd.DataFrame:
    """One row per (sd, r, g): metrics with CIs and paired differences to the baseline."""
    by_key = {(c.spike_def_id, c.target_rate, c.g): c for c in conditions}
    meas = {
        key: b_measured(per_cond[c.cond_id], nll_sum[c.g], n_tokens, weights, an.chi_eps)
        for key, c in by_key.items()
    }
    rows = []
    for (sd, r, g), m in meas.items():
        mine = rates[(rates.spike_def_id == sd) & (rates.target_rate == r) & (rates.g == g)]
        rows.append(
            {
                "spike_def_id": sd,
                "target_rate": r,
                "g": g,
                "gstar": gstar[(sd, r)],
                "is_baseline": g == baseline,
                "is_gstar": g == gstar[(sd, r)],
                "n_windows": len(n_tokens),
                "achieved_rate_mean": float(mine["achieved_rate"].mean()),
                "rate_err_max_abs": float(mine["abs_err"].max()),
                **paired_columns(m, meas[(sd, r, baseline)], VS_BASELINE, an.ci_percentiles),
            }
        )
    return pd.DataFrame(rows).sort_values(["spike_def_id", "target_rate", "g"], kind="stable")
