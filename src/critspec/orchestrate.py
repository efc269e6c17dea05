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
from critspec.spec.phases_spec import PhaseSpec
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

    def for_phase(self, key: str) -> Invocation:
        return replace(self, phase=self.spec.phases.by_key(key), external={})

    def command(self) -> str:
        return self.phase.command(self.options.model_role)


def settle(options: Options, phase_key: str) -> Invocation:
    """Load the config and resolve device/dtype (auto -> what this machine has)."""
    from critspec.models.device import dtype_name, resolve_device, resolve_dtype
    from critspec.passes.executors import check_address

    spec = project_spec()
    phase = spec.phases.by_key(phase_key)
    config = load_config(options.config)
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
    return Invocation(
        spec=spec,
        phase=phase,
        config=config,
        options=options,
        device=device.type,
        dtype=dtype_name(dtype),
        external=external,
    )


def planned_run_id(inv: Invocation) -> str:
    """The content-hash id this invocation's run has (upstream ids planned recursively)."""
    upstream = [planned_run_id(inv.for_phase(dep.phase)) for dep in inv.phase.consumes]
    return make_run_id(
        inv.phase.stage_tag,
        canonical_bytes(inv.config_doc()),
        upstream,
        CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
    )


def _from_run(inv: Invocation) -> SealedRun | None:
    """The run named by --from, opened and checked (None without --from)."""
    if inv.options.from_run is None:
        return None
    try:
        check_run_name(inv.options.from_run, "--from")
    except ContractError as exc:
        raise DependencyError(str(exc)) from None
    run = SealedRun.open(inv.options.runs_dir / inv.options.from_run)
    consumed = {inv.spec.phases.by_key(dep.phase).id for dep in inv.phase.consumes}
    if run.record["phase_id"] not in consumed:
        raise DependencyError(
            f"{run.run_dir}: is a {run.record['phase_id']} run; {inv.phase.id} consumes "
            f"{', '.join(sorted(consumed)) or 'no run'}"
        )
    return run


def upstream_runs(inv: Invocation) -> dict[str, SealedRun]:
    """The sealed runs this invocation consumes, by phase key; exit 3 when one is missing.
    --from RUN_ID replaces the planned run of the phase that run belongs to."""
    if inv.external:
        return {}
    explicit = _from_run(inv)
    found = {}
    for dep in inv.phase.consumes:
        if explicit is not None and explicit.record["phase_id"] == (
            inv.spec.phases.by_key(dep.phase).id
        ):
            run = explicit
        else:
            up = inv.for_phase(dep.phase)
            run_dir = inv.options.runs_dir / planned_run_id(up)
            if not run_dir.is_dir():
                config = inv.options.config
                extra = "" if config == Path(CANON.PATH.CONFIG_PIPELINE) else f" --config {config}"
                raise DependencyError(
                    f"no {up.phase.id} run for this config in {inv.options.runs_dir}: "
                    f"run `{up.command()}{extra} --runs-dir {inv.options.runs_dir}` first, "
                    "or pass --from RUN_ID"
                )
            run = SealedRun.open(run_dir)
        role = inv.options.model_role if inv.phase.per_model_role else None
        if role is not None and run.record["model_role"] not in (None, role):
            raise DependencyError(
                f"{run.run_dir}: is a run for model role {run.record['model_role']}, not "
                f"{role}; pass --from a {role} run or --model-role {run.record['model_role']}"
            )
        found[dep.phase] = run
    return found


@dataclass
class PhaseContext:
    """What a runner gets: the invocation, its upstream runs and the open run."""

    inv: Invocation
    upstream: dict[str, SealedRun]
    run: RunBuilder

    @property
    def config(self) -> ResolvedConfig:
        return self.inv.config

    @property
    def model_role(self) -> str | None:
        return self.inv.options.model_role

    def upstream_of(self, contract_id: str) -> SealedRun:
        """The upstream run this phase consumes `contract_id` from (spec/phases.yaml)."""
        return self.upstream[self.inv.phase.source_of(contract_id)]

    def consume(self, contract_id: str) -> Path:
        """An upstream artifact, re-hashed against its run's record (exit 3 on a change)."""
        return self.run.consume(self.upstream_of(contract_id), contract_id)


def describe(inv: Invocation) -> dict[str, Any]:
    """What --dry-run prints: the run it would create and what it would read."""
    doc = inv.config_doc()
    if inv.external:
        run_id = None
    elif inv.options.from_run is not None:  # the id execute() seals: upstream ids from --from
        upstream = upstream_runs(inv)
        ids = [upstream[dep.phase].run_id for dep in inv.phase.consumes]
        run_id = make_run_id(
            inv.phase.stage_tag, canonical_bytes(doc), ids, CANON.ENUM.RUN_ID_MODE.CONTENT_HASH
        )
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


def execute(inv: Invocation) -> Path:
    """Run one phase into a new sealed run directory; returns it."""
    upstream = upstream_runs(inv)
    configure_determinism(inv.config.pipeline.runtime.torch_threads)
    runner = importlib.import_module(inv.phase.runner)
    upstream_ids = [
        upstream[dep.phase].run_id for dep in inv.phase.consumes if dep.phase in upstream
    ]
    with open_run(
        phase=inv.phase,
        runs_dir=inv.options.runs_dir,
        config_doc=inv.config_doc(),
        model_role=inv.options.model_role if inv.phase.per_model_role else None,
        upstream_ids=upstream_ids,
        run_id_mode=inv.options.run_id_mode,
        allow_resume=inv.options.allow_resume,
    ) as run:
        runner.run(PhaseContext(inv=inv, upstream=upstream, run=run))
    return run.final_dir
