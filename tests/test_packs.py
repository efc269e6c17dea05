"""Contract packs (spec/packs/): each pack's verdict is its real consumer's verdict.

Every case builds a directory exactly as the real producer writes it
(tests/pack_fixtures.py), possibly mutated in one way, and states by hand which rules
must then fail as errors (the consumer refuses it) and which as warnings (legal but
suspect); a case with neither passes. The coverage tests make sure every rule of every
shipped pack and every structural check has a failing case.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from canon import CANON
from critspec.cli import main
from critspec.errors import ContractError
from critspec.generate import plan
from critspec.paths import SPEC_DIRNAME, project_root
from critspec.spec import rule_lang
from critspec.spec.packs_spec import PackSpec
from critspec.store import writers
from critspec.validate.pack import validate_pack
from tests.pack_fixtures import (
    DOCUMENTED,
    PACK,
    WRITERS,
    dump,
    gate_params,
    on_windows,
    pack_path,
    payload_schema,
    scrc_params,
    write_bam,
    write_stage1,
    write_telemetry,
)

ROOT = project_root()
SUB = CANON.CLI.SUBCOMMAND
FLAG = CANON.CLI.VALIDATE_FLAG
JSON_REPORT = CANON.ENUM.REPORT_FORMAT.JSON
CHECK = CANON.ENUM.PACK_CHECK
SEV = CANON.ENUM.PACK_SEVERITY
BAM = CANON.ENUM.BAM_CODEC_RULE
BUNDLE = CANON.ENUM.STAGE1_BUNDLE_RULE
TELEMETRY = CANON.ENUM.LABEL_TELEMETRY_RULE
Mutation = Callable[[Path, list[str]], list[str]]


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite a producer's JSON file as the producer would (indent 2, no final newline)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    dump(path, data)


def _manifest(root: Path) -> Path:
    return root / pack_path(PACK.BAM_CODEC, "manifest")


def _provenance(root: Path) -> Path:
    return root / pack_path(PACK.BAM_CODEC, "provenance")


def _set(file: Callable[[Path], Path], *keys: str, value: Any) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        def change(data: dict[str, Any]) -> None:
            node = data
            for key in keys[:-1]:
                node = node[key] if not isinstance(node, list) else node[int(key)]
            last = keys[-1]
            node[int(last) if isinstance(node, list) else last] = value

        edit(file(root), change)
        return binds

    return mutate


def _drop(file: Callable[[Path], Path], *keys: str) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        def change(data: dict[str, Any]) -> None:
            node = data
            for key in keys[:-1]:
                node = node[key]
            del node[keys[-1]]

        edit(file(root), change)
        return binds

    return mutate


def _layer(index: int | str, d_out: int, d_in: int, **extra: np.ndarray) -> Mutation:
    """Replace (or add) a layer file as np.savez writes it."""

    def mutate(root: Path, binds: list[str]) -> list[str]:
        w = np.full((d_out, d_in), 0.01, np.float32)
        arrays = {"W": w, "V": w.T.copy()} | extra
        np.savez(root / f"layer_{index}.npz", **arrays)
        return binds

    return mutate


def _recast_layers(dtype: type) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        for path in sorted(root.glob("layer_*.npz")):
            with np.load(path) as npz:
                arrays = {k: npz[k].astype(dtype) for k in npz.files}
            np.savez(path, **arrays)
        return binds

    return mutate


def _nan_weight(root: Path, binds: list[str]) -> list[str]:
    path = root / "layer_1.npz"
    with np.load(path) as npz:
        w, v = npz["W"].copy(), npz["V"]
    w[0, 0] = np.nan
    np.savez(path, W=w, V=v)
    return binds


def _rehash_norm(root: Path, binds: list[str]) -> list[str]:
    digest = hashlib.sha256((root / "norm.json").read_bytes()).hexdigest()
    edit(_provenance(root), lambda d: d.update(norm_params_hash=digest))
    return binds


def _rehash_payload(root: Path, binds: list[str]) -> list[str]:
    m = json.loads(_manifest(root).read_text())
    text = payload_schema(m["latent_dim"], m["packing"], m["scale"])
    digest = hashlib.sha256(text.encode()).hexdigest()
    edit(_provenance(root), lambda d: d.update(payload_schema_hash=digest))
    return binds


def _norm_short(root: Path, binds: list[str]) -> list[str]:
    """One mean entry fewer, the provenance re-pinned so only the length rule breaks."""
    edit(root / "norm.json", lambda d: d["mean"].pop())
    return _rehash_norm(root, binds)


def _crlf_hash(root: Path, binds: list[str]) -> list[str]:
    """The committed LoRa model sets: norm_params_hash taken over the CRLF form of the
    norm file, while the file itself has LF line ends."""
    crlf = (root / "norm.json").read_bytes().replace(b"\n", b"\r\n")
    digest = hashlib.sha256(crlf).hexdigest()
    edit(_provenance(root), lambda d: d.update(norm_params_hash=digest))
    return binds


def _rename(src: str, dst: str) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        (root / src).rename(root / dst)
        return binds

    return mutate


def _delete(rel: Callable[[Path], Path]) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        target = rel(root)
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return binds

    return mutate


def _write(rel: str, data: bytes) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        (root / rel).write_bytes(data)
        return binds

    return mutate


def _symlink(rel: str, target: str) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        (root / rel).symlink_to(target)
        return binds

    return mutate


def _mkdir(rel: str) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        (root / rel).mkdir()
        return binds

    return mutate


def _fifo(rel: str) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        os.mkfifo(root / rel)
        return binds

    return mutate


def _bind(text: str) -> Mutation:
    return lambda root, binds: [text]


def _both(*mutations: Mutation) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        for m in mutations:
            binds = m(root, binds)
        return binds

    return mutate


def _bundle(root: Path) -> Path:
    return root / pack_path(PACK.STAGE1_BUNDLE, "bundle")


def _thresholds(root: Path) -> Path:
    return root / pack_path(PACK.STAGE1_BUNDLE, "thresholds")


def _splits(root: Path) -> Path:
    return root / "splits.json"


def _meta(root: Path) -> Path:
    return root / pack_path(PACK.LABEL_TELEMETRY, "run_metadata")


def _policy_file(file_id: str, doc: dict[str, Any]) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        dump(root / pack_path(PACK.STAGE1_BUNDLE, file_id), doc)
        return binds

    return mutate


def _activate(policy: str, file_id: str, doc: dict[str, Any]) -> Mutation:
    """Switch the bundle to `policy`, its parameter file written by its calibrator."""
    return _both(
        _delete(_thresholds),
        _policy_file(file_id, doc),
        _set(_bundle, "active_exit_policy", value=policy),
        _set(_bundle, "policy_file", value=pack_path(PACK.STAGE1_BUNDLE, file_id)),
    )


def _chosen_row_coverage(value: float) -> Mutation:
    """Change the coverage of the sweep row of the chosen threshold only."""

    def mutate(root: Path, binds: list[str]) -> list[str]:
        def change(d: dict[str, Any]) -> None:
            (row,) = [r for r in d["sweep_results"] if r["threshold"] == d["exit_threshold"]]
            row["coverage"] = value

        edit(_thresholds(root), change)
        return binds

    return mutate


IS = "intensity_stats"
LABELS = (IS, "training_labels")
ANALYSIS = (IS, "label_vs_truth_analysis")


def _flip_ratio(root: Path, binds: list[str]) -> list[str]:
    """The old pack's reading: label ÷ truth instead of the producer's truth ÷ label."""

    def change(d: dict[str, Any]) -> None:
        a = d[IS]["label_vs_truth_analysis"]
        a["ratio_truth_to_Y_amp_mean"] = a["Y_amp_mean"] / a["ground_truth_amp_mean"]

    edit(_meta(root), change)
    return binds


def _old_shape(root: Path, binds: list[str]) -> list[str]:
    """Both blocks at the top level, the shape the pack used to require."""

    def change(d: dict[str, Any]) -> None:
        block = d.pop(IS)
        d["training_labels"] = block["training_labels"]
        d["label_vs_truth_analysis"] = block["label_vs_truth_analysis"]

    edit(_meta(root), change)
    return binds


def _scale_analysis(key: str, factor: float) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        def change(d: dict[str, Any]) -> None:
            d[IS]["label_vs_truth_analysis"][key] *= factor

        edit(_meta(root), change)
        return binds

    return mutate


@dataclass(frozen=True)
class Case:
    """One producer output, possibly mutated, and the consumer's verdict on it: exactly
    these rules fail as errors and exactly these as warnings (empty: it passes)."""

    pack: str
    name: str
    mutation: Mutation
    errors: frozenset[str] = frozenset()
    warnings: frozenset[str] = frozenset()


def case(pack: str, name: str, mutation: Mutation, errors: Any = (), warnings: Any = ()) -> Case:
    return Case(pack, name, mutation, frozenset(errors), frozenset(warnings))


def _keep(root: Path, binds: list[str]) -> list[str]:
    return binds


B, S, T = PACK.BAM_CODEC, PACK.STAGE1_BUNDLE, PACK.LABEL_TELEMETRY
CASES: list[Case] = [
    # --- bam_codec: what the runtime loads passes ---------------------------------
    case(B, "trainer output as written", _keep),
    case(B, "trainer run on Windows (CRLF JSON)", lambda r, b: on_windows(write_bam)(r)),
    case(
        B,
        "provenance as the repo example (git_commit and norm hash null, created_at TODO)",
        _both(
            _set(_provenance, "git_commit", value=None),
            _set(_provenance, "norm_params_hash", value=None),
            _set(_provenance, "created_at", value="TODO"),
        ),
        warnings={BAM.NORM_UNPINNED},
    ),
    case(
        B,
        "no norm and no provenance",
        _both(_set(_manifest, "norm_path", value=None), _delete(_provenance)),
    ),
    case(
        B,
        "packing as the runtime reads it, upper case",
        _both(_set(_manifest, "packing", value="INT16"), _rehash_payload),
    ),
    case(B, "float64 W and V (the runtime casts)", _recast_layers(np.float64)),
    case(
        B,
        "extra array in a layer file",
        _layer(1, 8, 16, bias=np.zeros(8, np.float32)),
        warnings={CHECK.FILE_UNKNOWN_KEY},
    ),
    case(B, "layer numbers with a gap (the runtime sorts)", _rename("layer_1.npz", "layer_7.npz")),
    case(B, "leading zero in a layer number", _rename("layer_1.npz", "layer_01.npz")),
    case(
        B,
        "null encode and decode cycles",
        _both(
            _set(_manifest, "encode_cycles", value=None),
            _set(_manifest, "decode_cycles", value=None),
            _set(_manifest, "delta", value=0.75),
        ),
    ),
    case(B, "no cycles: any delta", _set(_manifest, "delta", value=0.75)),
    case(
        B,
        "unknown manifest key",
        _set(_manifest, "quantizer", value="v2"),
        warnings={CHECK.FILE_UNKNOWN_KEY},
    ),
    case(
        B,
        "norm_params_hash null (repo example provenance)",
        _set(_provenance, "norm_params_hash", value=None),
        warnings={BAM.NORM_UNPINNED},
    ),
    case(B, "a NaN weight", _nan_weight, warnings={CHECK.FILE_ARRAYS}),
    # A NaN in the dataset makes a std NaN: json.dumps writes it, json.loads reads it back.
    case(
        B,
        "NaN in norm.json (Python's json)",
        _both(_set(lambda r: r / "norm.json", "std", "3", value=float("nan")), _rehash_norm),
        warnings={CHECK.FILE_READABLE},
    ),
    case(
        B,
        "symlinked layer inside DIR",
        _both(_rename("layer_1.npz", "weights_1.npz"), _symlink("layer_1.npz", "weights_1.npz")),
    ),
    # --- bam_codec: what the runtime refuses fails ---------------------------------
    case(B, "committed model sets: norm hashed with CRLF", _crlf_hash, errors={BAM.NORM_HASH}),
    case(
        B,
        "payload_schema_hash wrong",
        _set(_provenance, "payload_schema_hash", value="0" * 64),
        errors={BAM.PAYLOAD_SCHEMA_HASH},
    ),
    case(
        B,
        "payload_schema_hash stale after repacking to int8",
        _set(_manifest, "packing", value="int8"),
        errors={BAM.PAYLOAD_SCHEMA_HASH},
    ),
    case(B, "codec_id not bam", _set(_provenance, "codec_id", value="zlib"), errors={BAM.CODEC_ID}),
    case(
        B,
        "codec_version not 0",
        _set(_provenance, "codec_version", value="1"),
        errors={BAM.CODEC_VERSION},
    ),
    case(
        B,
        "packing int4",
        _both(_set(_manifest, "packing", value="int4"), _rehash_payload),
        errors={BAM.PACKING_KNOWN},
    ),
    case(B, "payload over the bound", _bind("max_payload_bytes=15"), errors={BAM.PAYLOAD_LIMIT}),
    case(
        B,
        "int16 with a null scale",
        _both(_set(_manifest, "scale", value=None), _rehash_payload),
        errors={BAM.SCALE_FOR_INTEGER_PACKING},
    ),
    case(
        B,
        "delta 0.5 with encode cycles",
        _both(_set(_manifest, "encode_cycles", value=2), _set(_manifest, "delta", value=0.5)),
        errors={BAM.DELTA_WITH_CYCLES},
    ),
    case(B, "first layer reads 40 values", _layer(0, 16, 40), errors={BAM.FIRST_LAYER_INPUT}),
    case(B, "chain broken", _layer(1, 8, 20), errors={BAM.LAYER_CHAIN}),
    case(
        B,
        "latent_dim 4",
        _both(_set(_manifest, "latent_dim", value=4), _rehash_payload),
        errors={BAM.LATENT_DIM_MATCHES},
    ),
    case(B, "norm one entry short", _norm_short, errors={BAM.NORM_LENGTH}),
    case(
        B,
        "negative std",
        _both(_set(lambda r: r / "norm.json", "std", "0", value=-1.0), _rehash_norm),
        errors={CHECK.FILE_SCHEMA},
    ),
    case(B, "no manifest", _delete(_manifest), errors={CHECK.FILE_REQUIRED}),
    case(
        B,
        "norm_path names nothing",
        _set(_manifest, "norm_path", value="other.json"),
        errors={CHECK.FILE_REQUIRED},
    ),
    case(
        B,
        "model directory missing",
        _set(_manifest, "model_path", value="weights"),
        errors={CHECK.FILE_LOCATION},
    ),
    case(
        B,
        "no layers",
        _both(_delete(lambda r: r / "layer_0.npz"), _delete(lambda r: r / "layer_1.npz")),
        errors={CHECK.FILE_COUNT},
    ),
    case(
        B,
        "V not of the transposed shape",
        _layer(1, 8, 16, V=np.ones((8, 16), np.float32)),
        errors={CHECK.FILE_ARRAYS},
    ),
    case(B, "layer file garbage", _write("layer_0.npz", b"junk"), errors={CHECK.FILE_READABLE}),
    case(
        B,
        "duplicate key in the manifest",
        lambda r, b: (_manifest(r).write_text('{"latent_dim": 8, "latent_dim": 4}'), b)[1],
        errors={CHECK.FILE_READABLE},
    ),
    # A schema failure no longer hides the norm-hash mismatch the runtime refuses.
    case(
        B,
        "schema failure and CRLF hash together",
        _both(_set(_manifest, "window_stride", value=0), _crlf_hash),
        errors={CHECK.FILE_SCHEMA, BAM.NORM_HASH},
    ),
    # --- confinement (issue 19): every member resolved, inside DIR, a regular file ----
    case(
        B,
        "layer symlinked to /etc/passwd",
        _both(_delete(lambda r: r / "layer_1.npz"), _symlink("layer_1.npz", "/etc/passwd")),
        errors={CHECK.FILE_LOCATION},
    ),
    case(
        B,
        "layer symlinked to /dev/zero",
        _symlink("layer_2.npz", "/dev/zero"),
        errors={CHECK.FILE_LOCATION},
    ),
    case(B, "layer named directory", _mkdir("layer_2.npz"), errors={CHECK.FILE_NOT_REGULAR}),
    case(B, "layer named FIFO", _fifo("layer_2.npz"), errors={CHECK.FILE_NOT_REGULAR}),
    case(
        B,
        "layer that is a dangling link",
        _symlink("layer_2.npz", "gone.npz"),
        errors={CHECK.FILE_NOT_REGULAR},
    ),
    case(
        B,
        "norm_path out of DIR",
        _set(_manifest, "norm_path", value="../norm.json"),
        errors={CHECK.FILE_SCHEMA, CHECK.FILE_LOCATION},
    ),
    case(
        B,
        "norm.json symlinked out of DIR",
        _both(
            _rename("norm.json", "../outside_norm.json"),
            _symlink("norm.json", "../outside_norm.json"),
        ),
        errors={CHECK.FILE_LOCATION},
    ),
    # --- stage1_bundle ----------------------------------------------------------------
    case(S, "exporter output as written (git_commit set)", _keep),
    case(S, "scripts run on Windows (CRLF JSON)", lambda r, b: on_windows(write_stage1)(r)),
    case(S, "git_commit null outside a checkout", _set(_bundle, "git_commit", value=None)),
    case(S, "gate policy with gateparams.json", _activate("gate", "gateparams", gate_params())),
    case(S, "scrc policy with scrcparams.json", _activate("scrc", "scrcparams", scrc_params())),
    case(
        S,
        "sweep fell back: no threshold meets the FNR target",
        lambda r, b: write_stage1(r, confident_misses=True),
        warnings={BUNDLE.FNR_WITHIN_TARGET},
    ),
    case(
        S,
        "threshold not swept",
        _set(_thresholds, "exit_threshold", value=0.625),
        warnings={BUNDLE.THRESHOLD_IN_SWEEP},
    ),
    case(
        S,
        "sweep row differs",
        _chosen_row_coverage(0.125),
        warnings={BUNDLE.SWEEP_METRICS_MATCH},
    ),
    case(
        S,
        "a train index in no validation split",
        _set(_splits, "train", value=list(range(41))),
        warnings={BUNDLE.SPLITS_VAL_COVER_TRAIN},
    ),
    case(
        S,
        "thresholds.json and gateparams.json",
        _policy_file("gateparams", gate_params()),
        errors={BUNDLE.ONE_POLICY_FILE},
    ),
    case(
        S,
        "thresholds.json and scrcparams.json",
        _policy_file("scrcparams", scrc_params()),
        errors={BUNDLE.ONE_POLICY_FILE},
    ),
    case(
        S,
        "gate active, only thresholds.json",
        _both(_set(_bundle, "active_exit_policy", value="gate"), _drop(_bundle, "policy_file")),
        errors={BUNDLE.POLICY_FILE_MATCHES},
    ),
    case(
        S,
        "policy_file names the gate file",
        _both(
            _set(_bundle, "policy_file", value="gateparams.json"),
            _policy_file("gateparams", gate_params()),
        ),
        errors={BUNDLE.POLICY_FILE_NAMED, BUNDLE.ONE_POLICY_FILE},
    ),
    # A rule reading the broken file (one policy file) is skipped, not guessed.
    case(
        S,
        "a policy file that fails its schema",
        _policy_file("gateparams", {"fitted": True}),
        errors={CHECK.FILE_SCHEMA},
    ),
    case(
        S,
        "unfitted gate",
        _activate("gate", "gateparams", gate_params(fitted=False)),
        errors={BUNDLE.GATE_FITTED},
    ),
    case(
        S,
        "unfitted scrc",
        _activate("scrc", "scrcparams", scrc_params(fitted=False)),
        errors={BUNDLE.SCRC_FITTED},
    ),
    case(
        S,
        "index in both validation splits",
        _set(_splits, "val_calib", value=[0, 1, 3]),
        errors={BUNDLE.SPLITS_VAL_DISJOINT},
        warnings={BUNDLE.SPLITS_VAL_COVER_TRAIN},
    ),
    case(
        S,
        "model file missing",
        _delete(lambda r: r / "model_best.pth"),
        errors={CHECK.FILE_REQUIRED},
    ),
    case(S, "splits without a seed", _drop(_splits, "seed"), errors={CHECK.FILE_SCHEMA}),
    # --- label_telemetry ----------------------------------------------------------------
    case(T, "producer run_metadata.json as written", _keep),
    case(T, "runner on Windows (CRLF JSON)", lambda r, b: on_windows(write_telemetry)(r)),
    case(T, "an all-NaN label (null statistics)", lambda r, b: write_telemetry(r, nan_phase=True)),
    case(T, "blocks at the top level (old pack shape)", _old_shape, errors={CHECK.FILE_SCHEMA}),
    # The gap is 100·(ratio − 1) of the recorded ratio, so it breaks with it.
    case(
        T,
        "ratio label ÷ truth",
        _flip_ratio,
        errors={TELEMETRY.RATIO_TRUTH_TO_Y_AMP, TELEMETRY.AMPLITUDE_GAP},
    ),
    case(
        T,
        "analysis mean differs from the label's",
        _scale_analysis("Y_amp_mean", 1.001),
        errors={TELEMETRY.ANALYSIS_MEANS_MATCH_LABELS, TELEMETRY.RATIO_TRUTH_TO_Y_AMP},
    ),
    case(
        T,
        "gap misstated",
        _scale_analysis("amplitude_gap_pct", 2.0),
        errors={TELEMETRY.AMPLITUDE_GAP},
    ),
    case(
        T,
        "sqrt misstated",
        _scale_analysis("sqrt_Y_I_mean", 1.01),
        errors={TELEMETRY.SQRT_Y_I, TELEMETRY.RATIO_TRUTH_TO_SQRT_Y_I},
    ),
    case(
        T,
        "ratio to X misstated",
        _scale_analysis("ratio_truth_to_X_mean", 0.5),
        errors={TELEMETRY.RATIO_TRUTH_TO_X},
    ),
    case(
        T,
        "null mean with finite values",
        _set(_meta, *LABELS, "Y_amp", "mean", value=None),
        errors={TELEMETRY.STATS_NULL_IFF_NO_FINITE, TELEMETRY.ANALYSIS_MEANS_MATCH_LABELS},
    ),
    case(
        T,
        "min above mean",
        _set(_meta, *LABELS, "X", "min", value=1.0e3),
        errors={TELEMETRY.STATS_ORDERED},
    ),
    case(
        T,
        "more NaN than values",
        _set(_meta, *LABELS, "Y_I", "nan_count", value=1),
        errors={TELEMETRY.COUNTS_CONSISTENT},
    ),
    case(T, "Y_I missing", _drop(_meta, *LABELS, "Y_I"), errors={CHECK.FILE_SCHEMA}),
]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([SUB.VALIDATE, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def report_rules(pack_id: str) -> list[str]:
    return [r["id"] for r in rules_of(pack_id)]


def rules_of(pack_id: str) -> list[dict[str, Any]]:
    doc = json.loads(
        (ROOT / CANON.PATH.CONTRACTS_DIR / CANON.PATH.PACKS_DIR / pack_id / "pack.json").read_text()
    )
    return doc["pack"]["rules"]


@pytest.mark.parametrize("c", CASES, ids=[f"{c.pack}-{c.name}" for c in CASES])
def test_verdict_is_the_consumers(
    c: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "out"
    binds = c.mutation(root, WRITERS[c.pack](root))
    report = validate_pack(c.pack, root, binds)
    lines = [v.line() for v in report.violations]
    assert {v.rule for v in report.errors} == c.errors, lines
    assert {v.rule for v in report.warnings} == c.warnings, lines
    code, out, err = run_cli(capsys, FLAG.PACK, c.pack, str(root), *[f"--bind={b}" for b in binds])
    assert out.splitlines()[: len(lines)] == lines
    if c.errors:
        assert code == CANON.CLI.EXIT.CONTRACT
        assert len(err.splitlines()) == 1 and f"{len(report.errors)} violation(s)" in err
        return
    assert code == CANON.CLI.EXIT.OK, err
    assert f"conforms to pack {c.pack}" in out and f"{len(report.warnings)} warning(s)" in out
    if c.warnings:  # --strict makes the same warnings fail
        code, _, err = run_cli(
            capsys, FLAG.PACK, c.pack, str(root), FLAG.STRICT, *[f"--bind={b}" for b in binds]
        )
        assert code == CANON.CLI.EXIT.CONTRACT and FLAG.STRICT in err


@pytest.mark.parametrize("pack_id", list(WRITERS))
def test_producer_output_checks_every_rule(pack_id: str, tmp_path: Path) -> None:
    binds = WRITERS[pack_id](tmp_path)
    report = validate_pack(pack_id, tmp_path, binds)
    assert report.violations == () and report.skipped == ()
    assert report.rules_checked == len(report_rules(pack_id))


def test_documented_commands_need_no_binding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`critspec validate --pack PACK DIR` as each pack's README prints it, on the
    producer's default output: exit 0 (max_payload_bytes defaults to the runtime's 238)."""
    for pack_id, write in DOCUMENTED.items():
        write(tmp_path / pack_id)
        code, out, err = run_cli(capsys, FLAG.PACK, pack_id, str(tmp_path / pack_id))
        assert code == CANON.CLI.EXIT.OK, (pack_id, err, out)


