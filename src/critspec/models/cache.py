"""Model directories in the cache, built once and atomically (spec/06_MODELS_AND_HOOKS.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from canon import CANON
from critspec.errors import writable_dir


def build_once(final: Path, build: Callable[[Path], None]) -> Path:
    """final, built by build(tmp) in a temporary sibling and renamed into place if absent;
    a concurrent builder that renames first wins and its complete copy is used."""
    if final.is_dir():
        return final
    writable_dir(final.parent, f"model cache (set {CANON.PATH.CACHE_DIR_ENV} to move it)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
