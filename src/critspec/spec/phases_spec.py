"""Pydantic models of spec/phases.yaml (spec/00_OVERVIEW.md, spec/08_TEST_PLAN.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

ALL_ROLES = "ALL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Consumes(_Strict):
    phase: str
    artifacts: tuple[str, ...]


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

    def command(self, model_role: str | None) -> str:
        return self.commands[model_role if self.per_model_role else ALL_ROLES]

    @property
    def roles(self) -> tuple[str | None, ...]:
        return tuple(self.commands) if self.per_model_role else (None,)

    def source_of(self, contract_id: str) -> str:
        """The key of the upstream phase this phase consumes `contract_id` from."""
        for dep in self.consumes:
            if contract_id in dep.artifacts:
                return dep.phase
        raise KeyError(f"{self.key} does not consume {contract_id!r} (spec/phases.yaml)")


class PhasesSpec(_Strict):
    phases: tuple[PhaseSpec, ...]

    @model_validator(mode="after")
    def _consumes_earlier(self) -> PhasesSpec:
        seen: set[str] = set()
        for phase in self.phases:
            for dep in phase.consumes:
                if dep.phase not in seen:
                    raise ValueError(f"{phase.key}: consumes {dep.phase}, not an earlier phase")
            seen.add(phase.key)
        return self

    def by_key(self, key: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.key == key:
                return phase
        raise KeyError(key)

    def by_id(self, phase_id: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        raise KeyError(phase_id)