def test_every_rule_and_check_has_a_failing_case() -> None:
    covered = set().union(*(c.errors | c.warnings for c in CASES))
    for pack_id in WRITERS:
        missing = set(report_rules(pack_id)) - covered
        assert not missing, f"{pack_id}: no failing case for {sorted(missing)}"
    checks = {v for k, v in vars(CHECK).items() if not k.startswith("_")}
    assert checks - covered - FOURTH_PACK_CHECKS == set()


def test_severities_are_the_packs() -> None:
    """A case's warnings are exactly the rules the pack marks warning (or structural)."""
    for c in CASES:
        severity = {r["id"]: r["severity"] for r in rules_of(c.pack)}
        assert all(severity.get(rule, SEV.ERROR) == SEV.ERROR for rule in c.errors), c.name
        assert all(severity.get(rule, SEV.WARNING) == SEV.WARNING for rule in c.warnings), c.name


def test_shipped_rule_ids_are_the_canon_groups() -> None:
    groups = {PACK.BAM_CODEC: BAM, PACK.STAGE1_BUNDLE: BUNDLE, PACK.LABEL_TELEMETRY: TELEMETRY}
    for pack_id, group in groups.items():
        canon_ids = [v for k, v in vars(group).items() if not k.startswith("_")]
        assert report_rules(pack_id) == canon_ids


