"""Output directories built exactly as the real producers of the shipped packs write them
(tests/test_packs.py; each pack names its producer in `upstream`).

bam_codec: Hmeon/LoRa-Project scripts/phase2_train_bam.py — `np.savez` layers, a
norm.json and bam_manifest.json from `json.dumps(indent=2)` (no final newline), null
scale/delta/notes when unset, a train_split block when --train-ratio < 1, a
train_report.json beside them, and artifacts.json from ArtifactsManifest.
stage1_bundle: Si-36/Natix_miner stage1_pro — bundle.json of 50_export_bundle.py (with
git_commit), thresholds.json of 25_threshold_sweep.py (the sweep's own selection and its
nearest-FNR fallback), splits.json of 00_make_splits.py (train lists every index).
label_telemetry: hoidn/PtychoPINN run_phase_c2_scenario.py — run_metadata.json with
both blocks under intensity_stats, statistics as compute_array_stats writes them (null
for an all-NaN label), ratios truth ÷ label, `json.dumps(indent=2, sort_keys=True)`.

Values are computed here the way the producer computes them (numpy float32 tensors,
Python float repr), never copied from the projects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from canon import CANON
from critspec.validate.pack import load_pack

PACK = CANON.ENUM.PACK_ID
BYTES_PER_VALUE = {"int8": 1, "int16": 2, "float16": 2, "float32": 4}
DEFAULT_SCALE = {"int8": 127.0, "int16": 32767.0}
INPUT_DIMS = 12
GIT_COMMIT = "834a3750f3ba900d9cbd1b62f3cf6599bfc61fb4"


def pack_path(pack_id: str, file_id: str) -> str:
    """The fixed path a pack declares for one of its files."""
    path = load_pack(pack_id).spec.files[file_id].path
    assert path is not None
    return path


# The line end Python's text mode writes: "\n" on Linux, "\r\n" on Windows, where
# the same producer code writes every JSON file with CRLF.
NEWLINE = {"value": "\n"}


def dump(path: Path, obj: Any, **kwargs: Any) -> None:
    """What the producers do: `path.write_text(json.dumps(obj, indent=2, ...))`."""
    path.write_text(json.dumps(obj, indent=2, **kwargs), encoding="utf-8", newline=NEWLINE["value"])


def on_windows(write: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """`write` as the producer runs on Windows: every text file with CRLF line ends."""

    def run(root: Path, **kwargs: Any) -> list[str]:
        NEWLINE["value"] = "\r\n"
        try:
            return write(root, **kwargs)
        finally:
            NEWLINE["value"] = "\n"

    return run


# --- bam_codec: scripts/phase2_train_bam.py ------------------------------------------
def payload_schema(latent_dim: int, packing: str, scale: float | None) -> str:
    """BamCodec.payload_schema(): packing as written, scale as a Python float or none."""
    shown = "none" if scale is None else float(scale)
    return f"bam:latent_dim={latent_dim}:packing={packing}:scale={shown}"


def write_bam(
    root: Path,
    latent_dim: int = 8,
    packing: str = "int16",
    hidden: tuple[int, ...] = (16,),
    window_w: int = 4,
    train_ratio: float = 4 / 5,
    delta: float | None = None,
    notes: str = "",
    provenance: bool = True,
) -> list[str]:
    """A trained model set as `phase2_train_bam.py --out-dir root` leaves it."""
    root.mkdir(parents=True, exist_ok=True)
    input_len = INPUT_DIMS * window_w
    rng = np.random.default_rng(7)
    data = rng.normal(3.0, 2.0, size=(64, input_len))
    mean, std = data.mean(axis=0), data.std(axis=0, ddof=1)
    dump(root / "norm.json", {"mean": [float(v) for v in mean], "std": [float(v) for v in std]})
    dims = [input_len, *hidden, latent_dim]
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        w = rng.uniform(-0.05, 0.05, size=(d_out, d_in)).astype(np.float32)
        v = rng.uniform(-0.05, 0.05, size=(d_in, d_out)).astype(np.float32)
        np.savez(root / f"layer_{i}.npz", W=w, V=v)
    scale = DEFAULT_SCALE.get(packing)
    manifest: dict[str, Any] = {
        "manifest_version": "1",
        "model_format": "layer_npz_v1",
        "model_path": ".",
        "latent_dim": latent_dim,
        "packing": packing,
        "scale": scale,
        "delta": delta,
        "encode_cycles": 0,
        "decode_cycles": 0,
        "input_dims": INPUT_DIMS,
        "window_W": window_w,
        "window_stride": 1,
        "norm_path": "norm.json",
        "notes": notes or None,
    }
    if train_ratio < 1.0:
        manifest["train_split"] = {
            "method": "hash_window_id",
            "train_ratio": train_ratio,
            "split_seed": 0,
        }
    dump(root / pack_path(PACK.BAM_CODEC, "manifest"), manifest)
    dump(root / "train_report.json", {"dims": dims, "latent_dim": latent_dim})
    if provenance:
        dump(
            root / pack_path(PACK.BAM_CODEC, "provenance"),
            {
                "codec_id": "bam",
                "codec_version": "0",
                "git_commit": GIT_COMMIT,
                "norm_params_hash": hashlib.sha256((root / "norm.json").read_bytes()).hexdigest(),
                "payload_schema_hash": hashlib.sha256(
                    payload_schema(latent_dim, packing, scale).encode()
                ).hexdigest(),
                "created_at": "2026-01-16T13:21:04.605677+00:00",
            },
        )
    return []


# --- stage1_bundle: stage1_pro/scripts/{00_make_splits,25_threshold_sweep,50_export_bundle}.py
# The sweep's default thresholds, in hundredths (its list, 0.5 ... 0.95).
SWEEP_THRESHOLDS = [t / 100 for t in (50, 60, 70, 75, 80, 85, 88, 90, 92, 95)]


def threshold_sweep(probs: np.ndarray, labels: np.ndarray, target_fnr: float) -> dict[str, Any]:
    """The sweep's arithmetic: per threshold the exit coverage, accuracy and FNR on exits
    (1.0 with no exit); the best coverage among rows meeting the target, else the row
    whose FNR is nearest the target."""
    rows = []
    max_p, preds = probs.max(axis=-1), probs.argmax(axis=-1)
    for threshold in SWEEP_THRESHOLDS:
        exit_mask = max_p >= threshold
        coverage = float(exit_mask.astype(np.float32).mean())
        if exit_mask.sum() > 0:
            y, p = labels[exit_mask], preds[exit_mask]
            accuracy = float((p == y).astype(np.float32).mean())
            fnr = float(np.float32(((y == 1) & (p == 0)).sum()) / max((y == 1).sum(), 1))
        else:
            accuracy, fnr = 0.0, 1.0
        rows.append(
            {
                "threshold": threshold,
                "coverage": coverage,
                "exit_accuracy": accuracy,
                "fnr_on_exits": fnr,
            }
        )
    valid = [r for r in rows if r["fnr_on_exits"] <= target_fnr]
    best = (
        max(valid, key=lambda r: r["coverage"])
        if valid
        else min(rows, key=lambda r: abs(r["fnr_on_exits"] - target_fnr))
    )
    return {
        "exit_threshold": best["threshold"],
        "fnr_on_exits": best["fnr_on_exits"],
        "coverage": best["coverage"],
        "exit_accuracy": best["exit_accuracy"],
        "sweep_results": rows,
        "target_fnr": target_fnr,
    }


def write_stage1(
    root: Path,
    target_fnr: float = 0.02,
    git_commit: str | None = GIT_COMMIT,
    confident_misses: bool = False,
) -> list[str]:
    """A Phase-1 bundle: splits, threshold sweep and export, each script's default names.

    With `confident_misses`, three positives are predicted negative at confidence 0.99:
    every threshold's FNR then exceeds the target and the sweep falls back to the
    threshold whose FNR is nearest it."""
    root.mkdir(parents=True, exist_ok=True)
    n = 40
    rng = np.random.default_rng(11)
    # Confident, mostly right predictions: the sweep finds thresholds meeting 2 %.
    labels = rng.integers(0, 2, size=n)
    confidence = rng.uniform(0.5, 1.0, size=n)
    wrong = confidence < 0.62
    predicted = np.where(wrong, 1 - labels, labels)
    if confident_misses:
        miss = labels == 1
        miss[np.flatnonzero(miss)[3:]] = False
        predicted[miss], confidence[miss] = 0, 0.99
    probs = np.zeros((n, 2))
    probs[np.arange(n), predicted] = confidence
    probs[np.arange(n), 1 - predicted] = 1 - confidence
    dump(
        root / "splits.json",
        {
            "val_select": [i for i in range(n) if i % 2 == 0],
            "val_calib": [i for i in range(n) if i % 2 == 1],
            "train": list(range(n)),
            "seed": 42,
        },
    )
    thresholds = pack_path(PACK.STAGE1_BUNDLE, "thresholds")
    dump(root / thresholds, threshold_sweep(probs, labels, target_fnr))
    (root / "model_best.pth").write_bytes(b"PK\x03\x04 torch checkpoint")
    dump(root / "config.json", {"exit_policy": "softmax", "target_fnr_exit": target_fnr})
    (root / "metrics.csv").write_text("epoch,val_acc\n1,0.9\n")
    dump(
        root / pack_path(PACK.STAGE1_BUNDLE, "bundle"),
        {
            "active_exit_policy": "softmax",
            "policy_file": thresholds,
            "model_file": "model_best.pth",
            "splits_file": "splits.json",
            "config_file": "config.json",
            "metrics_file": "metrics.csv",
            "version": "1.0",
            "created_at": "2026-01-20T10:00:00.123456",
            "git_commit": git_commit,
            "description": "Stage-1 Pro Phase 1 Baseline Training",
        },
    )
    return []


def gate_params(fitted: bool = True) -> dict[str, Any]:
    """GateCalibrator.save: a and b as floats once fitted, null before."""
    return {"a": 1.5 if fitted else None, "b": -0.25 if fitted else None, "fitted": fitted}


def scrc_params(fitted: bool = True) -> dict[str, Any]:
    """SCRCCalibrator.save: quantiles null until fitted."""
    quantiles = [float(q) for q in np.linspace(0.5, 19 / 20, 10)] if fitted else None
    return {
        "alpha": 0.02,
        "n_bins": 10,
        "quantiles": quantiles,
        "num_classes": 2 if fitted else None,
        "fitted": fitted,
    }


# --- label_telemetry: run_phase_c2_scenario.py ----------------------------------------
def array_stats(array: np.ndarray, note: str) -> dict[str, Any]:
    """compute_array_stats + format_array_stats: statistics of the finite values (null
    when there is none), counts, shape and dtype, plus the D6 note."""
    finite = np.isfinite(array)
    stats: dict[str, Any] = {"min": None, "max": None, "mean": None, "std": None}
    if finite.any():
        values = array[finite]
        stats = {
            "min": float(np.min(values)),
            "max": float(np.max(values)),
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
        }
    return stats | {
        "nan_count": int(np.isnan(array).sum()),
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "finite_count": int(finite.sum()),
        "total_count": int(array.size),
        "note": note,
    }


def write_telemetry(root: Path, nan_phase: bool = False) -> list[str]:
    """A gs1-style run_metadata.json; Y_phi all NaN when `nan_phase` (null statistics)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    shape = (16, 8, 8, 1)
    y_amp = rng.uniform(0.0, 4.6, size=shape).astype(np.float32)
    y_i = (y_amp.astype(np.float32) ** 2).astype(np.float32)
    x = (0.03 * y_amp).astype(np.float32)
    y_phi = np.full(shape, np.nan if nan_phase else 0.0, dtype=np.float32)
    truth = rng.uniform(0.6, 4.8, size=(32, 32)).astype(np.float32)
    labels = {
        "X": array_stats(x, "Input diffraction patterns"),
        "Y_I": array_stats(y_i, "Intensity computed as Y_amp^2 (for NLL loss targets)"),
        "Y_amp": array_stats(y_amp, "Ground truth amplitude"),
        "Y_phi": array_stats(y_phi, "Ground truth phase"),
    }
    truth_mean = float(np.mean(truth))
    y_amp_mean, y_i_mean, x_mean = (labels[k]["mean"] for k in ("Y_amp", "Y_I", "X"))
    sqrt_y_i = float(np.sqrt(y_i_mean))
    analysis = {
        "X_mean": x_mean,
        "Y_I_mean": y_i_mean,
        "Y_amp_mean": y_amp_mean,
        "amplitude_gap_pct": (truth_mean - y_amp_mean) / y_amp_mean * 100,
        "ground_truth_amp_mean": truth_mean,
        "note": "Compare Y_amp (training amplitude labels) to inference ground truth",
        "ratio_truth_to_X_mean": truth_mean / x_mean,
        "ratio_truth_to_Y_amp_mean": truth_mean / y_amp_mean,
        "ratio_truth_to_sqrt_Y_I": truth_mean / sqrt_y_i,
        "spec_reference": "specs/spec-ptycho-core.md §Normalization Invariants",
        "sqrt_Y_I_mean": sqrt_y_i,
    }
    stage = array_stats(x, "container")
    stage.pop("note")
    dump(
        root / pack_path(PACK.LABEL_TELEMETRY, "run_metadata"),
        {
            "scenario": "gs1_ideal",
            "elapsed_seconds": 20.97,
            "cli_args": {"nepochs": 5, "group_limit": 64, "buffer": None},
            "intensity_stats": {
                "bundle_intensity_scale": 988.211669921875,
                "stages": [{"name": "container_X", "stats": stage}],
                "training_labels": labels,
                "label_vs_truth_analysis": analysis,
            },
        },
        sort_keys=True,
    )
    return []


# Each pack's `upstream.command`, as the producer's docs give it (DIR the output).
DOCUMENTED: dict[str, Callable[[Path], list[str]]] = {
    # docs/phase2_bam_training.md: --hidden-dims 24,16 --latent-dim 16 --packing int16
    # --train-ratio 0.8 --split-seed 0; --input-dims and --window-W at their defaults.
    PACK.BAM_CODEC: lambda root: write_bam(
        root, latent_dim=16, packing="int16", hidden=(24, 16), window_w=1, train_ratio=4 / 5
    ),
    PACK.STAGE1_BUNDLE: write_stage1,
    PACK.LABEL_TELEMETRY: write_telemetry,
}

WRITERS: dict[str, Callable[[Path], list[str]]] = {
    PACK.BAM_CODEC: write_bam,
    PACK.STAGE1_BUNDLE: write_stage1,
    PACK.LABEL_TELEMETRY: write_telemetry,
}
