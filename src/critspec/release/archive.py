"""The release archive (spec/16_RELEASE.md, "Archive"): tar + gzip of exactly the files of
the manifest, byte-deterministic.

Members are the manifest's paths (`<run_id>/<path>`) with their parent directories,
sorted by name bytes; every member has mtime ARCHIVE_MTIME, uid/gid ARCHIVE_OWNER_ID,
empty owner names, mode ARCHIVE_FILE_MODE (files) or ARCHIVE_DIR_MODE (directories), ustar
format. The gzip header carries mtime ARCHIVE_MTIME and no file name; the level is
ARCHIVE_GZIP_LEVEL (the same zlib gives the same bytes). Nothing of the writing machine (time, zone,
locale, umask, user, absolute paths) can enter the bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from canon import CANON
from critspec.errors import ContractError

FILE_MODE = CANON.CONST.ARCHIVE_FILE_MODE
DIR_MODE = CANON.CONST.ARCHIVE_DIR_MODE
MTIME = CANON.CONST.ARCHIVE_MTIME
OWNER_ID = CANON.CONST.ARCHIVE_OWNER_ID
COMPRESS_LEVEL = CANON.CONST.ARCHIVE_GZIP_LEVEL
GZIP_MAGIC = b"\x1f\x8b"
GZIP_FLAG_FNAME = 0x08
_CHUNK = 1 << 20


def _members(paths: list[str]) -> list[str]:
    """The file paths and every parent directory (with a trailing '/'), sorted by bytes."""
    dirs = {str(p) + "/" for path in paths for p in PurePosixPath(path).parents if str(p) != "."}
    return sorted({*paths, *dirs}, key=str.encode)


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name.rstrip("/"))
    info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
    info.mode = DIR_MODE if name.endswith("/") else FILE_MODE
    info.size = size
    info.mtime = MTIME
    info.uid = info.gid = OWNER_ID
    info.uname = info.gname = ""
    return info


def write_archive(target: Path, root: Path, paths: list[str]) -> None:
    """Write `paths` (POSIX, relative to `root`) into the tar.gz `target`."""
    with (
        target.open("wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=MTIME, compresslevel=COMPRESS_LEVEL
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name in _members(paths):
            if name.endswith("/"):
                tar.addfile(_info(name, 0))
                continue
            source = root / name
            with source.open("rb") as fh:
                tar.addfile(_info(name, source.stat().st_size), fh)


@dataclass(frozen=True)
class Member:
    name: str
    sha256: str
    bytes: int


def check_header(path: Path) -> None:
    """The gzip header: mtime 0 and no stored file name (ContractError otherwise)."""
    head = path.read_bytes()[:10] if path.stat().st_size >= 10 else b""
    if len(head) < 10 or head[:2] != GZIP_MAGIC:
        raise ContractError(f"{path}: not a gzip file")
    if head[3] & GZIP_FLAG_FNAME:
        raise ContractError(f"{path}: the gzip header stores a file name")
    if int.from_bytes(head[4:8], "little") != MTIME:
        raise ContractError(f"{path}: the gzip header stores a modification time")
    # Read the stream to its end: the trailer's CRC and length catch a truncated or
    # altered archive that tar alone would stop reading before.
    try:
        with gzip.open(path, "rb") as gz:
            while gz.read(_CHUNK):
                pass
    except (OSError, EOFError) as exc:
        raise ContractError(f"{path}: not a readable tar.gz archive ({exc})") from None


def members(path: Path) -> Iterator[Member]:
    """Every regular file of the archive, hashed, in archive order; ContractError on a
    member that breaks the archive's rules (links, devices, absolute or '..' names,
    non-fixed metadata)."""
    check_header(path)
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            previous = b""
            for info in tar:
                name = info.name + ("/" if info.isdir() else "")
                if name.encode() <= previous:
                    raise ContractError(f"{path}: member {info.name} is out of order")
                previous = name.encode()
                parts = PurePosixPath(info.name).parts
                if info.name.startswith("/") or ".." in parts:
                    raise ContractError(f"{path}: member {info.name!r} escapes the archive")
                want_mode = DIR_MODE if info.isdir() else FILE_MODE
                if not (info.isdir() or info.isreg()):
                    raise ContractError(f"{path}: member {info.name} is not a file or directory")
                fixed = (info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode)
                if fixed != (MTIME, OWNER_ID, OWNER_ID, "", "", want_mode):
                    raise ContractError(
                        f"{path}: member {info.name} has non-fixed metadata {fixed}"
                    )
                if info.isdir():
                    continue
                digest = hashlib.sha256()
                fh = tar.extractfile(info)
                assert fh is not None  # a regular member always has a file object
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                yield Member(info.name, digest.hexdigest(), info.size)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise ContractError(f"{path}: not a readable tar.gz archive ({exc})") from None