def test_every_rule_names_the_code_it_mirrors() -> None:
    for pack_id in WRITERS:
        doc = ROOT / CANON.PATH.CONTRACTS_DIR / CANON.PATH.PACKS_DIR / pack_id / "README.md"
        text = doc.read_text(encoding="utf-8")
        pack = json.loads((doc.parent / "pack.json").read_text())["pack"]
        assert pack["upstream"]["commit"] in text
        for rule in pack["rules"]:
            section = text.split(f"### `{rule['id']}` ({rule['severity']})")[1].split("###")[0]
            assert f"- Severity: {rule['severity']}" in section
            for mirror in rule["mirrors"]:
                assert mirror.partition("@")[0] in section, (pack_id, rule["id"])


@pytest.mark.parametrize(
    ("packing", "latent_dim", "limit", "ok"),
    [
        ("int8", 64, 64, True),
        ("int8", 65, 64, False),
        ("int16", 32, 64, True),
        ("int16", 32, 63, False),
        ("float16", 31, 62, True),
        ("float32", 16, 64, True),
        ("float32", 16, 63, False),
    ],
)
def test_payload_bound(packing: str, latent_dim: int, limit: int, ok: bool, tmp_path: Path) -> None:
    # Hand-computed: payload = latent_dim x (1 int8; 2 int16/float16; 4 float32) bytes.
    write_bam(tmp_path, latent_dim=latent_dim, packing=packing)
    report = validate_pack(PACK.BAM_CODEC, tmp_path, [f"max_payload_bytes={limit}"])
    assert [v.rule for v in report.violations] == ([] if ok else [BAM.PAYLOAD_LIMIT])
    if not ok:
        (line,) = [v.line() for v in report.violations]
        bytes_ = {"int8": 1, "int16": 2, "float32": 4}[packing] * latent_dim
        assert line.endswith(f"found {bytes_}, expected <= {limit}")


