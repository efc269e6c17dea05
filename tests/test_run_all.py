"""`critspec run-all`: every phase for every role, then reuse of identical runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from canon import CANON
from critspec.cli import main
from critspec.config.canonical import canonical_bytes
from critspec.orchestrate import Options, settle
from critspec.paths import project_root
from critspec.spec.load import project_spec
from critspec.store.run_store import content_run_id

CONFIG = str(project_root() / CANON.PATH.CONFIG_PIPELINE)
GRID = CANON.CONST.GAIN_GRID_DEFAULT
BASELINE_AT = GRID.index(CANON.CONST.GAIN_BASELINE)
# A Phase 6 summary line: role, gstar, then five "delta [low, high]" cells of 3 words each.
PHASE6_WORDS = 2 + 5 * 3


def reduced_config(tmp_path: Path) -> str:
    """The shipped pipeline on one spike definition, three gains and few resamples (the
    reuse logic is the same)."""
    raw = yaml.safe_load(Path(CONFIG).read_text())
    raw["calibration"]["spike_def_ids"] = raw["calibration"]["spike_def_ids"][:1]
    raw["models_file"] = str(project_root() / CANON.PATH.CONFIG_MODELS)
    raw["datasets_file"] = str(project_root() / CANON.PATH.CONFIG_DATASETS)
    raw["gain_grid"]["gains"] = list(GRID[BASELINE_AT - 1 : BASELINE_AT + 2])
    raw["analysis"]["bootstrap_reps"] = CANON.CONST.CONFIG_LIMIT.BOOTSTRAP_REPS_MIN
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def plan_lines(out: str) -> dict[str, tuple[str, str]]:
    """`plan LABEL: RUN_ID (reused|new)` lines of a dry run as {label: (run id, state)}."""
    found = {}
    for line in out.splitlines():
        if line.startswith("plan "):
            label, _, rest = line.removeprefix("plan ").partition(": ")
            run_id, state = rest.split(" ")
            found[label] = (run_id, state.strip("()"))
    return found


def role_of(run_dir: Path) -> str | None:
    return json.loads((run_dir / CANON.OUTPUT.RUN_RECORD).read_text())["model_role"]


def test_run_all_then_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    config = reduced_config(tmp_path)
    argv = [CANON.CLI.SUBCOMMAND.RUN_ALL, "--config", config, "--runs-dir", str(store)]
    phases = project_spec().phases.phases
    n_runs = sum(len(p.roles) for p in phases)
    n_per_role = sum(1 for p in phases if p.per_model_role)
    # Role-free phases that read the other role too (Phase 7: both roles; Phase 8: the
    # whole pipeline): --model-role leaves them out with the other role's runs.
    both = CANON.ENUM.CONSUMED_ROLES.BOTH
    reads_all = [
        p
        for p in phases
        if not p.per_model_role
        and (p.consumes_pipeline or any(d.roles == both for d in p.consumes))
    ]
    n_both = len(reads_all)
    instruct, base = CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE

    # --dry-run: every phase and role with its id, all new; nothing computed or written.
    assert main([*argv, "--dry-run"]) == CANON.CLI.EXIT.OK
    planned = plan_lines(capsys.readouterr().out)
    assert len(planned) == n_runs and {s for _, s in planned.values()} == {"new"}
    assert not store.exists()

    # --model-role: that role's runs and the role-free one, nothing of the other role.
    assert main([*argv, "--model-role", instruct]) == CANON.CLI.EXIT.OK
    only = capsys.readouterr().out
    assert only.count(f"[{base}]: --model-role {instruct}") == n_per_role
    made = list(store.iterdir())
    assert len(made) == n_runs - n_per_role - n_both
    assert {role_of(d) for d in made} == {None, instruct}

    assert main(argv) == CANON.CLI.EXIT.OK
    first = capsys.readouterr().out
    sealed = sorted(p.name for p in store.iterdir())
    assert len(sealed) == n_runs and all(n.startswith(CANON.PATH.RUN_DIR_PREFIX) for n in sealed)
    assert first.count("sealed ") == n_per_role + n_both
    assert first.count("reused ") == n_runs - n_per_role - n_both
    # The dry run named exactly the runs that were then sealed.
    assert sorted(run_id for run_id, _ in planned.values()) == sealed
    for role in (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE):
        # the reduced config's one spike definition, and not the other
        sd, other = CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS
        assert any(line.split()[:2] == [role, sd] for line in first.splitlines())
        assert not any(line.split()[:2] == [role, other] for line in first.splitlines())

    # The summary's numbers are the Phase 5 tables' (an independent read of the files).
    lines = [line.split() for line in first.splitlines()]
    analysis = {p.stage_tag for p in project_spec().phases.phases if "summary" in p.produces}
    for run_dir in (p for p in store.iterdir() if p.name.split("_")[1] in analysis):
        role = json.loads((run_dir / CANON.OUTPUT.RUN_RECORD).read_text())["model_role"]
        summary = pd.read_parquet(run_dir / CANON.OUTPUT.SUBDIR.TABLES / CANON.OUTPUT.TABLE.SUMMARY)
        for row in summary[summary["is_gstar"]].itertuples():
            base = summary[
                (summary.spike_def_id == row.spike_def_id)
                & (summary.target_rate == row.target_rate)
                & summary.is_baseline
            ].iloc[0]
            [line] = [w for w in lines if w[:3] == [role, row.spike_def_id, f"{row.target_rate:g}"]]
            assert line[3] == f"{row.g:g}"
            assert line[4] == f"{base[CANON.ENUM.SELECTION_INPUT.B_TOT]:.3f}"
            assert line[7] == f"{getattr(row, CANON.ENUM.SELECTION_INPUT.B_TOT):.3f}"

    # Phase 6: the paired gstar - baseline differences are the generalization table's.
    gen_tag = {p.stage_tag for p in project_spec().phases.phases if "generalization" in p.produces}
    phase6_lines = [w for w in lines if len(w) == PHASE6_WORDS]
    for run_dir in (p for p in store.iterdir() if p.name.split("_")[1] in gen_tag):
        role = json.loads((run_dir / CANON.OUTPUT.RUN_RECORD).read_text())["model_role"]
        gen = pd.read_parquet(
            run_dir / CANON.OUTPUT.SUBDIR.TABLES / CANON.OUTPUT.TABLE.GENERALIZATION
        )
        for g in sorted(set(gen.loc[gen["is_gstar"], "g"])):
            row = gen[gen["g"] == g].iloc[0]
            [line] = [w for w in phase6_lines if w[:2] == [role, f"{g:g}"]]
            assert line[2] == f"{row['nll_mean_vs_baseline']:+.4f}"

    # The last line is the release report's path (spec/16_RELEASE.md), and the release verifies.
    last = first.strip().splitlines()[-1]
    report = Path(last.removeprefix("report: "))
    assert last.startswith("report: ") and report.is_file(), last
    verify = [CANON.CLI.SUBCOMMAND.VERIFY_RELEASE, str(report.parent.parent)]
    assert main(verify) == CANON.CLI.EXIT.OK
    capsys.readouterr()

    assert main(argv) == CANON.CLI.EXIT.OK
    second = capsys.readouterr().out
    assert second.count("reused ") == n_runs and "sealed " not in second
    assert sorted(p.name for p in store.iterdir()) == sealed
    assert main([*argv, "--dry-run"]) == CANON.CLI.EXIT.OK
    assert plan_lines(capsys.readouterr().out) == {
        k: (i, "reused") for k, (i, _) in planned.items()
    }

    # --from: a new gstar run (timestamp id) stands in for the planned one; only what is
    # downstream of it is new, with ids derived from it (checked by an independent hash).
    gstar = project_spec().phases.by_key("PHASE2_SELECT_GSTAR")
    timestamp = CANON.ENUM.RUN_ID_MODE.TIMESTAMP
    one = [gstar.id, "--config", config, "--runs-dir", str(store), "--model-role", instruct]
    assert main([*one, "--run-id-mode", timestamp]) == CANON.CLI.EXIT.OK
    chosen = Path(capsys.readouterr().out.split()[-1]).name
    assert main([*argv, "--from", chosen, "--dry-run"]) == CANON.CLI.EXIT.OK
    plan = plan_lines(capsys.readouterr().out)
    rasters = project_spec().phases.by_key("PHASE3_EXTRACT_RASTERS")
    # Per-role phases that read gstar directly or through another such phase (spec order
    # is a topological order of the run graph).
    below = {gstar.key}
    for p in phases:
        if p.per_model_role and any(c.phase in below for c in p.consumes):
            below.add(p.key)
    downstream = [p for p in phases if p.key in below - {gstar.key}]
    assert {label for label, (_, s) in plan.items() if s == "new"} == {
        f"{p.id} [{instruct}]" for p in downstream
    } | {p.id for p in reads_all}
    options = Options(config=Path(config), runs_dir=store, model_role=instruct)
    inv = settle(options, rasters.key)
    up = [
        planned[f"{p.id} [{instruct}]"][0]
        for p in phases
        if p.key in ("PHASE1_CALIBRATE", "PHASE2_GAIN_GRID")
    ]
    want = content_run_id(rasters.stage_tag, canonical_bytes(inv.config_doc()), [*up, chosen])
    assert plan[f"{rasters.id} [{instruct}]"] == (want, "new")
    assert sorted(p.name for p in store.iterdir()) == sorted([*sealed, chosen])
