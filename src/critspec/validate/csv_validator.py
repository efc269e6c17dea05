"""CSV tables against the column contract of their Parquet twin (`mirrors`): the same
header in the same order, every cell parsing as its column's type, and the same
column rules, row key and coverage as the Parquet table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from canon import CANON
from critspec.errors import ContractError
from critspec.store.writers import ARROW_TYPES
from critspec.validate.bindings import Bindings
from critspec.validate.parquet_validator import (
    check_column,
    check_coverage,
    check_row_count,
    check_row_key,
)

FLOAT_TYPES = {"float64", "float32"}


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            first = fh.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise ContractError(f"{path}: not UTF-8 text") from None
    return first.split(",") if first else []


def read_table(path: Path, cols: list[dict[str, Any]]) -> pa.Table:
    """The CSV typed by the contract; empty cells are null (NaN for float columns)."""
    names = [c["name"] for c in cols]
    header = _header(path)
    if header != names:
        missing = [n for n in names if n not in header]
        extra = [n for n in header if n not in names]
        what = (
            f"missing column {missing[0]!r}"
            if missing
            else f"unexpected column {extra[0]!r}"
            if extra
            else "columns out of contract order"
        )
        raise ContractError(f"{path}: {what}")
    options = pacsv.ConvertOptions(
        column_types={c["name"]: ARROW_TYPES[c["type"]] for c in cols},
        null_values=[""],
        strings_can_be_null=True,
        true_values=["true"],
        false_values=["false"],
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ContractError(f"{path}: not a CSV table of this contract ({exc})") from None
    for c in cols:
        if c["type"] in FLOAT_TYPES and c.get("allow_nan", False):
            i = table.column_names.index(c["name"])
            filled = table.column(i).fill_null(np.nan)
            table = table.set_column(i, c["name"], filled)
    return table


def validate(path: Path, contract: dict[str, Any], b: Bindings, cid: str) -> None:
    size = path.stat().st_size
    if size > CANON.CONST.CSV_MAX_BYTES:
        raise ContractError(
            f"{path}: {size} bytes, above the CSV bound of {CANON.CONST.CSV_MAX_BYTES} bytes "
            f"(contract {cid}); refusing to parse it"
        )
    table = read_table(path, contract["columns"])
    check_row_count(path, table.num_rows, contract, b, cid)
    for spec in contract["columns"]:
        check_column(path, table.column(spec["name"]), spec)
    if contract["row_key"]:
        check_row_key(path, table, contract["row_key"])
    if contract["coverage"]:
        check_coverage(path, table, contract["coverage"], b, cid)
