"""The release gate: one test per (phase, model role, declared check) of spec/phases.yaml,
plus each phase's once-per-phase checks (spec/08_TEST_PLAN.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acceptance.checks import CheckContext, load_all
from acceptance.harness import PipelineRuns
from critspec.spec.load import project_spec

SPEC = project_spec()
CHECKS = load_all()
# The session fixture builds two whole pipelines: under `--dist loadgroup` one worker
# builds them once and runs every check (ungrouped, each worker built them again).
pytestmark = pytest.mark.xdist_group("acceptance")


def _cases() -> list[pytest.param]:
    cases = []
    for phase in SPEC.phases.phases:
        for role in phase.roles:
            for name in phase.checks:
                cases.append(
                    pytest.param(phase.key, role, name, id=f"{phase.key}-{role or 'ALL'}-{name}")
                )
        for name in phase.once_checks:
            cases.append(
                pytest.param(phase.key, phase.roles[0], name, id=f"{phase.key}-once-{name}")
            )
    return cases


@pytest.mark.parametrize(("phase_key", "role", "name"), _cases())
def test_check(
    phase_key: str,
    role: str | None,
    name: str,
    pipeline: tuple[PipelineRuns, PipelineRuns],
    scratch: Path,
) -> None:
    assert name in CHECKS, (
        f"spec/phases.yaml declares check {name!r}; no function is registered for it"
    )
    a, b = pipeline
    CHECKS[name](CheckContext(SPEC, SPEC.phases.by_key(phase_key), role, a, b, scratch))


def test_every_registered_check_is_declared() -> None:
    declared = {n for p in SPEC.phases.phases for n in (*p.checks, *p.once_checks)}
    assert set(CHECKS) <= declared, (
        f"registered but never declared: {sorted(set(CHECKS) - declared)}"
    )
