"""Phases 1 and 2 on the embedded default, checked by independent routes:
mu/sigma against a two-pass numpy computation on every captured u, r_base by direct
counting, and the gain grid against the naive full-sort reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from canon import CANON
from critspec.cli import main
from critspec.config.resolve import load_config
from critspec.events.gain_grid import metrics_frame, tau_frame
from critspec.events.reference import naive_gain_grid
from critspec.models.forward import forward_slice, make_forward_fn
from critspec.models.from_config import load_entry
from critspec.paths import project_root
from critspec.store.writers import read_json, read_npz

SUB = CANON.CLI.SUBCOMMAND
ROLE = CANON.ENUM.MODEL_ROLE.BASE
RESULTS = CANON.OUTPUT.SUBDIR.RESULTS
SD = CANON.ENUM.SPIKE_DEF_ID
CONFIG = project_root() / CANON.PATH.CONFIG_PIPELINE


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    store = tmp_path_factory.mktemp("store")
    out = {}
    for sub in (SUB.PHASE1_CALIBRATE, SUB.PHASE2_GAIN_GRID):
        before = set(store.iterdir())
        argv = [sub, "--config", str(CONFIG), "--runs-dir", str(store), "--model-role", ROLE]
        assert main(argv) == CANON.CLI.EXIT.OK
        [out[sub]] = set(store.iterdir()) - before
    return out


@pytest.fixture(scope="module")
def loaded():  # noqa: ANN201
    config = load_config(CONFIG)
    return load_entry(config.model_entry(ROLE), torch.device(CANON.ENUM.DEVICE.CPU), torch.float32)


def captured_u(loaded, input_ids: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Every u of the slice at the baseline gain: float64 [L, N*T, d_ff]."""
    per_layer: dict[int, list[np.ndarray]] = {}

    def keep(layer: int, u: torch.Tensor) -> None:
        per_layer.setdefault(layer, []).append(u.reshape(-1, u.shape[-1]).double().numpy())

    forward_slice(
        loaded, torch.from_numpy(input_ids.astype(np.int64)), 5, CANON.CONST.GAIN_BASELINE, keep
    )
    return np.stack([np.concatenate(per_layer[layer]) for layer in sorted(per_layer)])


def test_mu_sigma_and_r_base_by_two_pass_numpy(runs: dict[str, Path], loaded) -> None:  # noqa: ANN001
    p1 = runs[SUB.PHASE1_CALIBRATE] / RESULTS
    stats = read_npz(p1 / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS)
    ids = read_npz(p1 / CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE)["input_ids"]
    u = captured_u(loaded, ids)
    mu = u.mean(axis=1)
    sigma = np.sqrt(((u - mu[:, None, :]) ** 2).mean(axis=1))
    # Stored as float32: equal to the float64 reference up to float32 rounding.
    f32 = 8 * np.finfo(np.float32).eps
    np.testing.assert_allclose(stats["mu"], mu, rtol=f32, atol=f32 * np.abs(mu).max())
    np.testing.assert_allclose(stats["sigma"], sigma, rtol=f32, atol=f32 * sigma.max())

    cal = load_config(CONFIG).pipeline.calibration
    z = (u - stats["mu"][:, None, :].astype(np.float64)) / (
        stats["sigma"][:, None, :].astype(np.float64) + cal.eps
    )
    doc = read_json(p1 / CANON.OUTPUT.ARTIFACT.RATE_TARGETS)
    r_base = {sd["spike_def_id"]: sd["r_base"] for sd in doc["spike_defs"]}
    # float32 z in the pipeline vs float64 here may move a value sitting on tau0 by one count.
    one_count = 1.0 / z[0].size
    one_sided = (z > cal.tau0).mean(axis=(1, 2))
    two_sided = (np.abs(z) > cal.tau0).mean(axis=(1, 2))
    np.testing.assert_allclose(r_base[SD.ONE_SIDED_POS], one_sided, rtol=0, atol=one_count)
    np.testing.assert_allclose(r_base[SD.TWO_SIDED_ABS], two_sided, rtol=0, atol=one_count)


def test_gain_grid_equals_naive_reference(runs: dict[str, Path], loaded) -> None:  # noqa: ANN001
    p1 = runs[SUB.PHASE1_CALIBRATE] / RESULTS
    p2 = runs[SUB.PHASE2_GAIN_GRID] / RESULTS
    config = load_config(CONFIG).pipeline
    stats = read_npz(p1 / CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS)
    ids = read_npz(p1 / CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE)["input_ids"]
    r_star = {
        (sd["spike_def_id"], t["target_rate"]): np.asarray(t["r_star"])
        for sd in read_json(p1 / CANON.OUTPUT.ARTIFACT.RATE_TARGETS)["spike_defs"]
        for t in sd["targets"]
    }
    naive = naive_gain_grid(
        make_forward_fn(loaded),
        torch.from_numpy(ids.astype(np.int64)),
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=config.calibration.eps,
        gains=config.gain_grid.gains,
        spike_def_ids=config.calibration.spike_def_ids,
        r_star=r_star,
        rate_match_tol_abs=config.gain_grid.rate_match_tol_abs,
        null_id=config.gain_grid.null_id,
        batch_size=config.runtime.batch_size,
        device=torch.device(CANON.ENUM.DEVICE.CPU),
    )
    for basename, frame in (
        (CANON.OUTPUT.ARTIFACT.METRICS, metrics_frame(naive)),
        (CANON.OUTPUT.ARTIFACT.TAU_RATE_MATCHED, tau_frame(naive)),
    ):
        written = pd.read_parquet(p2 / basename)
        assert list(written.columns) == list(frame.columns)
        pd.testing.assert_frame_equal(written, frame, check_exact=True, check_dtype=False)
