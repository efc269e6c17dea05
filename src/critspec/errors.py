"""Error types of critspec, each mapped to one exit code (spec/07_RUNS_RECORDS_LOGGING.md).

The CLI is the only place that turns them into exit codes; everywhere else raises
the specific type with a message that says what failed, where, and what to do.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from canon import CANON


class CritspecError(Exception):
    """Base class: a failure the user can act on.

    The message is kept on one line whatever it quotes (a file name or value read from a
    hostile file may hold newlines or control characters): those are escaped.
    """

    exit_code: int = CANON.CLI.EXIT.BUG

    def __init__(self, message: str = "") -> None:
        super().__init__(_printable(str(message)))


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ContractError(CritspecError):
    """An artifact, schema or spec file breaks its contract."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class ConfigError(CritspecError):
    """A config file is malformed, has unknown keys or unresolved references."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class InputError(CritspecError):
    """A path given to critspec cannot be used: missing, the wrong kind, unwritable, too long."""

    exit_code = CANON.CLI.EXIT.CONTRACT


def regular_file(path: Path, what: str, error: type[CritspecError] = InputError) -> int:
    """The size of `path`, which must be a regular file (not a directory, FIFO or device).

    Checked with stat before opening: opening a FIFO would block.
    """
    try:
        mode = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if not stat.S_ISREG(mode.st_mode):
        kind = "a directory" if stat.S_ISDIR(mode.st_mode) else "not a regular file"
        raise error(f"{path}: {what} is {kind}; pass a file")
    return mode.st_size


def writable_dir(path: Path, what: str) -> Path:
    """`path` as an existing directory critspec can write into, created if absent."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: the {what} is a file, not a directory; pass a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".{CANON.PROJECT.NAME}_write_probe.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except (NotADirectoryError, FileExistsError):
        raise InputError(f"{path}: the {what} lies under a file; pass a directory path") from None
    except OSError as exc:
        raise InputError(
            f"{path}: the {what} is not usable ({exc.strerror}); pass a writable directory"
        ) from None
    return path


class CheckFailed(CritspecError):
    """A scientific or determinism check of a phase failed (e.g. rate matching, NaNs)."""

    exit_code = CANON.CLI.EXIT.CONTRACT


class ComponentLimitExceeded(CheckFailed):
    """A sequence has more avalanches than CC_MAX_COMPONENTS_PER_SEQ (spec/00_OVERVIEW.md)."""


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