def test_payload_schema_hash_by_hand(tmp_path: Path) -> None:
    """The runtime's schema string for latent 2, int16, scale 32767 (JSON 32767 or
    32767.0): sha256 of 'bam:latent_dim=2:packing=int16:scale=32767.0', worked out here
    with hashlib, and float packings spell the null scale `none`."""
    for packing, scale, text in [
        ("int16", 32767, "bam:latent_dim=2:packing=int16:scale=32767.0"),
        ("float32", None, "bam:latent_dim=2:packing=float32:scale=none"),
    ]:
        root = tmp_path / packing
        write_bam(root, latent_dim=2, packing=packing, hidden=())
        _set(_manifest, "scale", value=scale)(root, [])
        digest = hashlib.sha256(text.encode()).hexdigest()
        _set(_provenance, "payload_schema_hash", value=digest)(root, [])
        assert validate_pack(PACK.BAM_CODEC, root, []).violations == ()
        _set(_provenance, "payload_schema_hash", value=digest[::-1])(root, [])
        (v,) = validate_pack(PACK.BAM_CODEC, root, []).violations
        assert v.rule == BAM.PAYLOAD_SCHEMA_HASH and v.expected == f"== {digest!r}"


def test_json_report_gives_severity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binds = write_stage1(tmp_path, confident_misses=True)
    # The fixture's 40 items: even indices val_select, odd val_calib, train all of them.
    _set(_splits, "val_calib", value=[0, *range(1, 40, 2)])(tmp_path, binds)
    _set(_splits, "train", value=list(range(41)))(tmp_path, binds)
    code, out, _ = run_cli(
        capsys, FLAG.PACK, PACK.STAGE1_BUNDLE, str(tmp_path), FLAG.FORMAT, JSON_REPORT
    )
    assert code == CANON.CLI.EXIT.CONTRACT
    doc = json.loads(out)
    assert doc["ok"] is False and doc["pack"] == PACK.STAGE1_BUNDLE
    assert (doc["errors"], doc["warnings"]) == (1, 2)
    by_rule = {v["rule"]: v for v in doc["violations"]}
    assert by_rule[BUNDLE.SPLITS_VAL_DISJOINT] == {
        "file": "splits.json",
        "rule": BUNDLE.SPLITS_VAL_DISJOINT,
        "found": "[0]",
        "expected": "== []",
        "severity": SEV.ERROR,
    }
    fnr = by_rule[BUNDLE.FNR_WITHIN_TARGET]
    assert fnr["severity"] == SEV.WARNING and fnr["expected"] == "<= 0.02"
    assert by_rule[BUNDLE.SPLITS_VAL_COVER_TRAIN]["found"] == "[40]"


