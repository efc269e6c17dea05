"""From a CLI invocation to a sealed run: config scoping, run ids, upstream runs
(spec/07_RUNS_RECORDS_LOGGING.md).

Runs are content-addressed, so the run a phase consumes is found by computing
the id it must have under the same config and options; `--from RUN_ID` names
it explicitly instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from canon import CANON
from critspec.config.canonical import canonical_bytes, config_sha256
from critspec.config.resolve import ResolvedConfig, load_config, scoped_document
from critspec.errors import ConfigError, ContractError, DependencyError
from critspec.runtime import configure_determinism
from critspec.spec.load import Spec, project_spec
from critspec.spec.phases_spec import Consumes, PhaseSpec
from critspec.store.hashing import sha256_file
from critspec.store.run_store import RunBuilder, SealedRun, make_run_id, open_run
from critspec.validate.run import check_run_name


@dataclass(frozen=True)
class Options:
    """What the shared CLI flags say, with config defaults applied by `settle`."""

    config: Path
    runs_dir: Path
    model_role: str | None = None
    device: str | None = None
    dtype: str | None = None
    run_id_mode: str = CANON.ENUM.RUN_ID_MODE.CONTENT_HASH
    allow_resume: bool = False
    dry_run: bool = False
    from_run: str | None = None
    metrics: Path | None = None
    overrides: tuple[str, ...] = ()
    executor: str | None = None
    ray_address: str | None = None


@dataclass(frozen=True)
class Invocation:
    """One phase for one model role, with device and dtype resolved."""

    spec: Spec
    phase: PhaseSpec
    config: ResolvedConfig
    options: Options
    device: str
    dtype: str
    external: dict[str, str] = field(default_factory=dict)

    def config_doc(self) -> dict[str, Any]:
        invocation: dict[str, Any] = {
            "phase_id": self.phase.id,
            "model_role": self.options.model_role if self.phase.per_model_role else None,
            "device": self.device,
            "dtype": self.dtype,
        }
        if self.external:
            invocation["external_inputs"] = self.external
        return scoped_document(self.config, self.phase.config_sections, invocation)

    def command(self) -> str:
        return self.phase.command(self.options.model_role)


def settle(options: Options, phase_key: str, check_roles: bool = True) -> Invocation:
    """Load the config and resolve device/dtype (auto -> what this machine has). Exit 2 when
    the phase consumes runs of a model role the profile lacks (unless `check_roles` is
    False: run-all skips such a phase with a line instead)."""
    spec = project_spec()
    phase = spec.phases.by_key(phase_key)
    # before torch is imported: a refusal is quick
    config = load_config(options.config, options.overrides)
    from critspec.models.device import dtype_name, resolve_device, resolve_dtype
    from critspec.passes.executors import check_address

    if phase.per_model_role and options.model_role is None:
        raise ConfigError(f"{phase.id} needs --model-role ({', '.join(phase.commands)})")
    if phase.per_model_role:
        config.require_roles((str(options.model_role),), f"{phase.id} --model-role")
    runtime = config.pipeline.runtime
    check_address(options.executor or runtime.executor, options.ray_address)
    device = resolve_device(options.device or runtime.device)
    dtype = resolve_dtype(options.dtype or runtime.dtype, device)
    external = {}
    if options.metrics is not None:
        if not options.metrics.is_file():
            raise DependencyError(f"{options.metrics}: --metrics file not found")
        external["metrics_sha256"] = sha256_file(options.metrics)
    inv = Invocation(
        spec=spec,
        phase=phase,
        config=config,
        options=options,
        device=device.type,
        dtype=dtype_name(dtype),
        external=external,
    )
    if check_roles and missing_roles(inv):  # it consumes runs of a role the profile lacks
        config.require_roles(required_roles(inv), phase.id)
    return inv


Node = tuple[str, str | None]
"""One planned run of the run graph: (phase key, model role or None for a role-free phase)."""

BOTH_ROLES = CANON.ENUM.CONSUMED_ROLES.BOTH


def node_of(inv: Invocation) -> Node:
    return (inv.phase.key, inv.options.model_role if inv.phase.per_model_role else None)


def at_node(inv: Invocation, node: Node) -> Invocation:
    """The invocation of another run of the graph under the same config and options."""
    key, role = node
    options = replace(inv.options, model_role=role, from_run=None, metrics=None)
    return replace(inv, phase=inv.spec.phases.by_key(key), options=options, external={})


def consumed_roles(inv: Invocation, dep: Consumes) -> tuple[str | None, ...]:
    """The model roles of `dep.phase` whose runs this invocation reads (spec/phases.yaml
    `roles`): its own role, every role of a per-role upstream phase, or None (role-free)."""
    upstream = inv.spec.phases.by_key(dep.phase)
    if not upstream.per_model_role:
        return (None,)
    if dep.roles == BOTH_ROLES:
        return upstream.roles
    return (inv.options.model_role,)


def required_roles(inv: Invocation) -> tuple[str, ...]:
    """Every model role the runs this invocation needs belong to (its explicit upstream
    closure), in spec order; a pipeline phase needs only the roles the profile declares."""
    found: list[str] = []
    seen: set[Node] = set()
    stack = [inv]
    while stack:
        cur = stack.pop()
        if node_of(cur) in seen:
            continue
        seen.add(node_of(cur))
        role = node_of(cur)[1]
        if role is not None and role not in found:
            found.append(role)
        for dep in cur.phase.consumes:
            stack.extend(at_node(cur, (dep.phase, r)) for r in consumed_roles(cur, dep))
    order = [v for k, v in vars(CANON.ENUM.MODEL_ROLE).items() if not k.startswith("_")]
    return tuple(sorted(found, key=order.index))


def missing_roles(inv: Invocation) -> tuple[str, ...]:
    """The roles this invocation needs that the profile does not declare."""
    return tuple(r for r in required_roles(inv) if r not in inv.config.model_roles)


def pipeline_nodes(inv: Invocation) -> list[Node]:
    """The runs a `consumes_pipeline` phase reads, in graph order: every phase of
    PhasesSpec.pipeline_of for every role the profile declares, leaving out a run that
    needs a role the profile lacks (spec/phases.yaml)."""
    if not inv.phase.consumes_pipeline:
        return []
    phases = inv.spec.phases
    keys = {p.key for p in phases.pipeline_of(inv.phase.key)}
    out: list[Node] = []
    for phase in phases.graph_order():
        if phase.key not in keys:
            continue
        for role in phase.roles:
            if not missing_roles(at_node(inv, (phase.key, role))):
                out.append((phase.key, role))
    return out


def upstream_nodes(inv: Invocation) -> list[Node]:
    """The runs this invocation consumes, in the order their ids enter its run id: each
    `consumes` entry in spec order, its roles in spec order, then the pipeline runs."""
    explicit = [(dep.phase, r) for dep in inv.phase.consumes for r in consumed_roles(inv, dep)]
    return explicit + pipeline_nodes(inv)


def run_id_for(inv: Invocation, upstream_ids: list[str], mode: str | None = None) -> str:
    return make_run_id(
        inv.phase.stage_tag,
        canonical_bytes(inv.config_doc()),
        upstream_ids,
        mode or CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
    )


def planned_run_id(inv: Invocation, chosen: dict[Node, str] | None = None) -> str:
    """The content-hash id this invocation's run has: upstream ids are planned recursively,
    except those in `chosen` (a run id per node that stands in for the planned one)."""
    memo = dict(chosen or {})

    def plan(cur: Invocation) -> str:
        node = node_of(cur)
        if node not in memo:
            ids = [plan(at_node(cur, up)) for up in upstream_nodes(cur)]
            memo[node] = run_id_for(cur, ids)
        return memo[node]

    if node_of(inv) in memo:  # the invocation's own node is planned, never chosen
        del memo[node_of(inv)]
    return plan(inv)


def _from_run(inv: Invocation) -> SealedRun | None:
    """The run named by --from, opened and checked (None without --from)."""
    if inv.options.from_run is None:
        return None
    run = open_named_run(inv.options.runs_dir, inv.options.from_run, "--from")
    consumed = {inv.spec.phases.by_key(key).id for key, _ in upstream_nodes(inv)}
    if run.record["phase_id"] not in consumed:
        raise DependencyError(
            f"{run.run_dir}: is a {run.record['phase_id']} run; {inv.phase.id} consumes "
            f"{', '.join(sorted(consumed)) or 'no run'}"
        )
    return run


def hint_command(inv: Invocation) -> str:
    """The command that makes `inv`'s run: its CANON command string with this invocation's
    config, overrides and runs directory (each flag once)."""
    default = f"--config {CANON.PATH.CONFIG_PIPELINE}"
    command = inv.command().replace(default, f"--config {inv.options.config.as_posix()}")
    extra = "".join(f" --set {text}" for text in inv.options.overrides)
    return f"{command}{extra} --runs-dir {inv.options.runs_dir}"


def open_named_run(runs_dir: Path, run_id: str, flag: str) -> SealedRun:
    """A sealed run named on the command line, checked for a safe name (exit 3 if bad)."""
    try:
        check_run_name(run_id, flag)
    except ContractError as exc:
        raise DependencyError(str(exc)) from None
    return SealedRun.open(runs_dir / run_id)


@dataclass(frozen=True)
class Upstream:
    """The sealed runs one invocation consumes: its `consumes` entries by (phase, role) and
    the pipeline runs, each in the order their ids enter the run id."""

    explicit: tuple[tuple[Node, SealedRun], ...] = ()
    pipeline: tuple[tuple[Node, SealedRun], ...] = ()

    def ids(self) -> list[str]:
        return [run.run_id for _, run in (*self.explicit, *self.pipeline)]

    def of_phase(self, phase_key: str) -> dict[str | None, SealedRun]:
        return {role: run for (key, role), run in self.explicit if key == phase_key}


def _resolve(inv: Invocation, node: Node, explicit: SealedRun | None, chosen: dict) -> SealedRun:
    key, role = node
    up = at_node(inv, node)
    if node in chosen:
        return chosen[node]
    if explicit is not None and explicit.record["phase_id"] == up.phase.id:
        if role is not None and explicit.record["model_role"] != role:
            mine = explicit.record["model_role"]
            raise DependencyError(
                f"{explicit.run_dir}: is a run for model role {mine}, not "
                f"{role}; pass --from a {role} run or --model-role {mine}"
            )
        return explicit
    run_dir = inv.options.runs_dir / planned_run_id(up, {n: r.run_id for n, r in chosen.items()})
    if not run_dir.is_dir():
        raise DependencyError(
            f"no {up.phase.id} run for this config in {inv.options.runs_dir}: "
            f"run `{hint_command(up)}` first, or pass --from RUN_ID"
        )
    return SealedRun.open(run_dir)


def upstream_runs(inv: Invocation, chosen: dict[Node, SealedRun] | None = None) -> Upstream:
    """The sealed runs this invocation consumes; exit 3 when one is missing. --from RUN_ID
    replaces the planned run of the (phase, role) that run belongs to; `chosen` (run-all)
    gives the run of any node outright."""
    if inv.external:
        return Upstream()
    explicit = _from_run(inv)
    chosen = chosen or {}
    n_explicit = sum(len(consumed_roles(inv, dep)) for dep in inv.phase.consumes)
    resolved = tuple((n, _resolve(inv, n, explicit, chosen)) for n in upstream_nodes(inv))
    return Upstream(explicit=resolved[:n_explicit], pipeline=resolved[n_explicit:])


@dataclass
class PhaseContext:
    """What a runner gets: the invocation, its upstream runs and the open run.

    The runner API of the run graph (spec/07_RUNS_RECORDS_LOGGING.md "Run graph"):
    `upstream_runs(phase_key)`, `consume(contract_id, role=None)` and `pipeline_runs()`.
    """

    inv: Invocation
    upstream: Upstream
    run: RunBuilder

    @property
    def config(self) -> ResolvedConfig:
        return self.inv.config

    @property
    def model_role(self) -> str | None:
        return self.inv.options.model_role

    def upstream_runs(self, phase_key: str) -> dict[str | None, SealedRun]:
        """The runs of upstream phase `phase_key` this run consumes, by model role (None
        for a role-free phase): one for its own role, or one per role with `roles: both`."""
        runs = self.upstream.of_phase(phase_key)
        if not runs:
            raise ContractError(
                f"{self.inv.phase.key} does not consume phase {phase_key} "
                "(spec/phases.yaml; a bug in the runner or the spec)"
            )
        return runs

    def pipeline_runs(self) -> list[SealedRun]:
        """Every sealed run of this pipeline, in graph order (`consumes_pipeline: true`)."""
        if not self.inv.phase.consumes_pipeline:
            raise ContractError(
                f"{self.inv.phase.key} does not declare consumes_pipeline in spec/phases.yaml "
                "(a bug in the runner or the spec)"
            )
        return [run for _, run in self.upstream.pipeline]

    def upstream_of(self, contract_id: str, role: str | None = None) -> SealedRun:
        """The upstream run this phase consumes `contract_id` from (spec/phases.yaml), of
        model role `role`; None means the consuming run's own role, or the only run."""
        phase = self.inv.phase
        if any(contract_id in dep.artifacts for dep in phase.consumes):
            runs = self.upstream_runs(phase.source_of(contract_id))
        elif phase.consumes_pipeline:
            runs = {
                run.record["model_role"]: run
                for run in self.pipeline_runs()
                if contract_id in self.inv.spec.phases.by_id(run.record["phase_id"]).produces
            }
        else:
            raise ContractError(
                f"{phase.key} does not consume {contract_id!r} (spec/phases.yaml; a bug in "
                "the runner or the spec)"
            )
        if role is None and self.model_role in runs and phase.per_model_role:
            return runs[self.model_role]
        if role is None and len(runs) == 1:
            return next(iter(runs.values()))
        if role not in runs:
            have = ", ".join(str(r) for r in runs) or "none"
            raise ContractError(
                f"{phase.key} reads {contract_id!r} of model role {role}, but consumes the "
                f"roles {have} (spec/phases.yaml; a bug in the runner or the spec)"
            )
        return runs[role]

    def consume(self, contract_id: str, role: str | None = None) -> Path:
        """An upstream artifact of model role `role` (None: own role, or the only run),
        re-hashed against its run's record (exit 3 on a change)."""
        return self.run.consume(self.upstream_of(contract_id, role), contract_id)


