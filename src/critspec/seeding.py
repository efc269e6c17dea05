"""Seeds from semantic keys (spec/07_RUNS_RECORDS_LOGGING.md): never from a run id or the clock.

A seed is the first 8 bytes of sha256 over the BOOTSTRAP_SEED and the keys,
each key rendered with repr() so that 1.0 and 1 or "1" stay distinct.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from canon import CANON

_SEP = "\x1f"


def derive_seed(*keys: object, base: int = CANON.CONST.BOOTSTRAP_SEED) -> int:
    text = _SEP.join(repr(k) for k in (base, *keys))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def derive_seeds(
    prefix: tuple[object, ...],
    suffixes: Iterable[tuple[object, ...]],
    base: int = CANON.CONST.BOOTSTRAP_SEED,
) -> np.ndarray:
    """uint64 [n]: derive_seed(*prefix, *suffix) for every (non-empty) suffix.

    The same digests, with the shared prefix hashed once: the nulls draw one seed per
    lattice row, thousands per condition."""
    head = hashlib.sha256((_SEP.join(repr(k) for k in (base, *prefix)) + _SEP).encode("utf-8"))
    out = []
    for suffix in suffixes:
        if not suffix:
            raise ValueError("derive_seeds needs a non-empty suffix per seed")
        h = head.copy()
        h.update(_SEP.join(repr(k) for k in suffix).encode("utf-8"))
        out.append(int.from_bytes(h.digest()[:8], "big"))
    return np.array(out, dtype=np.uint64)


def rng_for(*keys: object, base: int = CANON.CONST.BOOTSTRAP_SEED) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(derive_seed(*keys, base=base)))
