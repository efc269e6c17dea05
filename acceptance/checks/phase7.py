"""Phase 7 acceptance (spec/15_REPLICATION.md, spec/08_TEST_PLAN.md): both roles' runs are
recorded and re-hashed, an altered input of either role is refused, the per-role values
are the sealed Phase 5 values at gstar, the gap is recomputed from the rasters by plain
sums, and a one-role profile is refused naming the missing role."""

from __future__ import annotations

import shutil

import numpy as np

from acceptance.checks import CheckContext, check
from acceptance.checks.phase5 import b_direct, table
from acceptance.harness import cli
from canon import CANON
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_npz
from critspec.validate import contracts

ROLES = (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE)
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT


def _upstream(ctx: CheckContext) -> list[tuple[str, str, list[str]]]:
    """(phase key, role, contracts) of every run Phase 7 consumes."""
    return [(dep.phase, role, list(dep.artifacts)) for dep in ctx.phase.consumes for role in ROLES]


@check("both_roles_recorded")
def both_roles_recorded(ctx: CheckContext) -> None:
    deps = {d["run_id"]: d for d in ctx.record()["dependencies"]}
    for key, role, cids in _upstream(ctx):
        up = ctx.a.run_dir(key, role)
        assert up.name in deps, f"{ctx.run_a}: {key} [{role}] run {up.name} not in dependencies"
        listed = {a["contract"]: a["sha256"] for a in deps[up.name]["artifacts"]}
        for cid in cids:
            want = sha256_file(contracts.path_in(up, cid))
            assert listed.get(cid) == want, f"{ctx.run_a}: {cid} of {up.name} recorded wrongly"


@check("both_roles_tamper_detected")
def both_roles_tamper_detected(ctx: CheckContext) -> None:
    """Copy every run Phase 7 needs, alter BASE's Phase 5 summary: exit 3 naming it."""
    runs = ctx.scratch / "store"
    runs.mkdir()
    for phase in ctx.spec.phases.phases:
        if phase.key == ctx.phase.key or phase.consumes_pipeline:
            continue
        for role in phase.roles:
            src = ctx.a.run_dir(phase.key, role)
            shutil.copytree(src, runs / src.name)
    target = contracts.path_in(
        runs / ctx.a.run_dir(ctx.phase.consumes[0].phase, ROLES[1]).name,
        ctx.phase.consumes[0].artifacts[0],
    )
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    proc = cli(ctx.command(), "--runs-dir", str(runs))
    assert proc.returncode == CANON.CLI.EXIT.DEPENDENCY, proc.stderr
    assert target.name in proc.stderr and target.parent.parent.name in proc.stderr, proc.stderr
    prefix = f"{CANON.PATH.RUN_DIR_PREFIX}{ctx.phase.stage_tag}_"
    assert not [p for p in runs.iterdir() if p.name.startswith(prefix)], "sealed despite tamper"


@check("replication_matches_phase5")
def replication_matches_phase5(ctx: CheckContext) -> None:
    """by_role equals each role's sealed summary at gstar; the gap at gap_g equals plain
    sums over both roles' rasters and is the largest over the grid."""
    by_role = table(ctx.run_a, "replication_by_role")
    rep = table(ctx.run_a, "replication")
    p5 = {role: ctx.a.run_dir("PHASE5_ANALYZE", role) for role in ROLES}
    p3 = {role: ctx.a.run_dir("PHASE3_EXTRACT_RASTERS", role) for role in ROLES}
    stats = [c for c in by_role.columns if c.startswith((B_TOT, "delta_", "chi"))]
    for row in by_role.itertuples(index=False):
        s = table(p5[row.model_role], "summary")
        star = s[(s["spike_def_id"] == row.spike_def_id) & (s["target_rate"] == row.target_rate)]
        star = star[star["is_gstar"]].iloc[0]
        assert row.gstar == star["g"]
        for c in stats:
            got, want = getattr(row, c), star[c]
            assert got == want or (np.isnan(got) and np.isnan(want)), (row.model_role, c)
    A = {r: read_npz(contracts.path_in(p3[r], "rasters"))["A"] for r in ROLES}
    conds = {r: table(p3[r], "raster_conditions") for r in ROLES}
    for row in rep.itertuples(index=False):
        gaps = {}
        for g in sorted(set(conds[ROLES[0]]["g"])):
            b = []
            for r in ROLES:
                c = conds[r]
                cid = c[
                    (c["spike_def_id"] == row.spike_def_id)
                    & (c["target_rate"] == row.target_rate)
                    & (c["g"] == g)
                ]["cond_id"]
                b.append(sum(b_direct(A[r][int(cid.iloc[0])] > 0)))
            gaps[g] = b[0] - b[1]
        assert abs(gaps[row.gap_g] - row.b_tot_gap) <= 1e-12, (row.spike_def_id, row.gap_g)
        assert abs(row.b_tot_gap) >= max(abs(v) for v in gaps.values()) - 1e-12
        assert row.b_tot_gap_ci_low <= row.b_tot_gap_ci_high


@check("one_role_profile_refused")
def one_role_profile_refused(ctx: CheckContext) -> None:
    """SmolLM2 declares one role: phase7 exits 2 naming BASE; run-all's plan skips it."""
    config = CANON.PATH.CONFIG_SMOLLM2_PIPELINE
    runs = ctx.scratch / "one_role"
    proc = cli(ctx.command(), "--config", config, "--runs-dir", str(runs))
    assert proc.returncode == CANON.CLI.EXIT.CONTRACT, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and CANON.ENUM.MODEL_ROLE.BASE in lines[0], proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
    plan = cli(CANON.CLI.CMD.RUN_ALL_SMOLLM2, "--runs-dir", str(runs), "--dry-run")
    assert plan.returncode == CANON.CLI.EXIT.OK, plan.stderr
    skipped = [ln for ln in plan.stdout.splitlines() if ln.startswith(f"skipped {ctx.phase.id}")]
    assert skipped and CANON.ENUM.MODEL_ROLE.BASE in skipped[0], plan.stdout
