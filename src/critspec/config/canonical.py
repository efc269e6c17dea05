"""The canonical bytes of a resolved config and their hash (spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import hashlib
from typing import Any

from critspec.store.writers import yaml_bytes


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    return yaml_bytes(doc)


def config_sha256(doc: dict[str, Any]) -> str:
    """sha256 of the exact bytes written as config_resolved.yaml."""
    return hashlib.sha256(canonical_bytes(doc)).hexdigest()
