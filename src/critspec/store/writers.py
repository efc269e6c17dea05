"""Deterministic writers and strict readers for every artifact format
(spec/07_RUNS_RECORDS_LOGGING.md).

Same content, same bytes: JSON with sorted keys and Python's shortest
round-trip float repr (NaN/Infinity refused); NPZ as an uncompressed zip with
fixed member timestamps and sorted members; Parquet from an explicit schema
with no index; YAML with sorted keys in block style.

Readers are bounded (issue 7): YAML and JSON refuse duplicate keys, YAML more than
CANON.CONST.YAML_MAX_ALIASES aliases (no billion laughs), JSON and YAML refuse
nesting deeper than CANON.CONST.DOC_MAX_DEPTH, and an NPZ is checked member by
member from its zip directory and .npy headers before any array is read.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from canon import CANON
from critspec.errors import ContractError, CritspecError

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


def _too_deep(label: str) -> str:
    return f"{label}: nested deeper than {CANON.CONST.DOC_MAX_DEPTH} levels; no contract needs that"


def check_depth(obj: Any, label: str, error: type[CritspecError] = ContractError) -> Any:
    """`obj` unchanged, or `error` when containers nest deeper than DOC_MAX_DEPTH."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > CANON.CONST.DOC_MAX_DEPTH:
                raise error(_too_deep(label))
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return obj


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, refusing a repeated key (json keeps the last one silently; issue 19)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(
    text: str, label: str, error: type[CritspecError] = ContractError, nonfinite: bool = False
) -> Any:
    """JSON text read with the bounds of every JSON input: no repeated key, no nesting
    deeper than DOC_MAX_DEPTH (checked without recursion), NaN/Infinity only with
    `nonfinite` (Python's json reads them, so a pack mirroring a Python consumer must too)."""
    constant = float if nonfinite else _reject_constant
    try:
        doc = json.loads(text, parse_constant=constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise error(_too_deep(label)) from None
    except ValueError as exc:
        raise error(f"{label}: not valid JSON ({exc})") from None
    return check_depth(doc, label, error)


def _json_text(text: str, label: str, nonfinite: bool = False) -> Any:
    return parse_json(text, label, nonfinite=nonfinite)


def read_text(path: Path, error: type[CritspecError] = ContractError) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); is it a binary file?") from None


def read_json(path: Path, nonfinite: bool = False) -> Any:
    return _json_text(read_text(path), str(path), nonfinite)


def read_jsonl(path: Path) -> list[Any]:
    lines = read_text(path).splitlines()
    return [_json_text(line, f"{path}:{i}") for i, line in enumerate(lines, start=1)]


MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeys:
    """Refuses a mapping with a repeated key (PyYAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: list[Any] = []
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor` merges; explicit keys override it
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.append(key)
        return yaml.SafeLoader.construct_mapping(self, node, deep=deep)  # type: ignore[arg-type]


class UniqueKeySafeLoader(_UniqueKeys, yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a repeated key (PyYAML keeps the last)."""


class CUniqueKeySafeLoader(_UniqueKeys, yaml.CSafeLoader):
    """UniqueKeySafeLoader on libyaml's parser (several times faster): for the project's own
    spec files, read by every command; untrusted input keeps BoundedSafeLoader."""


class BoundedSafeLoader(UniqueKeySafeLoader):
    """Also refuses deep nesting and more than YAML_MAX_ALIASES aliases (expansion bombs)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > CANON.CONST.YAML_MAX_ALIASES:
                raise yaml.YAMLError(
                    f"more than {CANON.CONST.YAML_MAX_ALIASES} aliases (*name); "
                    "write the values out instead"
                )
        self._depth += 1
        try:
            if self._depth > CANON.CONST.DOC_MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {CANON.CONST.DOC_MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(
    text: str,
    label: str,
    error: type[CritspecError] = ContractError,
    loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = BoundedSafeLoader,
) -> Any:
    """One YAML document through a safe `loader`; any problem is `error` in one line."""
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) if mark is not None else str(exc)
        raise error(f"{label}: malformed YAML{at}: {problem}") from None
    except RecursionError:
        raise error(_too_deep(label)) from None
    return check_depth(data, label, error) if loader is BoundedSafeLoader else data


def read_yaml(
    path: Path,
    error: type[CritspecError] = ContractError,
    loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = BoundedSafeLoader,
) -> Any:
    return load_yaml(read_text(path, error), str(path), error, loader)


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


# What zipfile and zlib raise on corrupt, encrypted or unsupported members.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
)


@dataclass(frozen=True)
class NpyHeader:
    """What an NPZ member's .npy header declares, read without reading the array."""

    shape: tuple[int, ...]
    dtype: np.dtype


