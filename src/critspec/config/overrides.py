"""`--set KEY=VALUE`: one-off changes to a resolved config (spec/07_RUNS_RECORDS_LOGGING.md).

KEY is a dotted path into the pipeline document, with `models.<i>.…` and
`datasets.<i>.…` reaching into the included files (list items by index); VALUE is
YAML (`0.002`, `[0.9, 1.0]`, `CANON.ENUM.DTYPE.BF16`), its CANON references resolved like
the file's. Every key but the last must exist; the last may be new to its mapping (an
optional field such as `models.0.entry.ALLOW_HUB`), and the file's schema then refuses
a key it does not know, so a typo is an error naming the key, never an ignored setting.
The overridden values are part of the resolved config, hence of the config hash and the
run id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critspec.config.canon_refs import resolve_refs
from critspec.errors import ConfigError
from critspec.store.writers import load_yaml

FLAG = "--set"


@dataclass(frozen=True)
class Override:
    path: tuple[str, ...]
    value: Any

    @property
    def key(self) -> str:
        return ".".join(self.path)


def parse_override(text: str, config: Path) -> Override:
    """KEY=VALUE -> Override; a malformed one is a ConfigError in one line."""
    key, sep, raw = text.partition("=")
    parts = tuple(key.strip().split("."))
    if not sep or not all(parts):
        raise ConfigError(f"{FLAG} {text!r}: expected KEY=VALUE, e.g. analysis.bootstrap_reps=50")
    value = load_yaml(raw, f"{FLAG} {key.strip()}", ConfigError)
    return Override(parts, resolve_refs(value, config, key.strip()))


def apply_override(doc: dict[str, Any], override: Override, where: Path) -> None:
    """Replace the value at override.path in doc (in place); the path must exist."""
    node: Any = doc
    for depth, part in enumerate(override.path):
        last = depth == len(override.path) - 1
        here = ".".join(override.path[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"{FLAG} {override.key}: {here} is not an index of a {len(node)}-item list"
                )
            index: Any = int(part)
        elif isinstance(node, dict):
            if part not in node and not last:
                known = ", ".join(sorted(map(str, node))) or "none"
                raise ConfigError(
                    f"{FLAG} {override.key}: {where} has no key {here} (known here: {known})"
                )
            index = part
        else:
            raise ConfigError(f"{FLAG} {override.key}: {here} lies under a plain value")
        if last:
            node[index] = override.value
        else:
            node = node[index]
