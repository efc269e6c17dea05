"""Determinism settings and the environment facts a run record pins
(spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from canon import CANON
from critspec import __version__
from critspec.paths import SPEC_DIRNAME, project_root

RUNNERS_DIRNAME = "runners"
SOURCE_SUFFIXES = (".py", ".yaml", ".json")

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


def source_sha256() -> str:
    """sha256 over the code that makes results: the package, the runners and the spec."""
    root = project_root()
    digest = hashlib.sha256()
    for top in (Path(__file__).parent, root / RUNNERS_DIRNAME, root / SPEC_DIRNAME):
        for path in sorted(top.rglob("*")):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES:
                rel = path.relative_to(top.parent).as_posix().encode()
                digest.update(len(rel).to_bytes(8, "little") + rel)
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def code_version() -> str:
    """The package version plus the checkout's commit; a modified or non-git checkout adds
    a hash of its sources, so that different code never reuses a run
    (spec/07_RUNS_RECORDS_LOGGING.md).

    Cached: the code does not change under a running process.
    """
    sources = source_sha256()[: CANON.CONST.RUN_HASH_LEN]
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return f"{__version__}+src.{sources}"
    return f"{__version__}+g{commit}" + (f".dirty.{sources}" if dirty else "")
