"""Error types of critspec, each mapped to one exit code (DESIGN §2).

The CLI is the only place that turns them into exit codes; everywhere else raises
the specific type with a message that says what failed, where, and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from canon import CANON


class CritspecError(Exception):
    """Base class: a failure the user can act on."""

    exit_code: int = CANON.CLI.EXIT.BUG


class ContractError(CritspecError):
    """An artifact, schema or spec file breaks its contract."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class ConfigError(CritspecError):
    """A config file is malformed, has unknown keys or unresolved references."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class CheckFailed(CritspecError):
    """A scientific or determinism check of a phase failed (e.g. rate matching, NaNs)."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class ComponentLimitExceeded(CheckFailed):
    """A sequence has more avalanches than CC_MAX_COMPONENTS_PER_SEQ (DESIGN §4b Phase 5)."""


class DependencyError(CritspecError):
    """An upstream run or artifact is missing or was altered since it was sealed."""

    exit_code = CANON.CLI.EXIT.DEPENDENCY


class RunExistsError(CritspecError):
    """The run directory for this content hash already exists."""

    exit_code = CANON.CLI.EXIT.RUN_EXISTS


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, path: Path, error: type[CritspecError]) -> M:
    """`model` validated from `data` (read from `path`); the first problem as one line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise error(f"{path}: {where}: {msg}") from None
