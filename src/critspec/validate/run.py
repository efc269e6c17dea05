"""`critspec validate-run RUN_DIR`: a whole sealed run against its record and contracts.

Checks the record against its schema, that every indexed path stays inside the
run directory, exists, has the recorded size and sha256, and passes its
contract with symbols bound from the record and the resolved config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canon import CANON
from critspec.errors import ContractError
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_json
from critspec.validate import bindings as bind
from critspec.validate.artifact import validate_artifact

RUN_RECORD_CONTRACT = "run_record"


def inside(run_dir: Path, relative_path: str) -> Path:
    """The file a record names, refusing any path that leaves the run directory."""
    root = run_dir.resolve()
    target = (root / relative_path).resolve()
    if Path(relative_path).is_absolute() or not target.is_relative_to(root):
        raise ContractError(f"{run_dir}: path {relative_path!r} escapes the run directory")
    return target


def load_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CANON.OUTPUT.RUN_RECORD
    if not path.is_file():
        raise ContractError(f"{run_dir}: no {CANON.OUTPUT.RUN_RECORD}; not a critspec run")
    validate_artifact(RUN_RECORD_CONTRACT, path)
    return read_json(path)


def load_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CANON.OUTPUT.CONFIG_RESOLVED
    if not path.is_file():
        raise ContractError(f"{run_dir}: no {CANON.OUTPUT.CONFIG_RESOLVED}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def validate_run(run_dir: Path) -> dict[str, Any]:
    """Validate a sealed run; returns its record."""
    record = load_record(run_dir)
    if record["stage_status"] != CANON.ENUM.STAGE_STATUS.COMPLETE:
        raise ContractError(f"{run_dir}: stage_status is {record['stage_status']}, not sealed")
    b = bind.from_run(record, load_config(run_dir))
    for item in record["artifact_index"]:
        path = inside(run_dir, item["relative_path"])
        if not path.is_file():
            raise ContractError(f"{run_dir}: indexed file {item['relative_path']} is missing")
        if path.stat().st_size != item["bytes"]:
            raise ContractError(f"{run_dir}: {item['relative_path']}: size differs from record")
        if sha256_file(path) != item["sha256"]:
            raise ContractError(f"{run_dir}: {item['relative_path']}: sha256 differs from record")
        validate_artifact(item["contract"], path, b)
    return record
