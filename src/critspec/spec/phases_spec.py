"""Pydantic models of spec/phases.yaml and the run graph they declare
(spec/00_OVERVIEW.md, spec/07_RUNS_RECORDS_LOGGING.md "Run graph", spec/08_TEST_PLAN.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

ALL_ROLES = "ALL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Consumes(_Strict):
    """One upstream phase a phase reads. `roles` is a CANON.ENUM.CONSUMED_ROLES value
    (checked against canon.yaml when the spec loads); absent, the consuming run reads the
    upstream run of its own model role (or the role-free run of a role-free phase)."""

    phase: str
    artifacts: tuple[str, ...]
    roles: str | None = None


class PhaseSpec(_Strict):
    key: str
    id: str
    stage_tag: str
    log: str
    runner: str
    per_model_role: bool
    commands: dict[str, str]
    config_sections: tuple[str, ...]
    consumes: tuple[Consumes, ...]
    produces: tuple[str, ...]
    checks: tuple[str, ...]
    once_checks: tuple[str, ...]
    options: tuple[str, ...] = ()
    # Every sealed run of this pipeline: the closure of the run graph for the config,
    # without this phase, the phases downstream of it and other pipeline phases.
    consumes_pipeline: bool = False

    def command(self, model_role: str | None) -> str:
        return self.commands[model_role if self.per_model_role else ALL_ROLES]

    @property
    def roles(self) -> tuple[str | None, ...]:
        return tuple(self.commands) if self.per_model_role else (None,)

    def dependency(self, phase_key: str) -> Consumes:
        """This phase's `consumes` entry for the upstream phase `phase_key`."""
        for dep in self.consumes:
            if dep.phase == phase_key:
                return dep
        raise KeyError(f"{self.key} does not consume phase {phase_key} (spec/phases.yaml)")

    def source_of(self, contract_id: str) -> str:
        """The key of the upstream phase this phase consumes `contract_id` from."""
        for dep in self.consumes:
            if contract_id in dep.artifacts:
                return dep.phase
        raise KeyError(f"{self.key} does not consume {contract_id!r} (spec/phases.yaml)")


class PhasesSpec(_Strict):
    phases: tuple[PhaseSpec, ...]
    # Runs sealed by a command outside the run graph (analyze-rasters): never planned,
    # never run by run-all, never consumed; looked up with `standalone_by_key` only.
    standalone: tuple[PhaseSpec, ...] = ()

    @model_validator(mode="after")
    def _a_run_graph(self) -> PhasesSpec:
        keys = [phase.key for phase in self.phases]
        for run in self.standalone:
            if run.consumes or run.consumes_pipeline:
                raise ValueError(f"{run.key}: a standalone run consumes no run")
        every = keys + [run.key for run in self.standalone]
        if len(set(every)) != len(every):
            raise ValueError(f"phase keys repeat: {sorted(k for k in every if every.count(k) > 1)}")
        for phase in self.phases:
            for dep in phase.consumes:
                if dep.phase not in keys:
                    raise ValueError(f"{phase.key}: consumes {dep.phase}, which is not a phase")
                upstream = self.by_key(dep.phase)
                if upstream.per_model_role and not phase.per_model_role and dep.roles is None:
                    raise ValueError(
                        f"{phase.key}: has no model role, so its consumes of per-role phase "
                        f"{dep.phase} must say which roles (`roles`)"
                    )
        cycle = _find_cycle(self.phases)
        if cycle:
            chain = " -> ".join(cycle)
            raise ValueError(f"the run graph has a cycle (each phase consumes the next): {chain}")
        return self

    def by_key(self, key: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.key == key:
                return phase
        raise KeyError(key)

    def standalone_by_key(self, key: str) -> PhaseSpec:
        for run in self.standalone:
            if run.key == key:
                return run
        raise KeyError(key)

    def by_id(self, phase_id: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        raise KeyError(phase_id)

    def graph_order(self) -> tuple[PhaseSpec, ...]:
        """The phases in topological order of the run graph (upstream first; among phases
        ready together, file order), pipeline phases after every phase they consume."""
        done: list[str] = []
        pending = list(self.phases)
        while pending:
            ready = next(p for p in pending if set(self._needs(p)) <= set(done))
            done.append(ready.key)
            pending.remove(ready)
        return tuple(self.by_key(k) for k in done)

    def _needs(self, phase: PhaseSpec) -> tuple[str, ...]:
        explicit = tuple(dep.phase for dep in phase.consumes)
        if not phase.consumes_pipeline:
            return explicit
        return explicit + tuple(p.key for p in self.pipeline_of(phase.key))

    def downstream_of(self, key: str) -> set[str]:
        """The keys of every phase that consumes `key`, directly or through others."""
        out: set[str] = set()
        frontier = {key}
        while frontier:
            frontier = {
                p.key
                for p in self.phases
                if p.key not in out and any(d.phase in frontier for d in p.consumes)
            }
            out |= frontier
        return out

    def pipeline_of(self, key: str) -> tuple[PhaseSpec, ...]:
        """The phases whose runs a `consumes_pipeline` phase reads, in file order: all but
        itself, those downstream of it and other pipeline phases."""
        below = self.downstream_of(key) | {key}
        return tuple(p for p in self.phases if p.key not in below and not p.consumes_pipeline)


def _find_cycle(phases: tuple[PhaseSpec, ...]) -> list[str]:
    """One cycle of `consumes` edges as [A, B, ..., A] (consumer first), or []."""
    edges = {p.key: [d.phase for d in p.consumes] for p in phases}
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(key: str) -> list[str]:
        state[key] = 1
        path.append(key)
        for up in edges[key]:
            if state.get(up) == 1:
                return [*path[path.index(up) :], up]
            if up not in state:
                found = visit(up)
                if found:
                    return found
        path.pop()
        state[key] = 2
        return []

    for phase in phases:
        if phase.key not in state:
            found = visit(phase.key)
            if found:
                return found
    return []
