"""Where the project's spec, generated files and configs live.

critspec runs from a checkout: spec/, canon/, contracts/ and configs/ sit at the
repository root, next to the generated `canon` package.
"""

from __future__ import annotations

import os
from pathlib import Path

from canon import CANON

SPEC_DIRNAME = "spec"


def project_root() -> Path:
    """The checkout root (this file is src/critspec/paths.py)."""
    return Path(__file__).resolve().parents[2]


def spec_dir() -> Path:
    return project_root() / SPEC_DIRNAME


def canon_dir() -> Path:
    return project_root() / CANON.PATH.CANON_DIR


def contracts_dir() -> Path:
    return project_root() / CANON.PATH.CONTRACTS_DIR


def cache_dir() -> Path:
    """Cache for materialized embedded models; overridable by CANON.PATH.CACHE_DIR_ENV."""
    override = os.environ.get(CANON.PATH.CACHE_DIR_ENV)
    return Path(override) if override else project_root() / CANON.PATH.CACHE_DIR


def checkout_root(start: Path) -> Path:
    """The critspec checkout holding `start`: the nearest directory at or above it with a
    spec/canon.yaml. `critspec generate` writes there, whatever tree is installed."""
    from critspec.errors import ConfigError
    from critspec.spec.load import CANON_FILE

    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / SPEC_DIRNAME / CANON_FILE).is_file():
            return candidate
    raise ConfigError(
        f"{start}: no {SPEC_DIRNAME}/{CANON_FILE} here or above; run it inside a critspec "
        "checkout or pass --root DIR"
    )
