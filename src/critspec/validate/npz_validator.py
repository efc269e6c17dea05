"""NPZ artifacts against their array contract: keys, dtype, shape, finiteness, bounds.

Keys, dtypes and shapes are checked from the .npy headers before any array is
read, so a file declaring arrays larger than the contract allows is refused
without unpacking it (issue 7).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from critspec.errors import ContractError
from critspec.store.writers import npz_headers, read_npz
from critspec.validate import bindings as bind
from critspec.validate.bindings import Bindings


def validate(path: Path, contract: dict[str, Any], b: Bindings, cid: str) -> None:
    headers = npz_headers(path)
    want = contract["arrays"]
    missing = [name for name in want if name not in headers]
    if missing:
        raise ContractError(f"{path}: missing array {missing[0]!r} (contract {cid})")
    extra = [name for name in headers if name not in want]
    if extra:
        raise ContractError(f"{path}: unexpected array {extra[0]!r} (contract {cid})")
    for name, spec in want.items():
        check_declared(path, name, headers[name].dtype, headers[name].shape, spec, b, cid)
    arrays = read_npz(path)
    for name, spec in want.items():
        check_values(path, name, arrays[name], spec)


def check_declared(
    path: Path,
    name: str,
    dtype: np.dtype,
    declared: tuple[int, ...],
    spec: dict[str, Any],
    b: Bindings,
    cid: str,
) -> None:
    if dtype != np.dtype(spec["dtype"]):
        raise ContractError(f"{path}: {name}: dtype {dtype}, expected {spec['dtype']}")
    shape = tuple(bind.need(b, d, cid) if isinstance(d, str) else d for d in spec["shape"])
    if declared != shape:
        raise ContractError(
            f"{path}: {name}: shape {list(declared)}, expected {spec['shape']} = {list(shape)}"
        )


def check_values(path: Path, name: str, array: np.ndarray, spec: dict[str, Any]) -> None:
    if array.size == 0:
        return
    if spec.get("finite") and np.issubdtype(array.dtype, np.floating):
        bad = np.argwhere(~np.isfinite(array))
        if bad.size:
            raise ContractError(
                f"{path}: {name}: non-finite value at index {bad[0].tolist()} "
                f"({bad.shape[0]} in all)"
            )
    lo, hi = spec.get("minimum"), spec.get("maximum")
    if lo is not None and array.min() < lo:
        raise ContractError(f"{path}: {name}: minimum {array.min()} below {lo}")
    if hi is not None and array.max() > hi:
        raise ContractError(f"{path}: {name}: maximum {array.max()} above {hi}")
