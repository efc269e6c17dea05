"""Parquet artifacts against their column contract: columns, types, nulls, NaN,
enums, bounds, unique row key and coverage of the configured lists.

Types are logical (issue 7): a contract `string` accepts every Arrow encoding of
text (string, large_string, string_view, and dictionary-encoded strings, as pandas
2, pandas 3 and pyarrow write them); integer and float widths are exact.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from canon import CANON
from critspec.errors import ContractError
from critspec.store.writers import ARROW_TYPES, parquet_rows, read_parquet
from critspec.validate import bindings as bind
from critspec.validate.bindings import Bindings

# Configured floats (gains, rates) match a written value within a few ulps.
KEY_FLOAT_RTOL = 4 * np.finfo(np.float64).eps


def max_rows(contract: dict[str, Any], b: Bindings, cid: str) -> int:
    """The most rows a table of this contract can hold: when its unique row key is exactly
    its coverage columns, the product of the bound lists' lengths; else PARQUET_MAX_ROWS."""
    cap = CANON.CONST.PARQUET_MAX_ROWS
    coverage = contract["coverage"]
    if coverage and set(contract["row_key"]) == set(coverage):
        # Coverage needs its lists bound anyway: say so before reading any row.
        lists = [list(bind.need(b, lst, cid)) for lst in coverage.values()]
        return min(cap, math.prod(len(v) for v in lists))
    return cap


def check_row_count(
    path: Path, n_rows: int, contract: dict[str, Any], b: Bindings, cid: str
) -> None:
    cap = max_rows(contract, b, cid)
    if n_rows > cap:
        raise ContractError(
            f"{path}: {n_rows} rows, above the {cap} this contract allows (contract {cid}); "
            "refusing to read them"
        )


def validate(path: Path, contract: dict[str, Any], b: Bindings, cid: str) -> None:
    size = path.stat().st_size
    if size > CANON.CONST.PARQUET_MAX_BYTES:
        raise ContractError(
            f"{path}: {size} bytes, above the Parquet bound of "
            f"{CANON.CONST.PARQUET_MAX_BYTES} bytes (contract {cid})"
        )
    # The row count comes from the footer, before any column is decoded (issue 19).
    check_row_count(path, parquet_rows(path), contract, b, cid)
    table = read_parquet(path)
    try:
        _validate_table(path, table, contract, b, cid)
    except (pa.ArrowException, UnicodeDecodeError) as exc:  # e.g. invalid UTF-8 in a string
        raise ContractError(f"{path}: unreadable values ({exc})") from None


def _validate_table(
    path: Path, table: pa.Table, contract: dict[str, Any], b: Bindings, cid: str
) -> None:
    cols = contract["columns"]
    names = [c["name"] for c in cols]
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise ContractError(f"{path}: missing column {missing[0]!r} (contract {cid})")
    extra = [n for n in table.column_names if n not in names]
    if extra:
        raise ContractError(f"{path}: unexpected column {extra[0]!r} (contract {cid})")
    for spec in cols:
        check_column(path, table.column(spec["name"]), spec)
    if contract["row_key"]:
        check_row_key(path, table, contract["row_key"])
    if contract["coverage"]:
        check_coverage(path, table, contract["coverage"], b, cid)


def _is_text(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )


def logical(column: pa.ChunkedArray, contract_type: str) -> pa.ChunkedArray | None:
    """`column` as the contract's physical type, or None when its type does not fit.

    Only text has several encodings; every other type must match exactly.
    """
    want = ARROW_TYPES[contract_type]
    if column.type == want:
        return column
    if want != pa.string():
        return None
    arrow_type = column.type
    if pa.types.is_dictionary(arrow_type) and _is_text(arrow_type.value_type):
        return column.cast(pa.string())
    if _is_text(arrow_type):
        return column.cast(pa.string())
    return None


def check_column(path: Path, column: pa.ChunkedArray, spec: dict[str, Any]) -> None:
    name = spec["name"]
    as_contract = logical(column, spec["type"])
    if as_contract is None:
        raise ContractError(
            f"{path}: column {name}: type {column.type}, expected {ARROW_TYPES[spec['type']]}"
        )
    column = as_contract
    if column.null_count and not spec.get("nullable", False):
        raise ContractError(f"{path}: column {name}: {column.null_count} null values")
    values = column.drop_null().to_numpy(zero_copy_only=False)
    if spec.get("enum") is not None:
        bad = sorted(set(values.tolist()) - set(spec["enum"]))
        if bad:
            raise ContractError(f"{path}: column {name}: value {bad[0]!r} not in {spec['enum']}")
        return
    if not np.issubdtype(values.dtype, np.number) or values.size == 0:
        return
    if np.issubdtype(values.dtype, np.floating):
        nan = np.isnan(values)
        if nan.any() and not spec.get("allow_nan", False):
            raise ContractError(f"{path}: column {name}: NaN at row {int(np.argmax(nan))}")
        if np.isinf(values).any():
            raise ContractError(f"{path}: column {name}: infinite value")
        values = values[~nan]
        if values.size == 0:
            return
    lo, hi, xlo = spec.get("minimum"), spec.get("maximum"), spec.get("exclusive_minimum")
    if lo is not None and values.min() < lo:
        raise ContractError(f"{path}: column {name}: value {values.min()} below minimum {lo}")
    if xlo is not None and values.min() <= xlo:
        raise ContractError(f"{path}: column {name}: value {values.min()} not above {xlo}")
    if hi is not None and values.max() > hi:
        raise ContractError(f"{path}: column {name}: value {values.max()} above maximum {hi}")


def _key_rows(table: pa.Table, key: list[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table.column(k).to_pylist() for k in key), strict=True))


def check_row_key(path: Path, table: pa.Table, key: list[str]) -> None:
    seen: set[tuple[Any, ...]] = set()
    for row in _key_rows(table, key):
        if row in seen:
            raise ContractError(f"{path}: duplicate row key {dict(zip(key, row, strict=True))}")
        seen.add(row)


def _canonical(value: Any, configured: list[Any]) -> Any:
    if isinstance(value, float):
        for c in configured:
            if isinstance(c, int | float) and abs(value - c) <= KEY_FLOAT_RTOL * max(abs(c), 1.0):
                return c
    return value


def check_coverage(
    path: Path, table: pa.Table, coverage: dict[str, str], b: Bindings, cid: str
) -> None:
    cols = list(coverage)
    lists = {col: list(bind.need(b, lst, cid)) for col, lst in coverage.items()}
    found = {
        tuple(_canonical(v, lists[c]) for c, v in zip(cols, row, strict=True))
        for row in _key_rows(table, cols)
    }
    expected = set(itertools.product(*(lists[c] for c in cols)))
    missing = sorted(expected - found, key=str)
    if missing:
        first = dict(zip(cols, missing[0], strict=True))
        raise ContractError(
            f"{path}: incomplete coverage: {len(missing)} combination(s) missing, first {first}"
        )
    outside = sorted(found - expected, key=str)
    if outside:
        first = dict(zip(cols, outside[0], strict=True))
        raise ContractError(f"{path}: row outside the configured coverage: {first}")
