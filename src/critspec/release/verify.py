"""`critspec verify-release DIR` (spec/16_RELEASE.md, "Verifying a release").

DIR is a sealed release run. In order, and stopping at the first difference (exit 3,
naming the file): every artifact of the release run against its run record (report,
manifest, archive); every file of the manifest against the released runs beside DIR, and
no file in a released run that the manifest lacks; every member of the archive against
the manifest, in the manifest's order. Without the released runs beside it (a release
copied alone) the runs are checked through the archive only, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from canon import CANON
from critspec.errors import ContractError, DependencyError
from critspec.release.archive import members
from critspec.release.manifest import run_files
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_json
from critspec.validate import contracts
from critspec.validate.artifact import validate_artifact
from critspec.validate.run import inside, validate_run

MANIFEST_CONTRACT = "release_manifest"
ARCHIVE_CONTRACT = "release_archive"


@dataclass(frozen=True)
class Verified:
    run_id: str
    n_runs: int
    n_files: int
    archive_sha256: str
    runs_checked_on_disk: bool


def _differs(path: Path, what: str) -> DependencyError:
    return DependencyError(f"{path}: {what}; the release is not intact")


def _check_release_run(release_dir: Path) -> dict:
    record_path = release_dir / CANON.OUTPUT.RUN_RECORD
    if not record_path.is_file():
        raise DependencyError(f"{release_dir}: no {CANON.OUTPUT.RUN_RECORD}; not a sealed run")
    try:
        record = read_json(record_path)
        index = record["artifact_index"]
    except (ContractError, KeyError, TypeError):
        raise _differs(record_path, "unreadable run record") from None
    for item in index:
        path = inside(release_dir, item["relative_path"])
        if not path.is_file():
            raise _differs(path, "missing")
        if sha256_file(path) != item["sha256"]:
            raise _differs(path, "sha256 differs from the release's run record")
    return record


def _validate(release_dir: Path, record: dict, with_upstream: bool) -> None:
    """The release run's contracts; with its upstream runs beside it, the full run check
    (which also re-hashes every artifact the release consumed)."""
    try:
        if with_upstream:
            validate_run(release_dir)
        else:
            for item in record["artifact_index"]:
                validate_artifact(item["contract"], release_dir / item["relative_path"])
    except ContractError as exc:
        raise DependencyError(f"{release_dir}: {exc}") from None


def verify_release(release_dir: Path) -> Verified:
    record = _check_release_run(release_dir)
    manifest = read_json(contracts.path_in(release_dir, MANIFEST_CONTRACT))
    runs_dir = release_dir.parent
    run_ids = [r["run_id"] for r in manifest["released_runs"]]
    on_disk = any((runs_dir / run_id).is_dir() for run_id in run_ids)
    _validate(release_dir, record, on_disk)
    listed = {f["path"] for f in manifest["files"]}
    if on_disk:
        for f in manifest["files"]:
            path = inside(runs_dir, f["path"])
            if not path.is_file():
                raise _differs(path, "missing from a released run")
            if path.stat().st_size != f["bytes"] or sha256_file(path) != f["sha256"]:
                raise _differs(path, "differs from the release manifest")
        for run_id in run_ids:
            for path in run_files(runs_dir / run_id):
                rel = f"{run_id}/{path.relative_to(runs_dir / run_id).as_posix()}"
                if rel not in listed:
                    raise _differs(path, "is in a released run but not in the release manifest")
    archive = contracts.path_in(release_dir, ARCHIVE_CONTRACT)
    try:
        expected = iter(manifest["files"])
        for member in members(archive):
            want = next(expected, None)
            if want is None or member.name != want["path"]:
                raise _differs(archive, f"member {member.name} is not the manifest's next file")
            if (member.sha256, member.bytes) != (want["sha256"], want["bytes"]):
                raise _differs(archive, f"member {member.name} differs from the release manifest")
        rest = next(expected, None)
        if rest is not None:
            raise _differs(archive, f"lacks {rest['path']} of the release manifest")
    except ContractError as exc:
        raise _differs(archive, str(exc)) from None
    return Verified(
        run_id=record["run_id"],
        n_runs=len(run_ids),
        n_files=len(manifest["files"]),
        archive_sha256=sha256_file(archive),
        runs_checked_on_disk=on_disk,
    )
