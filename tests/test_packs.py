"""Contract packs (spec/packs/): conforming directories pass, each rule's violation is named.

Every case mutates a conforming fixture (tests/pack_fixtures.py) in one way and
states, by hand, exactly which rules must then fail; the coverage tests make
sure every rule of every shipped pack and every structural check has a case.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
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
from tests.pack_fixtures import PACK, WRITERS, pack_path, write_bam

ROOT = project_root()
SUB = CANON.CLI.SUBCOMMAND
FLAG = CANON.CLI.VALIDATE_FLAG
JSON_REPORT = CANON.ENUM.REPORT_FORMAT.JSON
CHECK = CANON.ENUM.PACK_CHECK
BAM = CANON.ENUM.BAM_CODEC_RULE
BUNDLE = CANON.ENUM.STAGE1_BUNDLE_RULE
TELEMETRY = CANON.ENUM.LABEL_TELEMETRY_RULE
Mutation = Callable[[Path, list[str]], list[str]]


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = writers.read_json(path)
    change(data)
    writers.write_json(path, data)


def _manifest(root: Path) -> Path:
    return root / pack_path(PACK.BAM_CODEC, "manifest")


def _set(file: Callable[[Path], Path], *keys: str, value: Any) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        def change(data: dict[str, Any]) -> None:
            node = data
            for key in keys[:-1]:
                node = node[key] if not isinstance(node, list) else node[int(key)]
            node[keys[-1]] = value

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


def _layer(index: int, d_out: int, d_in: int, transpose_v: bool = True) -> Mutation:
    def mutate(root: Path, binds: list[str]) -> list[str]:
        w = np.ones((d_out, d_in), np.float32)
        v = w.T.copy() if transpose_v else w
        writers.write_npz(root / "model" / f"layer_{index}.npz", {"W": w, "V": v})
        return binds

    return mutate


def _norm_mean_short(root: Path, binds: list[str]) -> list[str]:
    """One mean entry fewer; the provenance hash is updated so only the length rule breaks."""
    norm = root / "model" / "norm.json"
    edit(norm, lambda d: d["mean"].pop())
    digest = hashlib.sha256(norm.read_bytes()).hexdigest()
    edit(
        root / pack_path(PACK.BAM_CODEC, "provenance"), lambda d: d.update(norm_params_hash=digest)
    )
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


def _gate_file(root: Path, binds: list[str]) -> list[str]:
    writers.write_json(
        root / pack_path(PACK.STAGE1_BUNDLE, "gate_params"),
        {"gate_threshold": 0.5, "coverage": 0.75, "exit_accuracy": 0.9375},
    )
    return binds


ANALYSIS = "label_vs_truth_analysis"
LABELS = "training_labels"
FULL_RATIOS = {"status": "present", "mean_ratio": 1.0, "std_ratio": 1.0}
FULL_RATIOS |= {"truth_mean": 1.0, "truth_std": 1.0}

# (pack, case name, mutation, the exact set of rules that must then fail)
CASES: list[tuple[str, str, Mutation, set[str]]] = [
    (PACK.BAM_CODEC, "payload over", _bind("max_payload_bytes=15"), {BAM.PAYLOAD_LIMIT}),
    (PACK.BAM_CODEC, "int16 no scale", _drop(_manifest, "scale"), {BAM.SCALE_FOR_INTEGER_PACKING}),
    (PACK.BAM_CODEC, "delta 0.5", _set(_manifest, "delta", value=0.5), {BAM.DELTA_WITH_CYCLES}),
    (
        PACK.BAM_CODEC,
        "decode cycles, delta 0.75",
        _both(
            _set(_manifest, "encode_cycles", value=0),
            _set(_manifest, "decode_cycles", value=3),
            _set(_manifest, "delta", value=0.75),
        ),
        {BAM.DELTA_WITH_CYCLES},
    ),
    (PACK.BAM_CODEC, "first layer 40", _layer(0, 16, 40), {BAM.FIRST_LAYER_INPUT}),
    (PACK.BAM_CODEC, "chain broken", _layer(1, 8, 20), {BAM.LAYER_CHAIN}),
    (PACK.BAM_CODEC, "latent 4", _set(_manifest, "latent_dim", value=4), {BAM.LATENT_DIM_MATCHES}),
    (PACK.BAM_CODEC, "norm short", _norm_mean_short, {BAM.NORM_LENGTH}),
    (
        PACK.BAM_CODEC,
        "norm hash",
        _set(
            lambda r: r / pack_path(PACK.BAM_CODEC, "provenance"),
            "norm_params_hash",
            value="0" * 64,
        ),
        {BAM.NORM_HASH},
    ),
    (PACK.BAM_CODEC, "no manifest", _delete(_manifest), {CHECK.FILE_REQUIRED}),
    (
        PACK.BAM_CODEC,
        "norm_path names nothing",
        _set(_manifest, "norm_path", value="model/other.json"),
        {CHECK.FILE_REQUIRED},
    ),
    (
        PACK.BAM_CODEC,
        "model dir missing",
        _set(_manifest, "model_path", value="weights"),
        {CHECK.FILE_LOCATION},
    ),
    (
        PACK.BAM_CODEC,
        "gap in layers",
        _rename("model/layer_1.npz", "model/layer_2.npz"),
        {CHECK.FILE_CONTIGUOUS},
    ),
    (
        PACK.BAM_CODEC,
        "no layers",
        _both(
            _delete(lambda r: r / "model/layer_0.npz"), _delete(lambda r: r / "model/layer_1.npz")
        ),
        {CHECK.FILE_COUNT},
    ),
    (PACK.BAM_CODEC, "packing int4", _set(_manifest, "packing", value="int4"), {CHECK.FILE_SCHEMA}),
    (PACK.BAM_CODEC, "V not transposed", _layer(1, 8, 16, transpose_v=False), {CHECK.FILE_ARRAYS}),
    (PACK.BAM_CODEC, "layer garbage", _write("model/layer_0.npz", b"junk"), {CHECK.FILE_READABLE}),
    (
        PACK.STAGE1_BUNDLE,
        "fnr above target",
        _set(_thresholds, "target_fnr", value=0.05),
        {BUNDLE.FNR_WITHIN_TARGET},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "threshold not swept",
        _set(_thresholds, "exit_threshold", value=0.625),
        {BUNDLE.THRESHOLD_IN_SWEEP},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "sweep row differs",
        _set(_thresholds, "sweep_results", "1", "coverage", value=0.71875),
        {BUNDLE.SWEEP_METRICS_MATCH},
    ),
    (PACK.STAGE1_BUNDLE, "two policy files", _gate_file, {BUNDLE.ONE_POLICY_FILE}),
    (
        PACK.STAGE1_BUNDLE,
        "gate active, thresholds present",
        _both(_set(_bundle, "active_exit_policy", value="gate"), _drop(_bundle, "policy_file")),
        {BUNDLE.POLICY_FILE_MATCHES},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "policy_file names the gate file",
        _set(_bundle, "policy_file", value="gate_params.json"),
        {BUNDLE.POLICY_FILE_NAMED},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "index in two splits",
        _set(_splits, "val", value=[0, 9]),
        {BUNDLE.SPLITS_DISJOINT, BUNDLE.SPLITS_COVER},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "index 6 missing",
        _set(_splits, "test", value=[4]),
        {BUNDLE.SPLITS_COVER},
    ),
    (
        PACK.STAGE1_BUNDLE,
        "model file missing",
        _delete(lambda r: r / "model.pt"),
        {CHECK.FILE_REQUIRED},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "present without std",
        _drop(_meta, LABELS, "Y_amp", "std"),
        {TELEMETRY.PRESENT_LABEL_HAS_STATS},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "missing with a mean",
        _set(_meta, LABELS, "Y_phi", "mean", value=1.0),
        {TELEMETRY.MISSING_LABEL_HAS_NO_STATS},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "min above mean",
        _set(_meta, LABELS, "Y_amp", "min", value=2.25),
        {TELEMETRY.STATS_ORDERED},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "analysis status differs",
        _set(_meta, ANALYSIS, "Y_phi", value=FULL_RATIOS),
        {TELEMETRY.ANALYSIS_COVERS_LABELS},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "analysis of an unrecorded label",
        _set(_meta, ANALYSIS, "Y", value={"status": "missing"}),
        {TELEMETRY.ANALYSIS_HAS_NO_EXTRA_LABELS},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "present analysis without std_ratio",
        _drop(_meta, ANALYSIS, "Y_I", "std_ratio"),
        {TELEMETRY.PRESENT_ANALYSIS_HAS_RATIOS},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "mean_ratio 0.6",
        _set(_meta, ANALYSIS, "Y_amp", "mean_ratio", value=0.6),
        {TELEMETRY.MEAN_RATIO_CONSISTENT},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "std_ratio 2.25",
        _set(_meta, ANALYSIS, "Y_I", "std_ratio", value=2.25),
        {TELEMETRY.STD_RATIO_CONSISTENT},
    ),
    (
        PACK.LABEL_TELEMETRY,
        "Y_I omitted",
        _both(_drop(_meta, LABELS, "Y_I"), _drop(_meta, ANALYSIS, "Y_I")),
        {CHECK.FILE_SCHEMA},
    ),
]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([SUB.VALIDATE, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


@pytest.mark.parametrize("pack_id", list(WRITERS))
def test_conforming_directory_passes(
    pack_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binds = WRITERS[pack_id](tmp_path)
    report = validate_pack(pack_id, tmp_path, binds)
    assert report.violations == () and report.skipped == ()
    assert report.rules_checked == len(report_rules(pack_id))
    code, out, err = run_cli(
        capsys, FLAG.PACK, pack_id, str(tmp_path), *[f"--bind={b}" for b in binds]
    )
    assert code == CANON.CLI.EXIT.OK, err
    assert f"conforms to pack {pack_id}" in out


def report_rules(pack_id: str) -> list[str]:
    return [r["id"] for r in rules_of(pack_id)]


def rules_of(pack_id: str) -> list[dict[str, Any]]:
    doc = json.loads(
        (ROOT / CANON.PATH.CONTRACTS_DIR / CANON.PATH.PACKS_DIR / pack_id / "pack.json").read_text()
    )
    return doc["pack"]["rules"]


@pytest.mark.parametrize(
    ("pack_id", "mutation", "expected"),
    [(p, m, e) for p, _, m, e in CASES],
    ids=[f"{p}-{name}" for p, name, _, _ in CASES],
)
def test_each_violation_is_named(
    pack_id: str,
    mutation: Mutation,
    expected: set[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    binds = mutation(tmp_path, WRITERS[pack_id](tmp_path))
    report = validate_pack(pack_id, tmp_path, binds)
    assert {v.rule for v in report.violations} == expected, [v.line() for v in report.violations]
    code, out, err = run_cli(
        capsys, FLAG.PACK, pack_id, str(tmp_path), *[f"--bind={b}" for b in binds]
    )
    assert code == CANON.CLI.EXIT.CONTRACT
    lines = out.splitlines()
    assert lines == [v.line() for v in report.violations]
    assert all(any(f": {rule}: found " in line for line in lines) for rule in expected)
    assert len(err.splitlines()) == 1 and f"{len(lines)} violation(s)" in err


def test_every_rule_and_check_has_a_failing_case() -> None:
    covered = set().union(*(e for _, _, _, e in CASES))
    for pack_id in WRITERS:
        missing = set(report_rules(pack_id)) - covered
        assert not missing, f"{pack_id}: no failing case for {sorted(missing)}"
    checks = {v for k, v in vars(CHECK).items() if not k.startswith("_")}
    assert checks - covered == set()


def test_shipped_rule_ids_are_the_canon_groups() -> None:
    groups = {PACK.BAM_CODEC: BAM, PACK.STAGE1_BUNDLE: BUNDLE, PACK.LABEL_TELEMETRY: TELEMETRY}
    for pack_id, group in groups.items():
        canon_ids = [v for k, v in vars(group).items() if not k.startswith("_")]
        assert report_rules(pack_id) == canon_ids


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


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binds = WRITERS[PACK.STAGE1_BUNDLE](tmp_path)
    _set(_splits, "test", value=[4])(tmp_path, binds)
    _set(_thresholds, "target_fnr", value=0.05)(tmp_path, binds)
    code, out, _ = run_cli(
        capsys, FLAG.PACK, PACK.STAGE1_BUNDLE, str(tmp_path), FLAG.FORMAT, JSON_REPORT
    )
    assert code == CANON.CLI.EXIT.CONTRACT
    doc = json.loads(out)
    assert doc["ok"] is False and doc["pack"] == PACK.STAGE1_BUNDLE
    by_rule = {v["rule"]: v for v in doc["violations"]}
    assert set(by_rule) == {BUNDLE.SPLITS_COVER, BUNDLE.FNR_WITHIN_TARGET}
    assert by_rule[BUNDLE.FNR_WITHIN_TARGET] == {
        "file": pack_path(PACK.STAGE1_BUNDLE, "thresholds"),
        "rule": BUNDLE.FNR_WITHIN_TARGET,
        "found": "0.0625",
        "expected": "<= 0.05",
    }
    assert by_rule[BUNDLE.SPLITS_COVER]["found"] == "[0, 1, 2, 3, 4, 5, 7, 8, ... (9 items)]"


def test_rules_on_a_broken_file_are_skipped_not_guessed(tmp_path: Path) -> None:
    binds = write_bam(tmp_path)
    _set(_manifest, "packing", value="int4")(tmp_path, binds)
    report = validate_pack(PACK.BAM_CODEC, tmp_path, binds)
    skipped = {s.rule for s in report.skipped}
    # Every rule reads the manifest (directly or through its layers).
    assert skipped == set(report_rules(PACK.BAM_CODEC))
    assert report.rules_checked == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((FLAG.PACK, "no_such_pack", "."), "unknown pack"),
        ((FLAG.PACK, PACK.BAM_CODEC, "missing_dir"), "no such directory"),
        ((FLAG.PACK, PACK.BAM_CODEC, "."), "--bind max_payload_bytes=VALUE"),
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


@pytest.fixture()
def tree_copy(tmp_path: Path) -> Path:
    for top in (SPEC_DIRNAME, CANON.PATH.CANON_DIR, CANON.PATH.CONTRACTS_DIR):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


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
    binds = WRITERS[PACK.LABEL_TELEMETRY](tmp_path)
    _set(_meta, ANALYSIS, "Y_amp", "mean_ratio", value=0.625)(tmp_path, binds)
    report = validate_pack(PACK.LABEL_TELEMETRY, tmp_path, binds)
    # mean 2.0 over truth_mean 4.0 is 0.5; the tolerance is the pack's ratio_rtol.
    assert [v.line() for v in report.violations] == [
        f"{pack_path(PACK.LABEL_TELEMETRY, 'run_metadata')}: "
        f"{TELEMETRY.MEAN_RATIO_CONSISTENT}: found name='Y_amp': 0.625, "
        "expected ≈ 0.5 (relative tolerance 1e-06)"
    ]
