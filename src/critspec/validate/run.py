"""`critspec validate-run RUN_DIR`: a whole sealed run against its record and contracts.

Only a sealed run is a run (issue 7): the directory must be a real (not
symlinked) `CANON.PATH.RUN_DIR_PREFIX…` directory whose name is the record's
run_id, holding no symlinks; a `.tmp_`/`.failed_` leftover is refused even when
its record says complete. Then: the record against its schema;
`config_resolved.yaml` against `config_sha256`; every file in the run is
indexed (or is the record / resolved config); every indexed path stays inside
the run, exists, has the recorded size and sha256, and passes its contract;
and every artifact the run consumed from an upstream run (found beside it in
the same runs directory) still has the sha256 this run recorded (exit 3).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from canon import CANON
from critspec.errors import ContractError, DependencyError
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_json, read_yaml
from critspec.validate import bindings as bind
from critspec.validate.artifact import validate_artifact
from critspec.validate.consistency import check_run_tables

RUN_RECORD_CONTRACT = "run_record"
RUN_ID = re.compile(
    rf"^{re.escape(CANON.PATH.RUN_DIR_PREFIX)}[A-Z0-9]+_[0-9a-f]{{{CANON.CONST.RUN_HASH_LEN}}}$"
)


def inside(run_dir: Path, relative_path: str) -> Path:
    """The file a record names, refusing any path that leaves the run directory."""
    root = run_dir.resolve()
    target = (root / relative_path).resolve()
    if Path(relative_path).is_absolute() or not target.is_relative_to(root):
        raise ContractError(f"{run_dir}: path {relative_path!r} escapes the run directory")
    return target


def check_run_name(name: str, where: str) -> None:
    """`name` must be a bare run id (no path parts, no temporary or failed prefix)."""
    if not RUN_ID.match(name):
        raise ContractError(
            f"{where}: {name!r} is not a sealed run id ({CANON.PATH.RUN_DIR_PREFIX}<TAG>_<hash>); "
            f"a {CANON.PATH.TMP_RUN_PREFIX} or {CANON.PATH.FAILED_RUN_PREFIX} directory is an "
            f"unfinished run (see `{CANON.CLI.ENTRYPOINT} {CANON.CLI.SUBCOMMAND.GC}`)"
        )


def run_files(run_dir: Path) -> list[str]:
    """Run-relative paths of every file, refusing symlinks and anything not a file or dir."""
    if run_dir.is_symlink():
        raise ContractError(f"{run_dir}: is a symlink; a sealed run is a real directory")
    if not run_dir.is_dir():
        raise ContractError(f"{run_dir}: no such run directory")
    out = []
    for top, dirs, files in os.walk(run_dir):
        for name in sorted(dirs + files):
            path = Path(top) / name
            rel = path.relative_to(run_dir).as_posix()
            if path.is_symlink():
                raise ContractError(f"{run_dir}: {rel} is a symlink; a sealed run holds none")
            if name in files:
                if not path.is_file():
                    raise ContractError(f"{run_dir}: {rel} is not a regular file")
                out.append(rel)
    return sorted(out)


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
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise ContractError(f"{path}: not a mapping")
    return doc


def check_config(run_dir: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The resolved config, whose bytes must hash to the record's config_sha256."""
    doc = load_config(run_dir)
    actual = hashlib.sha256((run_dir / CANON.OUTPUT.CONFIG_RESOLVED).read_bytes()).hexdigest()
    if actual != record["config_sha256"]:
        raise ContractError(
            f"{run_dir}: {CANON.OUTPUT.CONFIG_RESOLVED} has sha256 {actual[:12]}…, the record "
            f"says {record['config_sha256'][:12]}…; the resolved config was altered"
        )
    return doc


def check_dependencies(run_dir: Path, record: dict[str, Any]) -> None:
    """Every consumed upstream artifact still has the sha256 this run recorded (exit 3)."""
    for dep in record["dependencies"]:
        if dep["run_id"] is None:  # an external file (--metrics): only its sha256 is kept
            continue
        check_run_name(dep["run_id"], f"{run_dir}: dependency")
        upstream = run_dir.parent / dep["run_id"]
        if not upstream.is_dir() or upstream.is_symlink():
            raise DependencyError(
                f"{run_dir}: upstream run {dep['run_id']} is not in {run_dir.parent}; "
                "keep a run beside the runs it consumed"
            )
        for art in dep["artifacts"]:
            path = inside(upstream, art["relative_path"])
            if not path.is_file() or path.is_symlink():
                raise DependencyError(f"{path}: consumed upstream artifact is missing")
            if sha256_file(path) != art["sha256"]:
                raise DependencyError(
                    f"{path}: no longer has the sha256 run {record['run_id']} consumed "
                    f"({art['sha256'][:12]}…); the upstream run was altered"
                )


def validate_run(run_dir: Path) -> dict[str, Any]:
    """Validate a sealed run; returns its record."""
    run_dir = Path(os.path.abspath(run_dir))  # `.` or `RUN_X/..` named by what they are
    check_run_name(run_dir.name, str(run_dir.parent))
    files = run_files(run_dir)
    record = load_record(run_dir)
    if record["stage_status"] != CANON.ENUM.STAGE_STATUS.COMPLETE:
        raise ContractError(f"{run_dir}: stage_status is {record['stage_status']}, not sealed")
    if record["run_id"] != run_dir.name:
        raise ContractError(
            f"{run_dir}: record says run_id {record['run_id']}; a run cannot be renamed"
        )
    b = bind.from_run(record, check_config(run_dir, record))
    indexed = {item["relative_path"] for item in record["artifact_index"]}
    unlisted = sorted(
        set(files) - indexed - {CANON.OUTPUT.RUN_RECORD, CANON.OUTPUT.CONFIG_RESOLVED}
    )
    if unlisted:
        raise ContractError(
            f"{run_dir}: {unlisted[0]} is not in the record's artifact index "
            f"({len(unlisted)} unlisted file(s)); a sealed run holds only indexed files"
        )
    for item in record["artifact_index"]:
        path = inside(run_dir, item["relative_path"])
        if not path.is_file():
            raise ContractError(f"{run_dir}: indexed file {item['relative_path']} is missing")
        if path.stat().st_size != item["bytes"]:
            raise ContractError(f"{run_dir}: {item['relative_path']}: size differs from record")
        if sha256_file(path) != item["sha256"]:
            raise ContractError(f"{run_dir}: {item['relative_path']}: sha256 differs from record")
        validate_artifact(item["contract"], path, b)
    check_dependencies(run_dir, record)
    check_run_tables(run_dir, record)
    return record