def test_no_cascade_skips_only_rules_reading_a_broken_file(tmp_path: Path) -> None:
    """A manifest that fails its schema skips the rules that read it (each listed with
    the reason) and no other: the norm hash (provenance and norm only) still runs."""
    binds = write_bam(tmp_path)
    _set(_manifest, "window_stride", value=0)(tmp_path, binds)
    _crlf_hash(tmp_path, binds)
    report = validate_pack(PACK.BAM_CODEC, tmp_path, binds)
    skipped = {s.rule for s in report.skipped}
    ran = {BAM.CODEC_ID, BAM.CODEC_VERSION, BAM.NORM_HASH, BAM.NORM_UNPINNED, BAM.LAYER_CHAIN}
    assert skipped == set(report_rules(PACK.BAM_CODEC)) - ran
    assert report.rules_checked == len(ran)
    assert all("manifest, which failed its own contract" in s.reason for s in report.skipped)
    assert {v.rule for v in report.violations} == {CHECK.FILE_SCHEMA, BAM.NORM_HASH}


def test_skipped_rules_are_printed_with_their_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binds = write_telemetry(tmp_path)
    _drop(_meta, *LABELS, "Y_I")(tmp_path, binds)
    code, out, _ = run_cli(capsys, FLAG.PACK, PACK.LABEL_TELEMETRY, str(tmp_path))
    assert code == CANON.CLI.EXIT.CONTRACT
    skipped = [line for line in out.splitlines() if ": skipped: " in line]
    assert len(skipped) == len(report_rules(PACK.LABEL_TELEMETRY))
    assert all("run_metadata, which failed its own contract" in line for line in skipped)


