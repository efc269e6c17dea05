"""Deterministic writers and strict readers for every artifact format (DESIGN §3).

Same content, same bytes: JSON with sorted keys and Python's shortest
round-trip float repr (NaN/Infinity refused); NPZ as an uncompressed zip with
fixed member timestamps and sorted members; Parquet from an explicit schema
with no index; YAML with sorted keys in block style.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from canon import CANON
from critspec.errors import ContractError

ARROW_TYPES = {
    "string": pa.string(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
}
NPY_SUFFIX = ".npy"


def json_bytes(obj: Any) -> bytes:
    try:
        text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
    except ValueError as exc:
        raise ContractError(f"refusing to write JSON: {exc}") from None
    return (text + "\n").encode("utf-8")


def write_json(path: Path, obj: Any) -> None:
    path.write_bytes(json_bytes(obj))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} is not valid JSON")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[Any]:
    lines = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            lines.append(json.loads(line, parse_constant=_reject_constant))
        except ValueError as exc:
            raise ContractError(f"{path}:{i}: not valid JSON ({exc})") from None
    return lines


def yaml_bytes(obj: Any) -> bytes:
    text = yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.encode("utf-8")


def write_yaml(path: Path, obj: Any) -> None:
    path.write_bytes(yaml_bytes(obj))


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An .npz that np.load reads, byte-identical for identical arrays."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            array = np.ascontiguousarray(arrays[name])
            if array.dtype.hasobject:
                raise ContractError(f"{path}: array {name!r} is an object array; refusing to write")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, array, allow_pickle=False)
            info = zipfile.ZipInfo(name + NPY_SUFFIX, date_time=CANON.CONST.NPZ_ZIP_DATE_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ContractError(f"{path}: holds an object (pickled) array") from None
        raise ContractError(f"{path}: not a valid NPZ ({exc})") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ContractError(f"{path}: not a valid NPZ ({exc})") from None


def write_parquet(path: Path, columns: Mapping[str, Any], types: Mapping[str, str]) -> None:
    """Columns in contract order, typed by the contract; no index, no pandas metadata."""
    table = parquet_table(columns, types, path)
    pq.write_table(table, path, compression="zstd", use_dictionary=False, write_statistics=True)


def _csv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(path: Path, table: pa.Table) -> None:
    """A typed table as CSV: header of column names, shortest round-trip floats,
    NaN and null as empty cells, booleans as true/false, LF line ends."""
    rows = [",".join(table.column_names)]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for cells in zip(*columns, strict=True):
        text = [_csv_cell(c) for c in cells]
        bad = [t for t in text if any(ch in t for ch in ',"\n\r')]
        if bad:
            raise ContractError(f"{path}: cell {bad[0]!r} would need CSV quoting; refusing")
        rows.append(",".join(text))
    path.write_bytes(("\n".join(rows) + "\n").encode("utf-8"))


def parquet_table(columns: Mapping[str, Any], types: Mapping[str, str], path: Path) -> pa.Table:
    """Columns in contract order, typed by the contract."""
    missing = [name for name in types if name not in columns]
    if missing:
        raise ContractError(f"{path}: missing columns {missing}")
    extra = [name for name in columns if name not in types]
    if extra:
        raise ContractError(f"{path}: columns {extra} are not in the contract")
    schema = pa.schema([pa.field(name, ARROW_TYPES[t]) for name, t in types.items()])
    return pa.table(
        {name: pa.array(columns[name], type=ARROW_TYPES[t]) for name, t in types.items()},
        schema=schema,
    )


def read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ContractError(f"{path}: not a valid Parquet file ({exc})") from None
