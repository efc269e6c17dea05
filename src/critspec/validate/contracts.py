"""Load the generated contracts (contracts/*.json) that drive every validator."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from critspec.errors import ContractError
from critspec.generate.contracts_views import INDEX_JSON
from critspec.paths import contracts_dir


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def index(root: Path | None = None) -> dict[str, Any]:
    return _read((root or contracts_dir()) / INDEX_JSON)


def contract_ids(root: Path | None = None) -> list[str]:
    return list(index(root)["artifacts"])


def entry(contract_id: str, root: Path | None = None) -> dict[str, Any]:
    arts = index(root)["artifacts"]
    if contract_id not in arts:
        raise ContractError(f"unknown contract {contract_id!r}; known: {', '.join(sorted(arts))}")
    return arts[contract_id]


def view(contract_id: str, kind: str, root: Path | None = None) -> dict[str, Any]:
    """One generated view of a contract: 'schema', 'arrays' or 'columns'."""
    return view_for_entry(entry(contract_id, root), kind, root)


def view_for_entry(e: dict[str, Any], kind: str, root: Path | None = None) -> dict[str, Any]:
    return _read((root or contracts_dir()) / e["views"][kind])


def path_in(run_dir: Path, contract_id: str, root: Path | None = None) -> Path:
    """Where a run directory holds the (first basename of the) contract's artifact."""
    e = entry(contract_id, root)
    return run_dir / (e["subdir"] or "") / e["basenames"][0]


def contract_for_basename(relative_path: str, root: Path | None = None) -> str | None:
    """The contract whose subdir/basename matches a run-relative path, if any."""
    for art_id, e in index(root)["artifacts"].items():
        for base in e["basenames"]:
            rel = f"{e['subdir']}/{base}" if e["subdir"] else base
            if rel == relative_path:
                return art_id
    return None