def test_strict_needs_a_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--contract", "gstar", FLAG.STRICT, str(tmp_path))
    assert code == CANON.CLI.EXIT.CONTRACT and out == "" and FLAG.PACK in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((FLAG.PACK, "no_such_pack", "."), "unknown pack"),
        ((FLAG.PACK, PACK.BAM_CODEC, "missing_dir"), "no such directory"),
        ((FLAG.PACK, PACK.BAM_CODEC, ".", "--bind", "frame=3"), "no such binding"),
        ((FLAG.PACK, PACK.BAM_CODEC, ".", "--bind", "max_payload_bytes=big"), "integer"),
    ],
)
def test_bad_invocation_is_one_line(
    args: tuple[str, ...],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code == CANON.CLI.EXIT.CONTRACT and out == ""
    assert len(err.splitlines()) == 1 and fragment in err, err


# --- the rule language -----------------------------------------------------------
def _ctx(**values: Any) -> rule_lang.Context:
    return rule_lang.Context(values=values, files={})


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("a.b[1] + 2 * c", 7 + 2 * 3),
        ("len(xs) - 1", 2),
        ("xs[-1] // 2", 2),
        ("has(a.zzz)", False),
        ("get(a.zzz, 9)", 9),
        ("sorted(xs + [0]) == range(0, 4) or False", False),
        ("overlap(xs, [3, 4, 5])", [4, 5]),
        ("missing(a, ['b', 'q', 'p'])", ["p", "q"]),
        ("1 < c <= 3", True),
        ("t['k'] if c > 2 else 0", "v"),
        ("close(0.1 + 0.2, 0.3, 1e-12)", True),
        ("column(rows, 'n')", [1, 2]),
        ("first(rows, 'n', 2).m", "y"),
        ("not keys(t) == ['k']", False),
        ("difference(xs, [5, 9])", [1, 4]),
        ("duplicates(xs + [4, 4, 1])", [1, 4]),
        ("str(float(c)) + ':' + str(int(c))", "3.0:3"),
        (
            "sha256_text('abc')",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        ("lower('INT16')", "int16"),
        ("sqrt(c * 12)", 6.0),
    ],
)
def test_rule_language_values(source: str, value: Any) -> None:
    ctx = _ctx(
        a={"b": [5, 7]},
        c=3,
        xs=[1, 5, 4],
        t={"k": "v"},
        rows=[{"n": 1, "m": "x"}, {"n": 2, "m": "y"}],
    )
    assert rule_lang.evaluate(rule_lang.parse(source), ctx) == value


