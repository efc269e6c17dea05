"""Determinism settings and the environment facts a run record pins (DESIGN §2, §3)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from canon import CANON
from critspec import __version__
from critspec.paths import project_root

VERSIONED_PACKAGES = ("torch", "transformers", "numpy", "pandas", "pyarrow")
# cuBLAS needs a fixed workspace for deterministic GEMMs; it must be set before CUDA starts.
CUBLAS_WORKSPACE = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def configure_determinism(torch_threads: int) -> dict[str, Any]:
    """Deterministic algorithms on, TF32 off, a fixed thread count; returns the flags as set."""
    os.environ.setdefault(*CUBLAS_WORKSPACE)
    import torch

    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(torch_threads)
    return determinism_flags()


def determinism_flags() -> dict[str, Any]:
    import torch

    return {
        "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "torch_threads": torch.get_num_threads(),
        "bootstrap_seed": CANON.CONST.BOOTSTRAP_SEED,
    }


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def code_version() -> str:
    """The package version plus the checkout's commit (and '.dirty' when modified)."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")
