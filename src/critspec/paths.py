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