def test_rule_range_is_bounded() -> None:
    """range() refuses a length from the data above RULE_RANGE_MAX instead of building it."""
    big = rule_lang.parse("range(n)")
    with pytest.raises(ValueError, match="not built"):
        rule_lang.evaluate(big, _ctx(n=CANON.CONST.RULE_RANGE_MAX + 1))
    assert len(rule_lang.evaluate(big, _ctx(n=3))) == 3


def test_rule_language_absent_and_explain() -> None:
    ctx = _ctx(a={"n": 5})
    with pytest.raises(rule_lang.Absent, match="'zzz'"):
        rule_lang.evaluate(rule_lang.parse("a.zzz + 1"), ctx)
    assert rule_lang.explain(rule_lang.parse("a.n * 2 <= 9"), ctx) == ("10", "<= 9")
    assert rule_lang.explain(rule_lang.parse("has(a.q)"), ctx) == ("absent", "`a.q` present")


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('true')",
        "a.__class__",
        "(lambda: 1)()",
        "[x for x in xs]",
        "len(xs, key=1)",
        "open('f')",
        "a.b()",
        "x := 1",
        "{1: 2}",
    ],
)
def test_rule_language_rejects(source: str) -> None:
    with pytest.raises(ValueError, match="not allowed|only|not an expression"):
        rule_lang.parse(source)


# --- pack spec validation and a throwaway fourth pack ---------------------------
SENSOR_PACK = """
id: sensor_calib
title: Sensor calibration export
description: A calibration record and its numbered sample files.
bindings:
  n_channels: {type: integer, description: channels of the sensor, example: 3}
files:
  calib:
    path: calib.json
    format: json
    description: The calibration record.
    fields:
      n_files: {type: integer, minimum: 1}
      first_sha256: {type: string, pattern: "^[0-9a-f]{64}$"}
  samples:
    pattern: samples/s{i}.npz
    format: npz
    count: {min: 1, max: 4}
    contiguous: true
    description: Samples, one NPZ per batch.
    arrays:
      x: {dtype: float64, shape: [n, n_channels]}
rules:
  - id: file_count_recorded
    description: calib.n_files counts the sample files.
    example: three sample files need n_files 3.
    file: calib
    check: len(samples) == calib.n_files
  - id: first_pinned
    description: calib pins the first sample file by sha256.
    example: first_sha256 is sha256 of samples/s0.npz.
    check: calib.first_sha256 == sha256(samples[0])
"""


UPSTREAM = {"repo": "owner/sensor", "commit": "0" * 40, "producer": "export.py", "command": "x"}


