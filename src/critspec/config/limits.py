"""Bounds on config numbers (spec/07_RUNS_RECORDS_LOGGING.md §1, CANON.CONST.CONFIG_LIMIT).

Upper bounds keep memory and time finite whatever a config says; lower bounds are the
least a statistic needs to mean anything. Both raise ValueError inside a pydantic
validator, so the refusal names the file and key path (exit 2).
"""

from __future__ import annotations

from canon import CANON

LIMIT = CANON.CONST.CONFIG_LIMIT
LIMIT_REF = "CANON.CONST.CONFIG_LIMIT"


def at_most(value: int, name: str, key: str, why: str) -> None:
    """ValueError naming `key` when `value` exceeds the CONFIG_LIMIT entry `name`."""
    limit = getattr(LIMIT, name)
    if value > limit:
        raise ValueError(f"{key} is {value}, above {LIMIT_REF}.{name} ({limit}); {why}")


def at_least(value: int, name: str, key: str, why: str) -> None:
    """ValueError naming `key` when `value` is below the CONFIG_LIMIT entry `name`."""
    limit = getattr(LIMIT, name)
    if value < limit:
        raise ValueError(f"{key} is {value}, below {LIMIT_REF}.{name} ({limit}); {why}")
