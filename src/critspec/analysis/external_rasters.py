"""Rasters made elsewhere, checked before anything is analyzed
(spec/12_STATISTICS_AND_BOOTSTRAP.md §6).

A raster file must conform to the `rasters` contract (spec/artifacts.yaml) with the
symbols C, N, L, T taken from its own A; an optional conditions table must conform to
`raster_conditions` and describe exactly those C conditions. Without a table each
condition c gets the generic key (SPIKE_DEF_ID.EXTERNAL, EXTERNAL_TARGET_RATE, c + 1)
and there is no gain axis. Every refusal is one ContractError or InputError line
(exit 2), raised before any run directory exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from canon import CANON
from critspec.errors import ContractError, regular_file
from critspec.store.hashing import sha256_file
from critspec.store.writers import npz_headers, parquet_rows, read_npz, read_parquet
from critspec.validate import contracts
from critspec.validate.artifact import validate_artifact
from critspec.validate.parquet_validator import check_row_count

RASTERS, CONDITIONS = "rasters", "raster_conditions"
# The raster_conditions coverage columns and the contract symbols they bind.
KEY_SYMBOLS = {"spike_def_id": "spike_def_ids", "target_rate": "target_rates", "g": "gains"}
PAIR = ["spike_def_id", "target_rate"]
KEY_COLUMNS = [*PAIR, "g"]


@dataclass(frozen=True)
class ExternalRasters:
    """Checked inputs: the arrays, the condition rows in cond_id order, the hashes."""

    A: np.ndarray  # uint16 [C, N, L, T]
    X: np.ndarray  # uint8 [C, N, L, T], X == (A > 0)
    seq_id: np.ndarray  # int64 [N], distinct
    conditions: pd.DataFrame  # the raster_conditions columns, row c is cond_id c
    has_gain_axis: bool  # a conditions table was given
    rasters_sha256: str
    conditions_sha256: str | None

    def bindings(self) -> dict[str, object]:
        """The contract symbols of these inputs (rasters' shape, the conditions' keys)."""
        C, N, L, T = self.A.shape
        out: dict[str, object] = {"C": C, "N": N, "L": L, "T": T}
        for column, symbol in KEY_SYMBOLS.items():
            out[symbol] = sorted(set(self.conditions[column].tolist()))
        return out


def _check_size(path: Path, what: str, cap: int) -> None:
    size = regular_file(path, what)
    if size == 0:
        raise ContractError(f"{path}: the {what} is an empty file")
    if size > cap:
        raise ContractError(f"{path}: the {what} is {size} bytes, above the bound {cap}; split it")


def raster_symbols(path: Path) -> dict[str, int]:
    """C, N, L, T from the header of A (nothing is unpacked): what the contract is bound to."""
    headers = npz_headers(path)
    if "A" not in headers:
        raise ContractError(f"{path}: missing array 'A' (contract {RASTERS})")
    shape = headers["A"].shape
    if len(shape) != 4:
        raise ContractError(f"{path}: A has shape {list(shape)}; the contract wants [C, N, L, T]")
    if min(shape) < 1:
        raise ContractError(f"{path}: A has shape {list(shape)}, with an empty axis")
    return dict(zip(("C", "N", "L", "T"), (int(n) for n in shape), strict=True))


def load_raster_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The arrays of a raster file that passes the rasters contract and what Phase 5
    needs beyond it; the contract symbols it was checked against."""
    _check_size(path, "raster file", CANON.CONST.NPZ_MAX_BYTES)
    symbols = raster_symbols(path)
    validate_artifact(RASTERS, path, symbols)
    arrays = read_npz(path)
    C, N, T = symbols["C"], symbols["N"], symbols["T"]
    if not np.array_equal(arrays["cond_id"], np.arange(C)):
        raise ContractError(f"{path}: cond_id must be 0..{C - 1} in order")
    if len(np.unique(arrays["seq_id"])) != N:
        raise ContractError(f"{path}: seq_id repeats a window; each sequence must be distinct")
    if not np.array_equal(arrays["X"].astype(bool), arrays["A"] > 0):
        raise ContractError(f"{path}: X differs from A > 0; X must be (A > 0).astype(uint8)")
    n_min = CANON.CONST.CONFIG_LIMIT.RASTER_WINDOWS_MIN
    if N < n_min:
        raise ContractError(
            f"{path}: {N} sequence(s); a sequence-bootstrap CI needs at least {n_min}"
        )
    if T < 2:
        raise ContractError(f"{path}: T = {T}; the circular-shift null needs T >= 2 tokens")
    return arrays, symbols