def _npy_header(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyHeader:
    name = info.filename[: -len(NPY_SUFFIX)]
    try:
        with zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _fortran, dtype = read(fh)
            header_len = fh.tell()
    except (*_ZIP_ERRORS, ValueError) as exc:
        raise ContractError(f"{path}: member {info.filename}: not a valid .npy ({exc})") from None
    if dtype.hasobject:
        raise ContractError(f"{path}: {name}: holds an object (pickled) array; refusing it")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if info.file_size != header_len + nbytes:
        raise ContractError(
            f"{path}: {name}: header declares {list(shape)} {dtype} ({nbytes} bytes) but the "
            f"member holds {info.file_size - header_len}; the file is corrupt"
        )
    return NpyHeader(tuple(shape), dtype)


def npz_headers(path: Path) -> dict[str, NpyHeader]:
    """Every array's declared shape and dtype, from the zip directory and .npy headers only.

    Refuses an empty file, a bare .npy, a non-zip, members that are not .npy, and
    declared sizes above CANON.CONST.NPZ_MAX_BYTES, before anything is decompressed.
    """
    with path.open("rb") as fh:
        magic = fh.read(len(np.lib.format.MAGIC_PREFIX))
    if not magic:
        raise ContractError(f"{path}: empty file, not an NPZ")
    if magic == np.lib.format.MAGIC_PREFIX:
        raise ContractError(f"{path}: a bare .npy array, not an .npz archive; save with np.savez")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if not infos:
                raise ContractError(f"{path}: an NPZ with no arrays")
            total = sum(info.file_size for info in infos)
            if total > CANON.CONST.NPZ_MAX_BYTES:
                raise ContractError(
                    f"{path}: declares {total} uncompressed bytes, above the bound "
                    f"{CANON.CONST.NPZ_MAX_BYTES}; refusing to unpack it"
                )
            out = {}
            for info in infos:
                if not info.filename.endswith(NPY_SUFFIX) or info.is_dir():
                    raise ContractError(f"{path}: member {info.filename!r} is not a .npy array")
                out[info.filename[: -len(NPY_SUFFIX)]] = _npy_header(path, zf, info)
            return out
    except (*_ZIP_ERRORS, ValueError) as exc:  # ValueError: e.g. a non-UTF-8 member name
        raise ContractError(f"{path}: not a valid NPZ (zip) file ({exc})") from None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays, after npz_headers has bounded what they may hold."""
    npz_headers(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (*_ZIP_ERRORS, ValueError) as exc:
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


def parquet_rows(path: Path) -> int:
    """The row count a Parquet footer declares, read without decoding any column; a
    duplicate column name (which name lookups cannot tell apart) is refused here."""
    try:
        meta = pq.read_metadata(path)
        names = meta.schema.to_arrow_schema().names
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # e.g. a non-UTF-8 name
        raise ContractError(f"{path}: not a valid Parquet file ({_one_line(exc)})") from None
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError(
            f"{path}: duplicate column name {duplicates[0]!r}; each column must be unique"
        )
    return int(meta.num_rows)


def read_parquet(path: Path) -> pa.Table:
    """The table, refusing duplicate column names (which name lookups cannot tell apart)."""
    parquet_rows(path)
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:  # e.g. a non-UTF-8 name
        raise ContractError(f"{path}: not a valid Parquet file ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
