"""Seeds from semantic keys (spec/07_RUNS_RECORDS_LOGGING.md): never from a run id or the clock.

A seed is the first 8 bytes of sha256 over the BOOTSTRAP_SEED and the keys,
each key rendered with repr() so that 1.0 and 1 or "1" stay distinct.
"""

from __future__ import annotations

import hashlib

import numpy as np

from canon import CANON


def derive_seed(*keys: object, base: int = CANON.CONST.BOOTSTRAP_SEED) -> int:
    text = "\x1f".join(repr(k) for k in (base, *keys))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng_for(*keys: object, base: int = CANON.CONST.BOOTSTRAP_SEED) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(derive_seed(*keys, base=base)))
