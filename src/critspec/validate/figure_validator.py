"""Figure files: a PNG must carry the PNG signature and a non-empty IHDR, a PDF its
`%PDF-` header and `%%EOF` trailer (spec/00_OVERVIEW.md)."""

from __future__ import annotations

from pathlib import Path

from critspec.errors import ContractError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PDF_HEADER = b"%PDF-"
PDF_TRAILER = b"%%EOF"
PNG_SUFFIX = ".png"
PDF_SUFFIX = ".pdf"


def validate(path: Path, cid: str) -> None:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == PNG_SUFFIX:
        if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
            raise ContractError(f"{path}: not a PNG image (contract {cid})")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if width == 0 or height == 0:
            raise ContractError(f"{path}: PNG of size {width}x{height} (contract {cid})")
    elif suffix == PDF_SUFFIX:
        if not data.startswith(PDF_HEADER) or PDF_TRAILER not in data[-64:]:
            raise ContractError(f"{path}: not a complete PDF file (contract {cid})")
    else:
        raise ContractError(f"{path}: a figure must be .png or .pdf (contract {cid})")
