"""Consistency checks across a run's own tables (spec/07_RUNS_RECORDS_LOGGING.md §3): what
catches a run rewritten together with its record, whose files all hash as recorded.

- Every CSV table equals its Parquet twin (`mirrors`), cell by cell (NaN and empty alike).
- Every estimate with a CI lies inside it: `low <= x <= high` for each column `x` that has
  `x_ci_low` and `x_ci_high` in a Phase 5 summary (spec/12_STATISTICS_AND_BOOTSTRAP.md §3),
  where all three are finite, up to `CANON.CONST.CI_CONTAINS_REL_TOL` of their scale.
- The gstar a run reports (identifiability's `gstar`, the summary's `is_gstar` row) is the
  gstar of the run it consumed.

Each failure is one ContractError naming the table and the row (exit 2).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from canon import CANON
from critspec.errors import ContractError
from critspec.store.writers import read_json, read_parquet
from critspec.validate import contracts, csv_validator

CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
# The tables whose CIs are percentile intervals of smooth resample statistics (pooled
# ratios, their differences, chi): a point estimate outside them is a rewritten table.
# The fitted exponents' CIs (crackling) are refitted at a fixed xmin and |.| enters dcc,
# so a genuine estimate may lie outside those; they are not checked.
CI_TABLES = ("summary",)
GSTAR, IDENT, SUMMARY = "gstar", "identifiability", "summary"


def check_run_tables(run_dir: Path, record: dict[str, Any]) -> None:
    """All checks of this module on a sealed run whose files already match its record."""
    paths = {item["contract"]: run_dir / item["relative_path"] for item in record["artifact_index"]}
    for cid, path in paths.items():
        if contracts.entry(cid)["format"] == CANON.ENUM.ARTIFACT_FORMAT.CSV:
            twin = contracts.view(cid, "columns")["artifact"]
            if twin in paths:
                check_csv_twin(path, paths[twin], cid)
    for cid in CI_TABLES:
        if cid in paths:
            check_estimates_in_ci(paths[cid])
    if IDENT in paths or SUMMARY in paths:
        consumed = consumed_gstar(run_dir, record)
        if consumed is not None:
            check_gstar(consumed, paths.get(IDENT), paths.get(SUMMARY))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _row(table: pa.Table, i: int, key: list[str]) -> str:
    cells = ", ".join(f"{k}={table.column(k)[i].as_py()!r}" for k in key)
    return f"row {i}" + (f" ({cells})" if cells else "")


def check_csv_twin(csv_path: Path, parquet_path: Path, csv_cid: str) -> None:
    """The CSV holds exactly the Parquet table's cells."""
    view = contracts.view(csv_cid, "columns")
    csv = csv_validator.read_table(csv_path, view["columns"])
    twin = read_parquet(parquet_path)
    if csv.num_rows != twin.num_rows:
        raise ContractError(
            f"{csv_path}: {csv.num_rows} rows, its Parquet twin {parquet_path.name} has "
            f"{twin.num_rows}; the two must hold the same table"
        )
    key = list(view.get("row_key") or [])
    for spec in view["columns"]:
        name = spec["name"]
        mine, theirs = csv.column(name).to_pylist(), twin.column(name).to_pylist()
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if not (a == b or (_missing(a) and _missing(b))):
                raise ContractError(
                    f"{csv_path}: {_row(twin, i, key)}, column {name}: {a!r} differs from "
                    f"{b!r} in its Parquet twin {parquet_path.name}; the CSV or the Parquet "
                    "table was rewritten"
                )


def _finite(*values: Any) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def check_estimates_in_ci(path: Path) -> None:
    """Each estimate lies inside its own CI (where estimate and bounds are finite)."""
    table = read_parquet(path)
    names = table.column_names
    key = [k for k in ("spike_def_id", "target_rate", "g", "adjacency") if k in names]
    for name in names:
        low, high = name + CI_LOW, name + CI_HIGH
        if low not in names or high not in names:
            continue
        columns = zip(
            table.column(name).to_pylist(),
            table.column(low).to_pylist(),
            table.column(high).to_pylist(),
            strict=True,
        )
        for i, (x, lo, hi) in enumerate(columns):
            if not _finite(x, lo, hi):
                continue
            tol = CANON.CONST.CI_CONTAINS_REL_TOL * max(1.0, abs(x), abs(lo), abs(hi))
            if not lo - tol <= x <= hi + tol:
                raise ContractError(
                    f"{path}: {_row(table, i, key)}: {name} {x!r} lies outside its own CI "
                    f"[{lo!r}, {hi!r}]; the table was rewritten"
                )


def consumed_gstar(run_dir: Path, record: dict[str, Any]) -> dict[tuple[str, float], float] | None:
    """gstar per (spike_def_id, target_rate) of the gstar artifact this run consumed (already
    re-hashed against this run's record by the dependency check); None if it consumed none."""
    for dep in record["dependencies"]:
        for art in dep["artifacts"]:
            if art["contract"] == GSTAR and dep["run_id"] is not None:
                doc = read_json(run_dir.parent / dep["run_id"] / art["relative_path"])
                return {
                    (c["spike_def_id"], c["target_rate"]): c["gstar"] for c in doc["conditions"]
                }
    return None


def check_gstar(
    consumed: dict[tuple[str, float], float], ident: Path | None, summary: Path | None
) -> None:
    """Identifiability's gstar and the summary's is_gstar rows are the consumed gstar."""
    if ident is not None:
        table = read_parquet(ident)
        rows = zip(
            *(table.column(c).to_pylist() for c in ("spike_def_id", "target_rate", GSTAR)),
            strict=True,
        )
        for i, (sd, rate, g) in enumerate(rows):
            want = consumed.get((sd, rate))
            if want != g:
                raise ContractError(
                    f"{ident}: row {i} (spike_def_id={sd!r}, target_rate={rate!r}): gstar {g!r}, "
                    f"but the consumed gstar run selected {want!r}; the table was rewritten"
                )
    if summary is not None:
        table = read_parquet(summary)
        cols = ("spike_def_id", "target_rate", "g", "is_gstar")
        marked: dict[tuple[str, float], list[tuple[int, float]]] = {}
        for i, (sd, rate, g, star) in enumerate(
            zip(*(table.column(c).to_pylist() for c in cols), strict=True)
        ):
            if star:
                marked.setdefault((sd, rate), []).append((i, g))
        for (sd, rate), want in sorted(consumed.items()):
            got = marked.get((sd, rate), [])
            if len(got) != 1 or got[0][1] != want:
                where = f"row {got[0][0]} " if got else ""
                raise ContractError(
                    f"{summary}: {where}(spike_def_id={sd!r}, target_rate={rate!r}): "
                    f"is_gstar marks gains {[g for _, g in got]}, but the consumed gstar run "
                    f"selected {want!r}; the table was rewritten"
                )
