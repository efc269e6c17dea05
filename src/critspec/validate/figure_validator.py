"""Figure files (spec/00_OVERVIEW.md, spec/13_TABLES_AND_FIGURES.md), checked whole and
bounded: at most CANON.CONST.FIGURE_MAX_BYTES; a PNG is its signature, then chunks
(length, type, data, CRC) with a CRC that matches, an IHDR of non-zero size first and
IEND last with nothing after it; a PDF starts with `%PDF-` and ends with its `%%EOF`
trailer, after a `startxref` (only line ends may follow).
"""

from __future__ import annotations

import zlib
from pathlib import Path

from canon import CANON
from critspec.errors import ContractError, regular_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PDF_HEADER = b"%PDF-"
PDF_TRAILER = b"%%EOF"
PDF_STARTXREF = b"startxref"
# How far before %%EOF the startxref keyword may sit (it is followed by one offset).
PDF_TAIL_BYTES = 1024
PNG_SUFFIX = ".png"
PDF_SUFFIX = ".pdf"
PNG_IHDR = b"IHDR"
PNG_IEND = b"IEND"
_CHUNK_HEAD = 8
_CRC = 4


def _png(path: Path, data: bytes, cid: str) -> None:
    def refuse(why: str) -> ContractError:
        return ContractError(f"{path}: not a PNG image, or an incomplete one: {why} ({cid})")

    if not data.startswith(PNG_SIGNATURE):
        raise refuse("no PNG signature")
    pos, first = len(PNG_SIGNATURE), True
    while True:
        if pos + _CHUNK_HEAD > len(data):
            raise refuse(f"truncated at byte {pos} before IEND")
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + _CHUNK_HEAD + length + _CRC
        if end > len(data):
            raise refuse(f"chunk {kind!r} at byte {pos} runs past the end of the file")
        body = data[pos + 4 : end - _CRC]
        if zlib.crc32(body) != int.from_bytes(data[end - _CRC : end], "big"):
            raise refuse(f"chunk {kind!r} at byte {pos} has a wrong CRC")
        if first:
            if kind != PNG_IHDR:
                raise refuse("the first chunk is not IHDR")
            width = int.from_bytes(data[pos + 8 : pos + 12], "big")
            height = int.from_bytes(data[pos + 12 : pos + 16], "big")
            if width == 0 or height == 0:
                raise ContractError(f"{path}: PNG of size {width}x{height} (contract {cid})")
            first = False
        pos = end
        if kind == PNG_IEND:
            break
    if pos != len(data):
        raise refuse(f"{len(data) - pos} bytes after IEND")


def _pdf(path: Path, data: bytes, cid: str) -> None:
    tail = data.rstrip(b"\r\n")
    if not data.startswith(PDF_HEADER) or not tail.endswith(PDF_TRAILER):
        raise ContractError(f"{path}: not a complete PDF file (contract {cid})")
    if PDF_STARTXREF not in tail[-PDF_TAIL_BYTES:]:
        raise ContractError(f"{path}: PDF without startxref before %%EOF (contract {cid})")


def validate(path: Path, cid: str) -> None:
    size = regular_file(path, f"figure (contract {cid})", ContractError)
    if size > CANON.CONST.FIGURE_MAX_BYTES:
        raise ContractError(
            f"{path}: {size} bytes, above the figure bound of "
            f"{CANON.CONST.FIGURE_MAX_BYTES} bytes (contract {cid})"
        )
    suffix = path.suffix.lower()
    if suffix == PNG_SUFFIX:
        _png(path, path.read_bytes(), cid)
    elif suffix == PDF_SUFFIX:
        _pdf(path, path.read_bytes(), cid)
    else:
        raise ContractError(f"{path}: a figure must be .png or .pdf (contract {cid})")
