"""canon/CANON.md: the registry as a readable table, one row per leaf."""

from __future__ import annotations

from typing import Any

from critspec.spec.canon_spec import CanonSpec


def _rows(prefix: str, node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _rows(f"{prefix}.{key}" if prefix else key, value, out)
        return
    shown = ", ".join(str(v) for v in node) if isinstance(node, list) else str(node)
    out.append(f"| `CANON.{prefix}` | `{shown}` |")


def render(spec: CanonSpec, header: str) -> str:
    out = [f"<!-- {header} -->", "", "# CANON", "", "| key | value |", "| --- | --- |"]
    _rows("", spec.model_dump(), out)
    return "\n".join(out) + "\n"
