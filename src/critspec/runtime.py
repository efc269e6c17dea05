"""Determinism settings and the environment facts a run record pins
(spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from canon import CANON
from critspec import __version__
from critspec.paths import SPEC_DIRNAME, project_root

SOURCES_DIRNAME = "src"
RUNNERS_DIRNAME = "runners"
SOURCE_SUFFIXES = (".py", ".yaml", ".json", ".j2")  # .j2: the release report template
# Never code, even under the code folders: byte-compiled files and packaging metadata.
CACHE_PARTS = frozenset({"__pycache__"})

VERSIONED_PACKAGES = ("torch", "transformers", "numpy", "pandas", "pyarrow")
# cuBLAS needs a fixed workspace for deterministic GEMMs; it must be set before CUDA starts.
CUBLAS_WORKSPACE = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def configure_determinism(torch_threads: int) -> dict[str, Any]:
    """Deterministic algorithms on, TF32 off, a fixed thread count; returns the flags as set."""
    os.environ.setdefault(*CUBLAS_WORKSPACE)
    import torch

    set_deterministic_algorithms(torch)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(torch_threads)
    return determinism_flags()


def set_deterministic_algorithms(torch: Any) -> None:
    """torch.use_deterministic_algorithms(True) without its import of torch._inductor.config.

    That import loads the whole torch.compile stack (about 3 s on this project's CI machine,
    paid by every phase command, a refused rerun included) to set a flag only compiled
    code reads. critspec never compiles, so the inductor flag is set only when that module
    is already loaded; the flag eager kernels read is the same one the public call sets.
    """
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:  # a torch without the private setter: the public call
        torch.use_deterministic_algorithms(True)
        return
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True
    set_flag(True, warn_only=False)


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


def code_files(root: Path) -> list[Path]:
    """The files whose content can change results: the sources under src/ and runners/,
    the machine-readable spec/ and the generated canon/ and contracts/ (spec/07 §5).
    Prose (.md), tests, the README, configs (hashed with each run's config document) and
    caches are not code."""
    tops = (SOURCES_DIRNAME, RUNNERS_DIRNAME, SPEC_DIRNAME, CANON.PATH.CANON_DIR)
    out = []
    for top in (*tops, CANON.PATH.CONTRACTS_DIR):
        for path in sorted((root / top).rglob("*")):
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and not _cache(path, root):
                out.append(path)
    return out


def _cache(path: Path, root: Path) -> bool:
    return any(part in CACHE_PARTS for part in path.relative_to(root).parts)


def source_sha256(root: Path | None = None) -> str:
    """sha256 over the code files of the checkout at `root` (default: this one): each
    file's path relative to the root, length-prefixed, and the sha256 of its bytes."""
    root = root or project_root()
    digest = hashlib.sha256()
    for path in code_files(root):
        rel = path.relative_to(root).as_posix().encode()
        digest.update(len(rel).to_bytes(8, "little") + rel)
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@functools.cache
def code_version() -> str:
    """The package version plus a hash of the code files (`<version>+src.<hash>`), not the
    git commit: a README or test edit keeps every run id, a one-line change to src/
    changes them (spec/07_RUNS_RECORDS_LOGGING.md §2, §5).

    Cached: the code does not change under a running process.
    """
    return version_of(project_root())


def version_of(root: Path) -> str:
    """The code version of the checkout at `root`."""
    return f"{__version__}+src.{source_sha256(root)[: CANON.CONST.RUN_HASH_LEN]}"
