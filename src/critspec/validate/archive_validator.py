"""Release archives (spec/16_RELEASE.md, "Archive"): a gzip header with mtime
ARCHIVE_MTIME and no file name, then a tar whose members are files and directories only,
in byte order of their names, with relative names and fixed metadata; every member is
read to its end (a truncated archive fails)."""

from __future__ import annotations

from pathlib import Path

from critspec.errors import ContractError
from critspec.release.archive import members


def validate(path: Path, cid: str) -> None:
    try:
        n = sum(1 for _ in members(path))
    except ContractError as exc:
        raise ContractError(f"{exc} (contract {cid})") from None
    if n == 0:
        raise ContractError(f"{path}: archive holds no file (contract {cid})")
