"""Registry of acceptance checks: spec/phases.yaml names them, these modules define them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acceptance.harness import PipelineRuns
from critspec.spec.load import Spec
from critspec.spec.phases_spec import PhaseSpec
from critspec.store.writers import read_json


@dataclass(frozen=True)
class CheckContext:
    """One (phase, model role) of the pipeline as runs A and B left it."""

    spec: Spec
    phase: PhaseSpec
    role: str | None
    a: PipelineRuns
    b: PipelineRuns
    scratch: Path

    @property
    def run_a(self) -> Path:
        return self.a.run_dir(self.phase.key, self.role)

    @property
    def run_b(self) -> Path:
        return self.b.run_dir(self.phase.key, self.role)

    def record(self, run_dir: Path | None = None) -> dict[str, Any]:
        from canon import CANON

        return read_json((run_dir or self.run_a) / CANON.OUTPUT.RUN_RECORD)

    def upstream_dir(self, phase_key: str) -> Path:
        return self.a.run_dir(phase_key, self.role)

    def command(self) -> str:
        return self.phase.command(self.role)


Check = Callable[[CheckContext], None]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"acceptance check {name!r} registered twice")
        CHECKS[name] = fn
        return fn

    return register


def load_all() -> dict[str, Check]:
    from acceptance.checks import (  # noqa: F401  (registration)
        generic,
        phase0,
        phase1,
        phase2,
        phase3,
        phase4,
        phase5,
        phase6,
        phase7,
        phase8,
    )

    return CHECKS
