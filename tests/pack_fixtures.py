"""Conforming output directories for the shipped contract packs (tests/test_packs.py).

Each writer builds a directory a correct external trainer could have produced,
with values chosen so every rule's arithmetic is exact (ratios of powers of two,
a payload exactly at the bound passed in the returned bindings).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from canon import CANON
from critspec.store import writers
from critspec.validate.pack import load_pack

PACK = CANON.ENUM.PACK_ID
BYTES_PER_VALUE = {"int8": 1, "int16": 2, "float16": 2, "float32": 4}
INPUT_DIMS = 12
WINDOW_W = 4
HIDDEN = 16


def pack_path(pack_id: str, file_id: str) -> str:
    """The fixed path a pack declares for one of its files."""
    path = load_pack(pack_id).spec.files[file_id].path
    assert path is not None
    return path


def write_bam(root: Path, latent_dim: int = 8, packing: str = "int16") -> list[str]:
    """A two-layer codec (48 -> 16 -> latent_dim) with norm and provenance files."""
    model = root / "model"
    model.mkdir(parents=True)
    rng = np.random.default_rng(7)
    dims = [INPUT_DIMS * WINDOW_W, HIDDEN, latent_dim]
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        w = rng.standard_normal((d_out, d_in)).astype(np.float32)
        writers.write_npz(model / f"layer_{i}.npz", {"W": w, "V": w.T.copy()})
    norm = model / "norm.json"
    writers.write_json(norm, {"mean": [0.0] * dims[0], "std": [1.0] * dims[0]})
    writers.write_json(
        root / pack_path(PACK.BAM_CODEC, "manifest"),
        {
            "manifest_version": "1.0",
            "model_format": "layer_npz_v1",
            "model_path": "model",
            "latent_dim": latent_dim,
            "packing": packing,
            "input_dims": INPUT_DIMS,
            "window_W": WINDOW_W,
            "window_stride": 2,
            "scale": 0.01,
            "delta": 0.25,
            "encode_cycles": 1,
            "decode_cycles": 0,
            "norm_path": "model/norm.json",
            "notes": "fixture",
        },
    )
    writers.write_json(
        root / pack_path(PACK.BAM_CODEC, "provenance"),
        {
            "codec_id": "bam-fixture",
            "codec_version": "0.1",
            "git_commit": None,
            "norm_params_hash": hashlib.sha256(norm.read_bytes()).hexdigest(),
            "payload_schema_hash": hashlib.sha256(b"payload").hexdigest(),
            "created_at": "2024-01-01T00:00:00Z",
        },
    )
    return [f"max_payload_bytes={latent_dim * BYTES_PER_VALUE[packing]}"]


def write_stage1(root: Path) -> list[str]:
    """A softmax-policy bundle with thresholds, a 10-item split and three named files."""
    root.mkdir(parents=True, exist_ok=True)
    thresholds = pack_path(PACK.STAGE1_BUNDLE, "thresholds")
    writers.write_json(
        root / pack_path(PACK.STAGE1_BUNDLE, "bundle"),
        {
            "active_exit_policy": "softmax",
            "version": "1",
            "policy_file": thresholds,
            "model_file": "model.pt",
            "splits_file": "splits.json",
            "config_file": "train_config.yaml",
            "metrics_file": "eval_metrics.json",
            "created_at": "2024-01-01T00:00:00Z",
            "description": "fixture",
        },
    )
    writers.write_json(
        root / thresholds,
        {
            "exit_threshold": 0.875,
            "fnr_on_exits": 0.0625,
            "coverage": 0.75,
            "exit_accuracy": 0.9375,
            "target_fnr": 0.125,
            "sweep_results": [
                {
                    "threshold": 0.75,
                    "coverage": 0.875,
                    "exit_accuracy": 0.875,
                    "fnr_on_exits": 0.25,
                },
                {
                    "threshold": 0.875,
                    "coverage": 0.75,
                    "exit_accuracy": 0.9375,
                    "fnr_on_exits": 0.0625,
                },
            ],
        },
    )
    writers.write_json(
        root / "splits.json",
        {
            "method": "hash",
            "salt": "fixture",
            "n_items": 10,
            "train": [0, 2, 3, 5, 7, 8],
            "val": [1, 9],
            "test": [4, 6],
        },
    )
    (root / "model.pt").write_bytes(b"\x00weights")
    (root / "train_config.yaml").write_text("lr: 0.1\n")
    (root / "eval_metrics.json").write_text("{}\n")
    return []


def _stats(mean: float, std: float) -> dict[str, Any]:
    return {
        "status": "present",
        "shape": [4, 128],
        "dtype": "float32",
        "min": mean - 4 * std,
        "max": mean + 4 * std,
        "mean": mean,
        "std": std,
        "finite_fraction": 1.0,
    }


def _ratios(label: dict[str, Any], truth_mean: float, truth_std: float) -> dict[str, Any]:
    return {
        "status": "present",
        "mean_ratio": label["mean"] / truth_mean,
        "std_ratio": label["std"] / truth_std,
        "truth_mean": truth_mean,
        "truth_std": truth_std,
    }


def write_telemetry(root: Path) -> list[str]:
    """Y_amp and Y_I present with exact ratios (0.5 and 2.0), Y_phi recorded as missing."""
    root.mkdir(parents=True, exist_ok=True)
    y_amp, y_i = _stats(2.0, 1.0), _stats(-1.5, 3.0)
    writers.write_json(
        root / pack_path(PACK.LABEL_TELEMETRY, "run_metadata"),
        {
            "sim_id": "fixture",
            "training_labels": {"Y_amp": y_amp, "Y_I": y_i, "Y_phi": {"status": "missing"}},
            "label_vs_truth_analysis": {
                "Y_amp": _ratios(y_amp, 4.0, 2.0),
                "Y_I": _ratios(y_i, -3.0, 1.5),
                "Y_phi": {"status": "missing"},
            },
        },
    )
    return []


WRITERS: dict[str, Callable[[Path], list[str]]] = {
    PACK.BAM_CODEC: write_bam,
    PACK.STAGE1_BUNDLE: write_stage1,
    PACK.LABEL_TELEMETRY: write_telemetry,
}
