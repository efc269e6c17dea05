"""canon/__init__.py: the CANON registry as nested classes (`CANON.CONST.EPS`)."""

from __future__ import annotations

from typing import Any

from critspec.spec.canon_spec import CanonSpec


def _literal(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def _emit(name: str, node: dict[str, Any], depth: int, out: list[str]) -> None:
    pad = "    " * depth
    out.append(f"{pad}class {name}:")
    for key, value in node.items():
        if isinstance(value, dict):
            _emit(key, value, depth + 1, out)
        else:
            out.append(f"{pad}    {key} = {_literal(value)}")


def render(spec: CanonSpec, header: str) -> str:
    out = [f'"""CANON registry of critspec. {header}."""', "", ""]
    _emit("CANON", spec.model_dump(), 0, out)
    return "\n".join(out) + "\n"
