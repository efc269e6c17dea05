"""`CANON.X.Y` references in configs and docs, resolved against the generated canon."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from canon import CANON
from critspec.errors import ConfigError

REF = re.compile(r"^CANON(\.[A-Z][A-Z0-9_]*)+$")


def canon_value(ref: str) -> Any:
    """The plain value of 'CANON.X.Y'; a group becomes a dict, tuples become lists."""
    node: Any = CANON
    for part in ref.split(".")[1:]:
        if not hasattr(node, part):
            raise KeyError(ref)
        node = getattr(node, part)
    return _plain(node)


def _plain(node: Any) -> Any:
    if isinstance(node, type):
        return {k: _plain(v) for k, v in vars(node).items() if not k.startswith("_")}
    if isinstance(node, tuple):
        return [_plain(v) for v in node]
    return node


def resolve_refs(node: Any, file: Path, where: str = "") -> Any:
    if isinstance(node, dict):
        return {
            k: resolve_refs(v, file, f"{where}.{k}" if where else str(k)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [resolve_refs(v, file, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("CANON."):
        if not REF.match(node):
            raise ConfigError(f"{file}: {where}: malformed CANON reference {node!r}")
        try:
            return resolve_refs(canon_value(node), file, where)
        except KeyError:
            raise ConfigError(f"{file}: {where}: unresolved reference {node}") from None
    return node
