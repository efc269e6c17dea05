"""Validate one artifact file against its contract, whatever its format (spec/00_OVERVIEW.md)."""

from __future__ import annotations

from pathlib import Path

from canon import CANON
from critspec.errors import ContractError, regular_file
from critspec.validate import (
    archive_validator,
    contracts,
    csv_validator,
    figure_validator,
    html_validator,
    json_validator,
    npz_validator,
    parquet_validator,
)
from critspec.validate.bindings import Bindings


def validate_artifact(contract_id: str, path: Path, bindings: Bindings | None = None) -> None:
    """Raise ContractError with one line naming the first violation."""
    entry = contracts.entry(contract_id)
    regular_file(path, f"artifact (contract {contract_id})", ContractError)
    b = bindings or {}
    fmt = entry["format"]
    if fmt == CANON.ENUM.ARTIFACT_FORMAT.NPZ:
        npz_validator.validate(path, contracts.view(contract_id, "arrays"), b, contract_id)
    elif fmt == CANON.ENUM.ARTIFACT_FORMAT.PARQUET:
        parquet_validator.validate(path, contracts.view(contract_id, "columns"), b, contract_id)
    elif fmt == CANON.ENUM.ARTIFACT_FORMAT.CSV:
        csv_validator.validate(path, contracts.view(contract_id, "columns"), b, contract_id)
    elif fmt == CANON.ENUM.ARTIFACT_FORMAT.FIGURE:
        figure_validator.validate(path, contract_id)
    elif fmt == CANON.ENUM.ARTIFACT_FORMAT.HTML:
        html_validator.validate(path, contract_id)
    elif fmt == CANON.ENUM.ARTIFACT_FORMAT.ARCHIVE:
        archive_validator.validate(path, contract_id)
    else:
        json_validator.validate(path, contracts.view(contract_id, "schema"), fmt, b, contract_id)
