"""Checks every phase shares (spec/08_TEST_PLAN.md): files, contracts, hashes, determinism,
provenance, refusal to overwrite, tamper detection."""

from __future__ import annotations

import shutil

from acceptance.checks import CheckContext, check
from acceptance.harness import cli, tree_hashes
from canon import CANON
from critspec.store.hashing import sha256_file
from critspec.validate import contracts
from critspec.validate.run import validate_run


def _results(ctx: CheckContext) -> list[str]:
    return [
        f"{contracts.entry(cid)['subdir']}/{base}"
        for cid in ctx.phase.produces
        for base in contracts.entry(cid)["basenames"]
    ]


@check("files_exist")
def files_exist(ctx: CheckContext) -> None:
    required = [
        CANON.OUTPUT.RUN_RECORD,
        CANON.OUTPUT.CONFIG_RESOLVED,
        f"{CANON.OUTPUT.SUBDIR.LOGS}/{ctx.phase.log}",
        *_results(ctx),
    ]
    missing = [rel for rel in required if not (ctx.run_a / rel).is_file()]
    assert not missing, f"{ctx.run_a}: missing {missing}"


@check("artifacts_pass_contracts")
def artifacts_pass_contracts(ctx: CheckContext) -> None:
    for run_dir in (ctx.run_a, ctx.run_b):
        record = validate_run(run_dir)
        indexed = {item["relative_path"] for item in record["artifact_index"]}
        unindexed = [rel for rel in _results(ctx) if rel not in indexed]
        assert not unindexed, f"{run_dir}: results not in artifact_index: {unindexed}"


@check("index_hashes_match")
def index_hashes_match(ctx: CheckContext) -> None:
    record = ctx.record()
    on_disk = tree_hashes(ctx.run_a)
    for item in record["artifact_index"]:
        rel = item["relative_path"]
        assert on_disk.get(rel) == item["sha256"], f"{ctx.run_a}: {rel}: sha256 differs from index"
    unlisted = (
        set(on_disk)
        - {i["relative_path"] for i in record["artifact_index"]}
        - {
            CANON.OUTPUT.RUN_RECORD,
            CANON.OUTPUT.CONFIG_RESOLVED,
        }
    )
    assert not unlisted, f"{ctx.run_a}: files outside the artifact_index: {sorted(unlisted)}"


@check("results_deterministic")
def results_deterministic(ctx: CheckContext) -> None:
    """results/, tables/ and figs/ byte-identical across the two runs directories."""
    subs = {contracts.entry(cid)["subdir"] for cid in ctx.phase.produces}
    a = {s: tree_hashes(ctx.run_a / s) for s in sorted(subs)}
    b = {s: tree_hashes(ctx.run_b / s) for s in sorted(subs)}
    assert all(a.values()), f"{ctx.run_a}: an output folder is empty"
    assert a == b, (
        f"results differ between {ctx.run_a} and {ctx.run_b}: "
        f"{[(s, k) for s in subs for k in set(a[s]) | set(b[s]) if a[s].get(k) != b[s].get(k)]}"
    )
    assert ctx.run_a.name == ctx.run_b.name, "same config gave different content-hash run ids"
    assert ctx.record(ctx.run_a)["created_utc"] != ctx.record(ctx.run_b)["created_utc"]
    assert (ctx.run_a / CANON.OUTPUT.CONFIG_RESOLVED).read_bytes() == (
        ctx.run_b / CANON.OUTPUT.CONFIG_RESOLVED
    ).read_bytes()


@check("refuses_overwrite")
def refuses_overwrite(ctx: CheckContext) -> None:
    before = tree_hashes(ctx.run_a)
    proc = cli(ctx.command(), "--runs-dir", str(ctx.a.runs_dir))
    assert proc.returncode == CANON.CLI.EXIT.RUN_EXISTS, (
        f"rerun into {ctx.a.runs_dir} exited {proc.returncode}, expected "
        f"{CANON.CLI.EXIT.RUN_EXISTS}: {proc.stderr.strip()}"
    )
    assert len(proc.stderr.strip().splitlines()) == 1, f"expected one error line: {proc.stderr}"
    assert ctx.run_a.name in proc.stderr
    assert tree_hashes(ctx.run_a) == before, f"{ctx.run_a} changed after a refused rerun"


@check("dependencies_recorded")
def dependencies_recorded(ctx: CheckContext) -> None:
    deps = {d["run_id"]: d for d in ctx.record()["dependencies"]}
    for consumed in ctx.phase.consumes:
        up_dir = ctx.upstream_dir(consumed.phase)
        assert up_dir.name in deps, f"{ctx.run_a}: upstream run {up_dir.name} not in dependencies"
        listed = {a["contract"]: a for a in deps[up_dir.name]["artifacts"]}
        up_index = {i["contract"]: i for i in ctx.record(up_dir)["artifact_index"]}
        for cid in consumed.artifacts:
            assert cid in listed, f"{ctx.run_a}: dependency on {cid} of {up_dir.name} not recorded"
            want = sha256_file(up_dir / up_index[cid]["relative_path"])
            assert listed[cid]["sha256"] == want, f"{ctx.run_a}: {cid} sha256 recorded wrongly"


@check("tamper_detected")
def tamper_detected(ctx: CheckContext) -> None:
    """Alter the first consumed artifact in a copy of the runs; the phase must exit 3."""
    runs = ctx.scratch / "store"
    runs.mkdir()
    upstream_keys = {dep.phase for dep in ctx.phase.consumes}
    for key in [p.key for p in ctx.spec.phases.phases if p.key in _ancestors(ctx, upstream_keys)]:
        src = ctx.a.run_dir(key, ctx.role)
        shutil.copytree(src, runs / src.name)
    dep = ctx.phase.consumes[0]
    up = runs / ctx.a.run_dir(dep.phase, ctx.role).name
    index = {i["contract"]: i for i in ctx.record(up)["artifact_index"]}
    target = up / index[dep.artifacts[0]]["relative_path"]
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    proc = cli(ctx.command(), "--runs-dir", str(runs))
    assert proc.returncode == CANON.CLI.EXIT.DEPENDENCY, (
        f"after altering {target.name}, exit {proc.returncode} (expected "
        f"{CANON.CLI.EXIT.DEPENDENCY}): {proc.stderr.strip()}"
    )
    assert target.name in proc.stderr, f"error does not name the altered file: {proc.stderr}"
    sealed = [
        p
        for p in runs.iterdir()
        if p.name.startswith(f"{CANON.PATH.RUN_DIR_PREFIX}{ctx.phase.stage_tag}_")
    ]
    assert not sealed, f"a {ctx.phase.id} run was sealed despite the altered input: {sealed}"


def _ancestors(ctx: CheckContext, keys: set[str]) -> set[str]:
    out = set(keys)
    for key in keys:
        phase = ctx.spec.phases.by_key(key)
        out |= _ancestors(ctx, {dep.phase for dep in phase.consumes})
    return out