@pytest.fixture()
def tree_copy(tmp_path: Path) -> Path:
    for top in (SPEC_DIRNAME, CANON.PATH.CANON_DIR, CANON.PATH.CONTRACTS_DIR):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


# Checks no shipped pack can fail (none declares `contiguous`): the fourth pack does.
FOURTH_PACK_CHECKS = {CHECK.FILE_CONTIGUOUS}


def test_fourth_pack_needs_only_yaml(tree_copy: Path, tmp_path: Path) -> None:
    (tree_copy / SPEC_DIRNAME / CANON.PATH.PACKS_DIR / "sensor_calib.yaml").write_text(SENSOR_PACK)
    with pytest.raises(ContractError, match="sensor_calib"):
        plan.check(tree_copy)
    plan.write(tree_copy)
    plan.check(tree_copy)
    packs = tree_copy / CANON.PATH.CONTRACTS_DIR / CANON.PATH.PACKS_DIR
    doc = (packs / "sensor_calib" / "README.md").read_text()
    assert "first_pinned" in doc and "--pack sensor_calib DIR --bind n_channels=3" in doc
    assert "sensor_calib" in (packs / "README.md").read_text()

    out = tmp_path / "export"
    (out / "samples").mkdir(parents=True)
    for i in range(3):
        writers.write_npz(out / "samples" / f"s{i}.npz", {"x": np.full((i + 2, 3), float(i))})
    first = hashlib.sha256((out / "samples" / "s0.npz").read_bytes()).hexdigest()
    writers.write_json(out / "calib.json", {"n_files": 3, "first_sha256": first})
    contracts = tree_copy / CANON.PATH.CONTRACTS_DIR
    good = validate_pack("sensor_calib", out, ["n_channels=3"], root=contracts)
    assert good.ok, [v.line() for v in good.violations]

    report = validate_pack("sensor_calib", out, ["n_channels=4"], root=contracts)
    assert {v.rule for v in report.violations} == {CHECK.FILE_ARRAYS}
    assert len(report.violations) == 3  # one per sample file
    (out / "samples" / "s2.npz").rename(out / "samples" / "s3.npz")
    report = validate_pack("sensor_calib", out, ["n_channels=3"], root=contracts)
    assert {v.rule for v in report.violations} == FOURTH_PACK_CHECKS
    (out / "samples" / "s3.npz").rename(out / "samples" / "s2.npz")
    writers.write_json(out / "calib.json", {"n_files": 2, "first_sha256": "0" * 64})
    report = validate_pack("sensor_calib", out, ["n_channels=3"], root=contracts)
    assert [v.line() for v in report.violations] == [
        "calib.json: file_count_recorded: found 3, expected == 2",
        f"calib.json: first_pinned: found {'0' * 64!r}, expected == {first!r}",
    ]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.update(surprise=1), "surprise: unknown key"),
        (lambda d: d["rules"][0].update(check="eval('1')"), "only"),
        (lambda d: d["rules"][0].update(check="calib.n_files == nope"), "unknown name 'nope'"),
        (lambda d: d["files"]["samples"].update(pattern="samples/s.npz"), "exactly once"),
        (lambda d: d["files"]["samples"].update(under="calib.n_files"), "string field"),
        (lambda d: d["files"]["calib"].update(path="../calib.json"), "relative path"),
        (lambda d: d.update(upstream=UPSTREAM | {"commit": "d294920"}), "40-hex commit"),
        (lambda d: d.update(upstream=UPSTREAM), "name the upstream code it mirrors"),
        (lambda d: d["rules"][0].update(mirrors=["a.py@HEAD"]), "PATH or PATH@COMMIT"),
        (lambda d: d["rules"][0].update(severity="fatal"), "severity"),
        (lambda d: d["files"]["samples"].update(unknown_keys="maybe"), "unknown_keys"),
    ],
)
def test_pack_spec_rejects(change: Callable[[dict[str, Any]], None], fragment: str) -> None:
    import yaml

    data = yaml.safe_load(SENSOR_PACK)
    change(data)
    with pytest.raises(ContractError, match=fragment):
        from critspec.errors import validated

        validated(PackSpec, data, Path("sensor_calib.yaml"), ContractError)


def test_each_names_its_item_and_close_its_tolerance(tmp_path: Path) -> None:
    binds = write_telemetry(tmp_path)
    _set(_meta, *LABELS, "Y_I", "finite_count", value=0)(tmp_path, binds)
    _flip_ratio(tmp_path, binds)
    meta = json.loads(_meta(tmp_path).read_text())["intensity_stats"]["label_vs_truth_analysis"]
    want = meta["ground_truth_amp_mean"] / meta["Y_amp_mean"]
    lines = [v.line() for v in validate_pack(PACK.LABEL_TELEMETRY, tmp_path, binds).violations]
    path = pack_path(PACK.LABEL_TELEMETRY, "run_metadata")
    assert lines == [
        f"{path}: {TELEMETRY.STATS_NULL_IFF_NO_FINITE}: found name='Y_I': "
        "[false, false, false, false], expected == [true, true, true, true]",
        f"{path}: {TELEMETRY.RATIO_TRUTH_TO_Y_AMP}: found {meta['ratio_truth_to_Y_amp_mean']!r}, "
        f"expected ≈ {want!r} (relative tolerance 1e-09)",
        f"{path}: {TELEMETRY.AMPLITUDE_GAP}: found {meta['amplitude_gap_pct']!r}, "
        f"expected ≈ {(meta['ratio_truth_to_Y_amp_mean'] - 1) * 100!r} (relative tolerance 1e-06)",
    ]
