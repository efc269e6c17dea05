"""Phase 1 acceptance: calibration statistics, rate targets, slice
(spec/01_SPIKES_AND_STANDARDIZATION.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from acceptance.checks import CheckContext, check
from canon import CANON
from critspec.data.windows import TokenSlice, slice_sha256
from critspec.store.writers import read_json, read_jsonl, read_npz
from critspec.validate.run import load_config

RESULTS = CANON.OUTPUT.SUBDIR.RESULTS


def _stats(run_dir: Path) -> dict[str, np.ndarray]:
    return read_npz(run_dir / RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS)


def _targets(run_dir: Path) -> dict:
    return read_json(run_dir / RESULTS / CANON.OUTPUT.ARTIFACT.RATE_TARGETS)


@check("stats_match_model_shape")
def stats_match_model_shape(ctx: CheckContext) -> None:
    """mu and sigma are float32 [L, d_ff] of the model's own config.json."""
    model_dir = Path(ctx.record()["model"]["local_dir"])
    hf_config = json.loads((model_dir / "config.json").read_text())
    want = (hf_config["num_hidden_layers"], hf_config["intermediate_size"])
    for name, array in _stats(ctx.run_a).items():
        assert array.dtype == np.float32, f"{ctx.run_a}: {name} is {array.dtype}"
        assert array.shape == want, f"{ctx.run_a}: {name} shape {array.shape}, model says {want}"


@check("sigma_finite_nonnegative")
def sigma_finite_nonnegative(ctx: CheckContext) -> None:
    sigma = _stats(ctx.run_a)["sigma"]
    assert np.isfinite(sigma).all(), f"{ctx.run_a}: non-finite sigma"
    assert (sigma >= 0).all(), f"{ctx.run_a}: negative sigma"
    assert (sigma > 0).any(), f"{ctx.run_a}: every sigma is zero"


@check("r_star_for_every_condition")
def r_star_for_every_condition(ctx: CheckContext) -> None:
    cal = load_config(ctx.run_a)["calibration"]
    targets = _targets(ctx.run_a)
    n_layers = ctx.record()["model"]["n_layers"]
    by_sd = {sd["spike_def_id"]: sd for sd in targets["spike_defs"]}
    want = [CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS]
    assert sorted(by_sd) == sorted(want), f"{ctx.run_a}: spike definitions {sorted(by_sd)}"
    for sd in want:
        assert len(by_sd[sd]["r_base"]) == n_layers
        rates = [t["target_rate"] for t in by_sd[sd]["targets"]]
        assert rates == cal["target_rates"], f"{ctx.run_a}: {sd} target rates {rates}"
        for t in by_sd[sd]["targets"]:
            assert len(t["r_star"]) == n_layers, f"{ctx.run_a}: {sd}@{t['target_rate']}"


@check("r_star_mean_equals_target")
def r_star_mean_equals_target(ctx: CheckContext) -> None:
    """mean_l r_star = r (relative R_STAR_MEAN_REL_TOL) unless clipping happened and was logged."""
    log = read_jsonl(ctx.run_a / CANON.OUTPUT.SUBDIR.LOGS / ctx.phase.log)
    clip_events = {
        (e["payload"]["spike_def_id"], e["payload"]["target_rate"]): e["payload"]["clipped"]
        for e in log
        if e["payload"].get("check_id") == CANON.ENUM.CHECK_ID.RATE_TARGET_CLIP
    }
    for sd in _targets(ctx.run_a)["spike_defs"]:
        r_base = np.asarray(sd["r_base"])
        for t in sd["targets"]:
            key = (sd["spike_def_id"], t["target_rate"])
            assert key in clip_events, f"{ctx.run_a}: no clip event logged for {key}"
            expected = np.clip(r_base * t["target_rate"] / r_base.mean(), 0, 1)
            np.testing.assert_allclose(t["r_star"], expected, rtol=CANON.CONST.R_STAR_MEAN_REL_TOL)
            if not clip_events[key]:
                mean = float(np.mean(t["r_star"]))
                rel = abs(mean - t["target_rate"]) / t["target_rate"]
                assert rel <= CANON.CONST.R_STAR_MEAN_REL_TOL, f"{key}: mean r_star {mean}"


@check("slice_hash_reproducible")
def slice_hash_reproducible(ctx: CheckContext) -> None:
    [a] = ctx.record(ctx.run_a)["dataset_slices"]
    [b] = ctx.record(ctx.run_b)["dataset_slices"]
    assert a["slice_sha256"] == b["slice_sha256"], "slice hash differs between reruns"
    arrays = read_npz(ctx.run_a / RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE)
    recomputed = slice_sha256(
        TokenSlice(arrays["window_index"], arrays["input_ids"]),
        a["tokenizer_sha256"],
        a.get("content_sha256"),
    )
    name = CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE
    assert recomputed == a["slice_sha256"], f"{name} does not hash to the record"
    assert list(arrays["window_index"]) == sorted(set(arrays["window_index"].tolist()))


@check("log_has_calibration_checks")
def log_has_calibration_checks(ctx: CheckContext) -> None:
    log = read_jsonl(ctx.run_a / CANON.OUTPUT.SUBDIR.LOGS / ctx.phase.log)
    ids = {
        e["payload"].get("check_id") for e in log if e["event_type"] == CANON.ENUM.LOG_EVENT.CHECK
    }
    for needed in (CANON.ENUM.CHECK_ID.SIGMA_CLAMP, CANON.ENUM.CHECK_ID.NAN_CHECK):
        assert needed in ids, f"{ctx.run_a}: log has no {needed} event"
    kinds = [e["event_type"] for e in log]
    for needed in (
        CANON.ENUM.LOG_EVENT.START,
        CANON.ENUM.LOG_EVENT.MODEL_LOADED,
        CANON.ENUM.LOG_EVENT.DATASET_LOADED,
        CANON.ENUM.LOG_EVENT.END,
    ):
        assert needed in kinds, f"{ctx.run_a}: log has no {needed} event"
    assert kinds[-1] == CANON.ENUM.LOG_EVENT.END
