"""Device and dtype names to torch objects (torch only, no transformers import)."""

from __future__ import annotations

import torch

from canon import CANON
from critspec.errors import ConfigError

_DTYPES: dict[str, torch.dtype] = {
    CANON.ENUM.DTYPE.FP32: torch.float32,
    CANON.ENUM.DTYPE.BF16: torch.bfloat16,
    CANON.ENUM.DTYPE.FP16: torch.float16,
}


def resolve_device(requested: str) -> torch.device:
    """CANON.ENUM.DEVICE value -> torch.device; auto prefers CUDA; CUDA without CUDA fails."""
    if requested == CANON.ENUM.DEVICE.AUTO:
        cuda = torch.cuda.is_available()
        return torch.device(CANON.ENUM.DEVICE.CUDA if cuda else CANON.ENUM.DEVICE.CPU)
    if requested == CANON.ENUM.DEVICE.CUDA:
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {requested!r} requested but CUDA is not available; set runtime.device "
                f"to {CANON.ENUM.DEVICE.CPU!r} or {CANON.ENUM.DEVICE.AUTO!r}"
            )
        return torch.device(requested)
    if requested == CANON.ENUM.DEVICE.CPU:
        return torch.device(requested)
    raise ConfigError(
        f"unknown device {requested!r}; use one of "
        f"{[CANON.ENUM.DEVICE.AUTO, CANON.ENUM.DEVICE.CPU, CANON.ENUM.DEVICE.CUDA]}"
    )


def resolve_dtype(requested: str, device: torch.device) -> torch.dtype:
    """CANON.ENUM.DTYPE value -> torch.dtype; auto is bf16 on CUDA and fp32 on CPU."""
    if requested == CANON.ENUM.DTYPE.AUTO:
        cuda = device.type == CANON.ENUM.DEVICE.CUDA
        return _DTYPES[CANON.ENUM.DTYPE.BF16 if cuda else CANON.ENUM.DTYPE.FP32]
    if requested not in _DTYPES:
        raise ConfigError(
            f"unknown dtype {requested!r}; use one of {[CANON.ENUM.DTYPE.AUTO, *_DTYPES]}"
        )
    return _DTYPES[requested]


def dtype_name(dtype: torch.dtype) -> str:
    """The CANON.ENUM.DTYPE name of a torch dtype."""
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    raise ConfigError(f"dtype {dtype} is not one of {list(_DTYPES)}")