def describe(inv: Invocation) -> dict[str, Any]:
    """What --dry-run prints: the run it would create and what it would read."""
    doc = inv.config_doc()
    if inv.external:
        run_id = None
    elif inv.options.from_run is not None:  # the id execute() seals: upstream ids from --from
        run_id = run_id_for(inv, upstream_runs(inv).ids())
    else:
        run_id = planned_run_id(inv)
    return {
        "phase_id": inv.phase.id,
        "model_role": inv.options.model_role,
        "run_id": run_id,
        "config_sha256": config_sha256(doc),
        "consumes": [dep.phase for dep in inv.phase.consumes],
        "runs_dir": str(inv.options.runs_dir),
    }


def execute(inv: Invocation, chosen: dict[Node, SealedRun] | None = None) -> Path:
    """Run one phase into a new sealed run directory; returns it. `chosen` gives upstream
    runs by node outright (run-all passes the runs it just sealed or reused)."""
    upstream = upstream_runs(inv, chosen)
    configure_determinism(inv.config.pipeline.runtime.torch_threads)
    with open_run(
        phase=inv.phase,
        runs_dir=inv.options.runs_dir,
        config_doc=inv.config_doc(),
        model_role=inv.options.model_role if inv.phase.per_model_role else None,
        upstream_ids=upstream.ids(),
        run_id_mode=inv.options.run_id_mode,
        allow_resume=inv.options.allow_resume,
    ) as run:
        # Imported once the run is open: a run that exists is refused (exit 4) without
        # paying for the runner's imports (transformers for the model phases).
        runner = importlib.import_module(inv.phase.runner)
        runner.run(PhaseContext(inv=inv, upstream=upstream, run=run))
    return run.final_dir


def check_resume(inv: Invocation) -> None:
    """--allow-resume replaces an incomplete run at the planned id, rebuilt from scratch
    (spec/07_RUNS_RECORDS_LOGGING.md); with no such run there is nothing it could do, so the
    flag is refused rather than ignored."""
    from critspec.store.run_store import record_status

    if not inv.options.allow_resume:
        return
    if inv.options.run_id_mode != CANON.ENUM.RUN_ID_MODE.CONTENT_HASH:
        raise ConfigError(
            f"--allow-resume: a {inv.options.run_id_mode} run id is new every time, so there "
            "is no earlier run to replace; drop the flag"
        )
    run_dir = inv.options.runs_dir / planned_run_id(inv)
    status = record_status(run_dir) if run_dir.is_dir() else None
    if status is None or status == CANON.ENUM.STAGE_STATUS.COMPLETE:
        state = "is sealed and complete" if status else "does not exist"
        raise ConfigError(
            f"--allow-resume: run {run_dir} {state}, so there is no incomplete run to "
            "replace (a phase is rebuilt from scratch, never resumed part-way); drop the flag"
            + (" or use the sealed run" if status else "")
        )
