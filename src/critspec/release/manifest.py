"""The release manifest (spec/16_RELEASE.md, "Manifest"): the sha256 and size of every file
of every released run, as `<run_id>/<path in the run>`, in byte order of that name.

Every file means every one: the run record, the resolved config, the logs and each
artifact. A run directory may hold only regular files and directories (a link could
point outside the run, so it is refused rather than followed).
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critspec.errors import ContractError
from critspec.store.hashing import sha256_file
from critspec.store.run_store import SealedRun


@dataclass(frozen=True)
class ManifestFile:
    path: str  # <run_id>/<relative path>, POSIX
    sha256: str
    bytes: int


def run_files(run_dir: Path) -> list[Path]:
    """Every regular file under a run directory, sorted by POSIX relative path."""
    files = []
    for path in run_dir.rglob("*"):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise ContractError(f"{path}: not a regular file; a released run holds only files")
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(run_dir).as_posix())


def manifest_files(runs: Iterable[SealedRun]) -> list[ManifestFile]:
    out = []
    for run in runs:
        for path in run_files(run.run_dir):
            rel = f"{run.run_id}/{path.relative_to(run.run_dir).as_posix()}"
            out.append(ManifestFile(rel, sha256_file(path), path.stat().st_size))
    return sorted(out, key=lambda f: f.path.encode())


def manifest_document(runs: list[SealedRun]) -> dict[str, Any]:
    """The manifest artifact's content (contract `release_manifest`)."""
    files = manifest_files(runs)
    return {
        "released_runs": [
            {
                "run_id": run.run_id,
                "phase_id": run.record["phase_id"],
                "model_role": run.record["model_role"],
                "config_sha256": run.record["config_sha256"],
                "code_version": run.record["code_version"],
            }
            for run in runs
        ],
        "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in files],
        "n_files": len(files),
        "total_bytes": sum(f.bytes for f in files),
    }
