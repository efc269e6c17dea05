"""JSON / YAML / JSONL artifacts against their generated JSON Schema (spec/00_OVERVIEW.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from canon import CANON
from critspec.errors import ContractError
from critspec.generate.json_schema import LENGTH_SYMBOL
from critspec.store.writers import read_json, read_jsonl, read_yaml
from critspec.validate import bindings as bind
from critspec.validate.bindings import Bindings


def _where(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "<root>"


def _check_lengths(
    schema: dict[str, Any], data: Any, where: list[Any], b: Bindings, cid: str
) -> None:
    symbol = schema.get(LENGTH_SYMBOL)
    if symbol is not None and isinstance(data, list):
        want = bind.need(b, symbol, cid)
        if len(data) != want:
            raise ContractError(f"{_where(where)}: length {len(data)}, expected {symbol}={want}")
    if isinstance(data, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in data:
                _check_lengths(sub, data[key], [*where, key], b, cid)
    if isinstance(data, list) and "items" in schema:
        for i, item in enumerate(data):
            _check_lengths(schema["items"], item, [*where, i], b, cid)


def validate_document(schema: dict[str, Any], data: Any, b: Bindings, cid: str, label: str) -> None:
    error = best_match(Draft202012Validator(schema).iter_errors(data))
    if error is not None:
        raise ContractError(f"{label}: {_where(error.absolute_path)}: {error.message}")
    try:
        _check_lengths(schema, data, [], b, cid)
    except ContractError as exc:
        raise ContractError(f"{label}: {exc}") from None


def load_document(path: Path, fmt: str, nonfinite: bool = False) -> list[Any]:
    """The document(s) of a JSON/JSONL/YAML input, refused unread above
    CANON.CONST.JSON_MAX_BYTES (parsing cost grows with the bytes; issue 19)."""
    size = path.stat().st_size
    if size > CANON.CONST.JSON_MAX_BYTES:
        raise ContractError(
            f"{path}: {size} bytes, above the {fmt} input bound of "
            f"{CANON.CONST.JSON_MAX_BYTES} bytes; refusing to parse it"
        )
    if fmt == CANON.ENUM.ARTIFACT_FORMAT.JSONL:
        return read_jsonl(path)
    if fmt == CANON.ENUM.ARTIFACT_FORMAT.YAML:
        return [read_yaml(path)]
    return [read_json(path, nonfinite)]


def validate(path: Path, schema: dict[str, Any], fmt: str, b: Bindings, cid: str) -> None:
    docs = load_document(path, fmt)
    for i, doc in enumerate(docs, start=1):
        label = f"{path}:{i}" if fmt == CANON.ENUM.ARTIFACT_FORMAT.JSONL else str(path)
        validate_document(schema, doc, b, cid, label)
