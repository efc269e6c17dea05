"""Validation of spec/canon.yaml before anything is generated from it (spec/00_OVERVIEW.md).

The registry is a tree of UPPER_SNAKE keys whose leaves are scalars or lists of
scalars. Its top-level sections are fixed; a few cross-checks tie sections
together (every command string starts with the entrypoint and names a known
subcommand, every stage tag and log basename belongs to a known phase).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_REF = re.compile(r"^CANON(\.[A-Z][A-Z0-9_]*)+$")
Scalar = str | int | float | bool


def _leaves(node: Any, where: str) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [(f"{where}[{i}]", v) for i, v in enumerate(node)]
    return [(where, node)]


def check_reference_chains(tree: dict[str, Any]) -> None:
    """Every `CANON.X.Y` value in the registry resolves, and no chain of them is a cycle
    (configs resolve references recursively; a cycle would never end)."""

    def lookup(ref: str) -> Any:
        node: Any = tree
        for part in ref.split(".")[1:]:
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"{ref} does not resolve")
            node = node[part]
        return node

    for where, value in _leaves(tree, "CANON"):
        chain = [where]
        while isinstance(value, str) and _REF.match(value):
            if value in chain:
                raise ValueError(f"CANON reference cycle: {' -> '.join([*chain, value])}")
            chain.append(value)
            try:
                value = lookup(value)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None


def _check_tree(node: Any, where: str) -> None:
    if isinstance(node, dict):
        if not node:
            raise ValueError(f"{where}: empty mapping")
        for key, value in node.items():
            if not isinstance(key, str) or not _KEY.match(key):
                raise ValueError(f"{where}: key {key!r} is not UPPER_SNAKE")
            _check_tree(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, dict | list) or item is None:
                raise ValueError(f"{where}[{i}]: list items must be scalars")
    elif node is None or not isinstance(node, Scalar):
        raise ValueError(f"{where}: leaf must be a scalar or a list of scalars, got {node!r}")


class CanonSpec(BaseModel):
    """spec/canon.yaml; unknown top-level sections are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    PROJECT: dict[str, Any]
    PATH: dict[str, Any]
    CLI: dict[str, Any]
    ENUM: dict[str, Any]
    CONST: dict[str, Any]
    PROFILE: dict[str, Any]
    MODEL: dict[str, Any]
    DATASET: dict[str, Any]
    OUTPUT: dict[str, Any]

    @field_validator("*")
    @classmethod
    def _tree(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        _check_tree(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> CanonSpec:
        entry = self.CLI["ENTRYPOINT"]
        subcommands = set(self.CLI["SUBCOMMAND"].values())
        for key, cmd in self.CLI["CMD"].items():
            words = str(cmd).split()
            if len(words) < 2 or words[0] != entry or words[1] not in subcommands:
                raise ValueError(
                    f"CLI.CMD.{key}: {cmd!r} must start with {entry!r} and a CLI.SUBCOMMAND"
                )
        for section in ("LOG", "STAGE_TAG"):
            unknown = set(self.OUTPUT[section]) - set(self.CLI["SUBCOMMAND"])
            if unknown:
                raise ValueError(f"OUTPUT.{section}: keys {sorted(unknown)} are not subcommands")
        for key, values in self.ENUM.items():
            flat = list(values.values()) if isinstance(values, dict) else list(values)
            if len(set(flat)) != len(flat):
                raise ValueError(f"ENUM.{key}: duplicate values")
        check_reference_chains(self.model_dump())
        return self

    def lookup(self, dotted: str) -> Any:
        """Value at a dotted path such as 'CONST.EPS'; KeyError names the missing part."""
        node: Any = self.model_dump()
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node
