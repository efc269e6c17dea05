"""The run graph of spec/phases.yaml (spec/07_RUNS_RECORDS_LOGGING.md "Run graph"): a
throwaway pipeline declared here with a per-role producer, a phase that consumes both
roles and a phase that consumes the whole pipeline runs through the real orchestrator."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from canon import CANON
from critspec.cli import main
from critspec.config.canonical import canonical_bytes
from critspec.config.resolve import load_config
from critspec.errors import ContractError
from critspec.orchestrate import (
    Invocation,
    Options,
    PhaseContext,
    at_node,
    execute,
    planned_run_id,
    upstream_runs,
)
from critspec.paths import project_root
from critspec.spec.load import Spec, load_spec, project_spec
from critspec.spec.phases_spec import Consumes, PhaseSpec, PhasesSpec
from critspec.store.run_store import SealedRun
from critspec.store.writers import read_json
from tests.test_store_throwaway import D_FF, MODEL, SLICE, L, N, T

SUB = CANON.CLI.SUBCOMMAND
TAG = CANON.OUTPUT.STAGE_TAG
LOG = CANON.OUTPUT.LOG
INSTRUCT, BASE = CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE
CONFIG = project_root() / CANON.PATH.CONFIG_PIPELINE
RUNNER = __name__


def _phase(key: str, sub: str, **fields: object) -> PhaseSpec:
    base: dict = {
        "key": key,
        "id": getattr(SUB, sub),
        "stage_tag": getattr(TAG, sub),
        "log": getattr(LOG, sub),
        "runner": RUNNER,
        "per_model_role": False,
        "commands": {"ALL": getattr(CANON.CLI.CMD, sub)},
        "config_sections": (),
        "consumes": (),
        "produces": (),
        "checks": (),
        "once_checks": (),
    }
    return PhaseSpec(**{**base, **fields})


PRODUCER = _phase(
    "PRODUCER",
    "PHASE1_CALIBRATE",
    per_model_role=True,
    commands={
        INSTRUCT: CANON.CLI.CMD.PHASE1_CALIBRATE,
        BASE: CANON.CLI.CMD.PHASE1_CALIBRATE_BASE,
    },
    produces=("calibration_slice",),
)
PAIR = _phase(
    "PAIR",
    "PHASE2_GAIN_GRID",
    consumes=(
        Consumes(
            phase="PRODUCER",
            artifacts=("calibration_slice",),
            roles=CANON.ENUM.CONSUMED_ROLES.BOTH,
        ),
    ),
    produces=("calibration_stats",),
)
RELEASE = _phase("RELEASE", "PHASE2_SELECT_GSTAR", consumes_pipeline=True)
# RELEASE first in the file: the graph, not the file order, decides what runs first.
GRAPH = PhasesSpec(phases=(RELEASE, PRODUCER, PAIR))


def throwaway_spec() -> Spec:
    real = project_spec()
    return Spec(canon=real.canon, artifacts=real.artifacts, phases=GRAPH)


def run(ctx: PhaseContext) -> None:
    """The runner of every throwaway phase (spec/phases.yaml `runner` names this module)."""
    key = ctx.inv.phase.key
    if key == "PRODUCER":
        # Role-specific bytes, so the two roles' runs differ in content and not only in id.
        shift = 1 if ctx.model_role == BASE else 0
        ctx.run.dataset_slices.append(SLICE)
        ids = (np.arange(N * T, dtype=np.int32) + shift).reshape(N, T)
        ctx.run.write_npz(
            "calibration_slice", {"window_index": np.arange(N, dtype=np.int64), "input_ids": ids}
        )
    elif key == "PAIR":
        ctx.run.model = MODEL
        means = [
            float(np.load(ctx.consume("calibration_slice", role))["input_ids"].mean())
            for role in (INSTRUCT, BASE)
        ]
        mu = np.full((L, D_FF), means[1] - means[0], np.float32)
        ctx.run.write_npz("calibration_stats", {"mu": mu, "sigma": np.ones_like(mu)})
    else:
        for sealed in ctx.pipeline_runs():
            ctx.consume(sealed.indexed(_produced(sealed))["contract"], sealed.record["model_role"])


def _produced(sealed: SealedRun) -> str:
    return GRAPH.by_id(sealed.record["phase_id"]).produces[0]


def invocation(key: str, role: str | None, runs: Path, config: Path = CONFIG) -> Invocation:
    spec = throwaway_spec()
    return Invocation(
        spec=spec,
        phase=spec.phases.by_key(key),
        config=load_config(config),
        options=Options(config=config, runs_dir=runs, model_role=role),
        device=CANON.ENUM.DEVICE.CPU,
        dtype=CANON.ENUM.DTYPE.FP32,
    )


def test_graph_order_follows_consumes_not_the_file() -> None:
    assert [p.key for p in GRAPH.graph_order()] == ["PRODUCER", "PAIR", "RELEASE"]
    assert [p.key for p in GRAPH.pipeline_of("RELEASE")] == ["PRODUCER", "PAIR"]
    assert GRAPH.downstream_of("PRODUCER") == {"PAIR"}


def test_a_cycle_is_refused_naming_it() -> None:
    a = _phase("A", "PHASE1_CALIBRATE", consumes=(Consumes(phase="C", artifacts=()),))
    b = _phase("B", "PHASE2_GAIN_GRID", consumes=(Consumes(phase="A", artifacts=()),))
    c = _phase("C", "PHASE3_EXTRACT_RASTERS", consumes=(Consumes(phase="B", artifacts=()),))
    with pytest.raises(ValidationError, match=r"next\): A -> C -> B -> A"):
        PhasesSpec(phases=(a, b, c))
    # A self-loop is a cycle too; an acyclic reordering of the same phases is accepted.
    loop = _phase("A", "PHASE1_CALIBRATE", consumes=(Consumes(phase="A", artifacts=()),))
    with pytest.raises(ValidationError, match=r"next\): A -> A"):
        PhasesSpec(phases=(loop,))
    free = _phase("A", "PHASE1_CALIBRATE")
    assert [p.key for p in PhasesSpec(phases=(c, b, free)).graph_order()] == ["A", "B", "C"]


def _cyclic_spec_dir(tmp_path: Path) -> Path:
    """A copy of spec/ whose Phase 1 consumes Phase 5: the shipped graph with a cycle."""
    spec_dir = tmp_path / "spec"
    shutil.copytree(project_root() / "spec", spec_dir)
    path = spec_dir / "phases.yaml"
    raw = yaml.safe_load(path.read_text())
    first = next(p for p in raw["phases"] if p["key"] == "PHASE1_CALIBRATE")
    first["consumes"] = [{"phase": "PHASE5_ANALYZE", "artifacts": ["summary"]}]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return spec_dir


def test_run_all_refuses_a_cyclic_spec_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_dir = _cyclic_spec_dir(tmp_path)
    with pytest.raises(ContractError, match=r"next\): PHASE1_CALIBRATE -> PHASE5_ANALYZE"):
        load_spec(spec_dir)
    monkeypatch.setattr("critspec.paths.spec_dir", lambda: spec_dir)
    project_spec.cache_clear()
    try:
        runs = tmp_path / "store"
        argv = [SUB.RUN_ALL, "--config", str(CONFIG), "--runs-dir", str(runs), "--dry-run"]
        code = main(argv)
    finally:
        project_spec.cache_clear()
    err = capsys.readouterr().err.strip()
    assert code == CANON.CLI.EXIT.CONTRACT
    assert len(err.splitlines()) == 1
    assert "PHASE1_CALIBRATE -> PHASE5_ANALYZE -> PHASE3_EXTRACT_RASTERS -> PHASE1_CALIBRATE" in err
    assert not runs.exists()


def _seal(key: str, role: str | None, runs: Path) -> SealedRun:
    return SealedRun.open(execute(invocation(key, role, runs)))


def test_both_roles_and_pipeline_consumption_resolve_the_right_runs(tmp_path: Path) -> None:
    runs = tmp_path / "store"
    made = {role: _seal("PRODUCER", role, runs) for role in (INSTRUCT, BASE)}
    assert made[INSTRUCT].run_id != made[BASE].run_id
    pair = _seal("PAIR", None, runs)

    # The role-free PAIR run read one producer run per role, each recorded, and its numbers
    # are BASE minus INSTRUCT (the runner added 1 to the BASE ids).
    deps = {d["run_id"]: d for d in pair.record["dependencies"]}
    assert set(deps) == {made[INSTRUCT].run_id, made[BASE].run_id}
    stats = SealedRun.open(pair.run_dir)
    mu = np.load(pair.run_dir / stats.indexed("calibration_stats")["relative_path"])["mu"]
    assert np.all(mu == 1.0)

    # Its id covers both upstream ids, in spec role order.
    inv = invocation("PAIR", None, runs)
    doc = canonical_bytes(inv.config_doc())
    digest = hashlib.sha256()
    ids = [made[INSTRUCT].run_id, made[BASE].run_id]
    from critspec.runtime import code_version

    for part in (doc, inv.phase.stage_tag.encode(), *(i.encode() for i in ids)):
        digest.update(len(part).to_bytes(8, "little") + part)
    version = code_version().encode()
    digest.update(len(version).to_bytes(8, "little") + version)
    want = f"{CANON.PATH.RUN_DIR_PREFIX}{inv.phase.stage_tag}_"
    assert pair.run_id == want + digest.hexdigest()[: CANON.CONST.RUN_HASH_LEN]
    assert planned_run_id(inv) == pair.run_id

    # The pipeline phase reads every sealed run of this config in graph order.
    release = invocation("RELEASE", None, runs)
    upstream = upstream_runs(release)
    assert [r.run_id for _, r in upstream.pipeline] == [*ids, pair.run_id]
    assert [n for n, _ in upstream.pipeline] == [
        ("PRODUCER", INSTRUCT),
        ("PRODUCER", BASE),
        ("PAIR", None),
    ]
    sealed = _seal("RELEASE", None, runs)
    assert [d["run_id"] for d in sealed.record["dependencies"]] == [*ids, pair.run_id]
    assert sealed.run_id == planned_run_id(release)

    # A role that is not consumed, and a pipeline that is not declared, are runner bugs.
    ctx = PhaseContext(inv=inv, upstream=upstream_runs(inv), run=None)  # type: ignore[arg-type]
    assert ctx.upstream_runs("PRODUCER") == {INSTRUCT: made[INSTRUCT], BASE: made[BASE]}
    with pytest.raises(ContractError, match="roles INSTRUCT, BASE"):
        ctx.upstream_of("calibration_slice")
    with pytest.raises(ContractError, match="consumes_pipeline"):
        ctx.pipeline_runs()


def test_a_changed_upstream_run_changes_every_downstream_id(tmp_path: Path) -> None:
    runs = tmp_path / "store"
    pair = invocation("PAIR", None, runs)
    release = invocation("RELEASE", None, runs)
    base_node = ("PRODUCER", BASE)
    other = {base_node: "RUN_P1CAL_000000000000"}
    assert planned_run_id(pair, other) != planned_run_id(pair)
    assert planned_run_id(release, other) != planned_run_id(release)
    assert planned_run_id(at_node(pair, base_node)) != other[base_node]


def _one_role_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load(CONFIG.read_text())
    models = yaml.safe_load((project_root() / CANON.PATH.CONFIG_MODELS).read_text())
    models["models"] = [m for m in models["models"] if m["role"].endswith(".INSTRUCT")]
    (tmp_path / "one_role_models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    raw["models_file"] = str(tmp_path / "one_role_models.yaml")
    raw["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_DATASETS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture
def throwaway_project(monkeypatch: pytest.MonkeyPatch) -> None:
    for where in ("critspec.cli", "critspec.orchestrate", "critspec.run_all"):
        monkeypatch.setattr(f"{where}.project_spec", throwaway_spec)


@pytest.mark.usefixtures("throwaway_project")
def test_one_role_profile_skips_both_roles_in_run_all_and_refuses_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _one_role_config(tmp_path)
    runs = tmp_path / "store"
    code = main([SUB.PHASE2_GAIN_GRID, "--config", str(config), "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip()
    assert code == CANON.CLI.EXIT.CONTRACT and len(err.splitlines()) == 1
    assert SUB.PHASE2_GAIN_GRID in err and f"add a {BASE} model" in err

    assert main([SUB.RUN_ALL, "--config", str(config), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"sealed {SUB.PHASE1_CALIBRATE} [{INSTRUCT}]: ")
    assert (
        out[1] == f"skipped {SUB.PHASE1_CALIBRATE} [{BASE}]: the profile declares no {BASE} model"
    )
    assert out[2] == (
        f"skipped {SUB.PHASE2_GAIN_GRID}: it consumes runs of model role {BASE}, and the "
        f"profile declares only {INSTRUCT}"
    )
    # The pipeline phase runs on what this profile has: the one producer run.
    assert out[3].startswith(f"sealed {SUB.PHASE2_SELECT_GSTAR}: ")
    release = Path(out[3].split(": ", 1)[1])
    deps = read_json(release / CANON.OUTPUT.RUN_RECORD)["dependencies"]
    assert [d["run_id"] for d in deps] == [Path(out[0].split(": ", 1)[1]).name]


def _sealed_lines(out: str) -> dict[str, str]:
    """`sealed LABEL: DIR` / `reused LABEL: DIR` lines as {label: run id}."""
    found = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("sealed", "reused"):
            label, _, run_dir = rest.partition(": ")
            found[label] = Path(run_dir).name
    return found


@pytest.mark.usefixtures("throwaway_project")
def test_run_all_from_a_run_rebuilds_what_is_downstream_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "store"
    stamped = replace(
        invocation("PRODUCER", INSTRUCT, runs),
        options=Options(
            config=CONFIG,
            runs_dir=runs,
            model_role=INSTRUCT,
            run_id_mode=CANON.ENUM.RUN_ID_MODE.TIMESTAMP,
        ),
    )
    chosen = SealedRun.open(execute(stamped))
    planned = planned_run_id(invocation("PRODUCER", INSTRUCT, runs))
    assert chosen.run_id != planned

    argv = [SUB.RUN_ALL, "--config", str(CONFIG), "--runs-dir", str(runs)]
    assert main([*argv, "--from", chosen.run_id, "--dry-run"]) == CANON.CLI.EXIT.OK
    dry = capsys.readouterr().out
    assert sorted(p.name for p in runs.iterdir()) == [chosen.run_id]
    assert main([*argv, "--from", chosen.run_id]) == CANON.CLI.EXIT.OK
    out = capsys.readouterr().out
    sealed = _sealed_lines(out)
    stands_in = f"skipped {SUB.PHASE1_CALIBRATE} [{INSTRUCT}]: --from {chosen.run_id} stands in"
    assert stands_in in out and stands_in in dry
    base = sealed[f"{SUB.PHASE1_CALIBRATE} [{BASE}]"]
    pair = SealedRun.open(runs / sealed[SUB.PHASE2_GAIN_GRID])
    release = SealedRun.open(runs / sealed[SUB.PHASE2_SELECT_GSTAR])
    # The planned INSTRUCT producer run was never made; both consumers read the chosen one.
    assert not (runs / planned).exists()
    assert [d["run_id"] for d in pair.record["dependencies"]] == [chosen.run_id, base]
    assert [d["run_id"] for d in release.record["dependencies"]] == [
        chosen.run_id,
        base,
        pair.run_id,
    ]
    # The dry run printed the ids the real run sealed.
    for label, run_id in sealed.items():
        assert f"plan {label}: {run_id} (new)" in dry
    # Rerun: everything is reused.
    assert main([*argv, "--from", chosen.run_id]) == CANON.CLI.EXIT.OK
    again = capsys.readouterr().out
    assert _sealed_lines(again) == sealed and "sealed " not in again


@pytest.mark.usefixtures("throwaway_project")
def test_run_all_model_role_leaves_out_what_needs_the_other_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "store"
    argv = [SUB.RUN_ALL, "--config", str(CONFIG), "--runs-dir", str(runs)]
    assert main([*argv, "--model-role", BASE]) == CANON.CLI.EXIT.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"skipped {SUB.PHASE1_CALIBRATE} [{INSTRUCT}]: --model-role {BASE}"
    assert out[1].startswith(f"sealed {SUB.PHASE1_CALIBRATE} [{BASE}]: ")
    instruct = f"{SUB.PHASE1_CALIBRATE} [{INSTRUCT}], which this plan leaves out"
    assert out[2] == f"skipped {SUB.PHASE2_GAIN_GRID}: it consumes {instruct}"
    assert out[3] == f"skipped {SUB.PHASE2_SELECT_GSTAR}: it consumes {instruct}"
    [made] = list(runs.iterdir())
    assert read_json(made / CANON.OUTPUT.RUN_RECORD)["model_role"] == BASE


@pytest.mark.usefixtures("throwaway_project")
def test_run_all_flags_it_cannot_honour_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "store"
    one_role = _one_role_config(tmp_path)
    base_run = SealedRun.open(execute(invocation("PRODUCER", BASE, runs)))
    cases = [
        (["--config", str(one_role), "--model-role", BASE], CANON.CLI.EXIT.CONTRACT, BASE),
        (
            ["--config", str(CONFIG), "--from", "RUN_P1CAL_ffffffffffff"],
            CANON.CLI.EXIT.DEPENDENCY,
            "not found",
        ),
        (["--config", str(CONFIG), "--from", "../x"], CANON.CLI.EXIT.DEPENDENCY, "../x"),
        (
            ["--config", str(CONFIG), "--from", base_run.run_id, "--model-role", INSTRUCT],
            CANON.CLI.EXIT.DEPENDENCY,
            f"model role {BASE}",
        ),
        (
            ["--config", str(one_role), "--from", base_run.run_id],
            CANON.CLI.EXIT.DEPENDENCY,
            f"the profile declares no {BASE} model",
        ),
    ]
    for flags, code, fragment in cases:
        got = main([SUB.RUN_ALL, "--runs-dir", str(runs), "--dry-run", *flags])
        err = capsys.readouterr().err.strip()
        assert got == code, (flags, err)
        assert len(err.splitlines()) == 1 and fragment in err, (flags, err)
    assert sorted(p.name for p in runs.iterdir()) == [base_run.run_id]