def _bindings_of(table: pd.DataFrame) -> dict[str, list]:
    """The coverage lists the table itself spans (a full grid is then checked against them)."""
    out = {}
    for column, symbol in KEY_SYMBOLS.items():
        if column in table.columns:
            out[symbol] = sorted(set(table[column].dropna().tolist()))
    return out


def load_conditions(path: Path, symbols: dict[str, int]) -> pd.DataFrame:
    """A raster_conditions table that passes its contract and describes the C conditions
    of the rasters, one baseline and one gstar per (spike definition, target rate)."""
    _check_size(path, "conditions table", CANON.CONST.PARQUET_MAX_BYTES)
    view = contracts.view(CONDITIONS, "columns")
    check_row_count(path, parquet_rows(path), view, {}, CONDITIONS)
    table = read_parquet(path).to_pandas()
    validate_artifact(CONDITIONS, path, {**symbols, **_bindings_of(table)})
    C = symbols["C"]
    table = table.sort_values("cond_id", kind="mergesort").reset_index(drop=True)
    if len(table) != C or not np.array_equal(table["cond_id"].to_numpy(), np.arange(C)):
        raise ContractError(
            f"{path}: {len(table)} condition rows with cond_id "
            f"{table['cond_id'].tolist()[:5]}…; the rasters have C = {C} conditions, "
            f"cond_id 0..{C - 1}: the table does not describe these rasters"
        )
    repeated = table.duplicated(KEY_COLUMNS)
    if repeated.any():
        first = table.loc[repeated, KEY_COLUMNS].iloc[0].tolist()
        raise ContractError(
            f"{path}: the key (spike_def_id, target_rate, g) = {first} names two conditions; "
            "each condition needs its own key"
        )
    if table["null_id"].notna().any():
        raise ContractError(f"{path}: null_id is set; rasters hold real conditions only")
    for (sd, r), group in table.groupby(PAIR, sort=True):
        for flag in ("is_baseline", "is_gstar"):
            n = int(group[flag].sum())
            if n != 1:
                raise ContractError(
                    f"{path}: ({sd}, target_rate={r:g}) has {n} rows with {flag}; "
                    "each (spike definition, target rate) needs exactly one"
                )
    return table[[c["name"] for c in view["columns"]]]


def generic_conditions(C: int) -> pd.DataFrame:
    """Without a table: condition c is (SPIKE_DEF_ID.EXTERNAL, EXTERNAL_TARGET_RATE, c + 1),
    no baseline, no gstar (spec/12 §6)."""
    cond_id = np.arange(C, dtype=np.int64)
    return pd.DataFrame(
        {
            "cond_id": cond_id,
            "spike_def_id": [CANON.ENUM.SPIKE_DEF_ID.EXTERNAL] * C,
            "target_rate": np.full(C, CANON.CONST.EXTERNAL_TARGET_RATE, dtype=np.float64),
            "g": (cond_id + 1).astype(np.float64),
            "is_baseline": np.zeros(C, dtype=bool),
            "is_gstar": np.zeros(C, dtype=bool),
            "null_id": [None] * C,
        }
    )


def load_external(rasters: Path, conditions: Path | None) -> ExternalRasters:
    """Both inputs checked (exit 2 on the first problem) and hashed."""
    arrays, symbols = load_raster_arrays(rasters)
    table = (
        generic_conditions(symbols["C"])
        if conditions is None
        else load_conditions(conditions, symbols)
    )
    return ExternalRasters(
        A=arrays["A"],
        X=arrays["X"],
        seq_id=arrays["seq_id"],
        conditions=table,
        has_gain_axis=conditions is not None,
        rasters_sha256=sha256_file(rasters),
        conditions_sha256=None if conditions is None else sha256_file(conditions),
    )


def gstar_of(conditions: pd.DataFrame) -> dict[tuple[str, float], float]:
    """(spike_def_id, target_rate) -> the gain the table marks is_gstar."""
    rows = conditions[conditions["is_gstar"]]
    return {
        (str(sd), float(r)): float(g)
        for sd, r, g in rows[["spike_def_id", "target_rate", "g"]].itertuples(index=False)
    }
