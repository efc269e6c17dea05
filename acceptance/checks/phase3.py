"""Phase 3 acceptance: held-out rasters with Phase 2's tau (spec/09_RASTERS.md,
spec/08_TEST_PLAN.md).

The rasters of the gstar conditions are recomputed here by an independent route: the
model's u captured by a plain hook, standardized with numpy and counted against tau.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from acceptance.checks import CheckContext, check
from canon import CANON
from critspec.models.device import resolve_dtype
from critspec.models.from_config import load_entry
from critspec.models.hooks import apply_gain, capture_u
from critspec.store.writers import read_json, read_npz
from critspec.validate.run import load_config

RESULTS = CANON.OUTPUT.SUBDIR.RESULTS
ART = CANON.OUTPUT.ARTIFACT


def results(run_dir: Path, basename: str) -> dict[str, np.ndarray] | pd.DataFrame:
    path = run_dir / RESULTS / basename
    return pd.read_parquet(path) if path.suffix == ".parquet" else read_npz(path)


def upstream(ctx: CheckContext, contract_id: str) -> Path:
    return ctx.upstream_dir(ctx.phase.source_of(contract_id))


@check("raster_shape_matches_conditions")
def raster_shape_matches_conditions(ctx: CheckContext) -> None:
    """A and X are [C, N, L, T], C = spike definitions × target rates × gains."""
    cfg = load_config(ctx.run_a)
    cal = cfg["calibration"]
    C = len(cal["spike_def_ids"]) * len(cal["target_rates"]) * len(cfg["gain_grid"]["gains"])
    want = (C, cfg["rasters"]["n_windows"], ctx.record()["model"]["n_layers"])
    want += (cal["seq_len_tokens"],)
    rasters = results(ctx.run_a, ART.RASTERS)
    for name in ("A", "X"):
        assert rasters[name].shape == want, f"{ctx.run_a}: {name} {rasters[name].shape} != {want}"
    assert len(results(ctx.run_a, ART.RASTER_CONDITIONS)) == C


@check("raster_x_is_a_positive")
def raster_x_is_a_positive(ctx: CheckContext) -> None:
    rasters = results(ctx.run_a, ART.RASTERS)
    assert np.array_equal(rasters["X"], (rasters["A"] > 0).astype(np.uint8)), ctx.run_a


@check("raster_slice_held_out")
def raster_slice_held_out(ctx: CheckContext) -> None:
    """The raster windows are none of the calibration windows, and are the seq_ids."""
    held = results(ctx.run_a, ART.RASTER_SLICE)["window_index"]
    cal = results(upstream(ctx, "calibration_slice"), ART.CALIBRATION_SLICE)["window_index"]
    assert not set(held.tolist()) & set(cal.tolist()), f"{ctx.run_a}: slices overlap"
    assert np.array_equal(results(ctx.run_a, ART.RASTERS)["seq_id"], held)
    assert np.all(np.diff(held) > 0), "raster windows are not in ascending order"
    first = ctx.record()["dataset_slices"][0]
    assert first["slice_name"] == CANON.ENUM.SLICE_NAME.RASTERS
    assert first["n_windows"] == len(held)


@check("raster_tau_applied_unchanged")
def raster_tau_applied_unchanged(ctx: CheckContext) -> None:
    """raster_rates' tau is Phase 2's, and the gstar conditions' A recomputed from the
    model by a plain hook and numpy equals the stored A, as do the achieved rates."""
    keys = ["spike_def_id", "target_rate", "g", "layer"]
    rates = results(ctx.run_a, ART.RASTER_RATES)
    grid = results(upstream(ctx, "tau_rate_matched"), ART.TAU_RATE_MATCHED)
    merged = rates.merge(grid, on=keys, suffixes=("", "_p2"), validate="one_to_one")
    assert len(merged) == len(rates) == len(grid)
    assert np.array_equal(merged["tau"], merged["tau_p2"]), "tau differs from Phase 2's"
    assert np.array_equal(merged["r_star"], merged["r_star_p2"])

    rasters = results(ctx.run_a, ART.RASTERS)
    A, n_windows, seq_len = rasters["A"], rasters["A"].shape[1], rasters["A"].shape[3]
    d_ff = ctx.record()["model"]["d_ff"]
    achieved = A.sum(axis=(1, 3)) / (n_windows * seq_len * d_ff)
    by_row = achieved[rates["cond_id"], rates["layer"]]
    assert np.array_equal(by_row, rates["achieved_rate"].to_numpy()), "achieved rate != A / n"

    stats = results(upstream(ctx, "calibration_stats"), ART.CALIBRATION_STATS)
    input_ids = results(ctx.run_a, ART.RASTER_SLICE)["input_ids"]
    conds = results(ctx.run_a, ART.RASTER_CONDITIONS)
    eps = load_config(ctx.run_a)["calibration"]["eps"]
    loaded = _model(ctx)
    batch_size = load_config(ctx.run_a)["runtime"]["batch_size"]
    for cond in conds[conds["is_gstar"]].itertuples():
        u = _u_at_gain(loaded, input_ids, cond.g, batch_size)
        z = (u - stats["mu"][:, None, None, :]) / (
            stats["sigma"][:, None, None, :] + np.float32(eps)
        )
        v = z if cond.spike_def_id == CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS else np.abs(z)
        tau = rates[rates["cond_id"] == cond.cond_id].sort_values("layer")["tau"].to_numpy()
        counts = (v.astype(np.float64) > tau[:, None, None, None]).sum(axis=-1)  # [L, N, T]
        assert np.array_equal(counts.transpose(1, 0, 2), A[cond.cond_id]), (
            f"{ctx.run_a}: condition {cond.cond_id} ({cond.spike_def_id}, r={cond.target_rate}, "
            f"g={cond.g}): stored A differs from the recomputation"
        )


def _model(ctx: CheckContext):  # noqa: ANN202
    from critspec.config.resolve import load_config as load_pipeline
    from critspec.paths import project_root

    cfg = load_pipeline(project_root() / CANON.PATH.CONFIG_PIPELINE)
    device = torch.device(CANON.ENUM.DEVICE.CPU)
    return load_entry(
        cfg.model_entry(ctx.role), device, resolve_dtype(CANON.ENUM.DTYPE.FP32, device)
    )


def _u_at_gain(loaded, input_ids: np.ndarray, g: float, batch_size: int) -> np.ndarray:  # noqa: ANN001
    """u [L, N, T, d_ff] float32 at gain g, in the batches the phase used (a different
    batch shape may round differently in the matrix products)."""
    per_layer: dict[int, list[np.ndarray]] = {}

    def keep(layer: int, u: torch.Tensor) -> None:
        per_layer.setdefault(layer, []).append(u.numpy().copy())

    with torch.inference_mode(), apply_gain(loaded.sites, g), capture_u(loaded.sites, keep):
        for start in range(0, len(input_ids), batch_size):
            batch = input_ids[start : start + batch_size].astype(np.int64)
            loaded.model(input_ids=torch.from_numpy(batch), use_cache=False)
    return np.stack([np.concatenate(per_layer[layer]) for layer in sorted(per_layer)])


@check("raster_conditions_mark_baseline_and_gstar")
def raster_conditions_mark_baseline_and_gstar(ctx: CheckContext) -> None:
    conds = results(ctx.run_a, ART.RASTER_CONDITIONS)
    baseline = load_config(ctx.run_a)["calibration"]["gain_baseline"]
    assert (conds["is_baseline"] == (conds["g"] == baseline)).all()
    doc = read_json(upstream(ctx, "gstar") / RESULTS / ART.GSTAR)
    for c in doc["conditions"]:
        rows = conds[
            (conds["spike_def_id"] == c["spike_def_id"])
            & (conds["target_rate"] == c["target_rate"])
        ]
        assert rows["is_gstar"].sum() == 1, f"{c['spike_def_id']} r={c['target_rate']}"
        assert rows[rows["is_gstar"]]["g"].item() == c["gstar"]
    assert conds["null_id"].isna().all()
