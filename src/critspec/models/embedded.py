"""Embedded default models, materialized into real Hugging Face directories
(spec/06_MODELS_AND_HOOKS.md).

A small Llama-architecture causal LM per model role, defined by a CANON entry
(N_LAYERS, HIDDEN, D_FF, N_HEADS, MAX_POSITIONS, SEED) and the word-level
tokenizer over the synthetic vocabulary. Its weights come from an explicit
torch.Generator seeded by SEED, so the saved model.safetensors is byte-identical
on every materialization. The directory is then loaded through the same
from_pretrained path as any local or hub model (critspec.models.loading).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from canon import CANON
from critspec.data.synthetic import embedded_vocabulary
from critspec.data.tokenizer import build_word_level_tokenizer
from critspec.errors import ConfigError
from critspec.models.cache import build_once

# Bump when the architecture recipe or the init below changes: it is part of the
# cache key, so an old cache directory is never mistaken for a new definition.
MATERIALIZER_VERSION = 1
CACHE_KEY_HEX = 16
SAFETENSORS_SUFFIX = ".safetensors"
CONFIG_FILE = "config.json"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class EmbeddedModelDef:
    """Definition of one embedded model (CANON.MODEL.EMBEDDED_*)."""

    n_layers: int
    hidden: int
    d_ff: int
    n_heads: int
    max_positions: int
    seed: int

    @classmethod
    def from_canon(cls, entry: Mapping[str, Any]) -> EmbeddedModelDef:
        arch = entry.get("ARCH") or CANON.ENUM.SWIGLU_MODEL_TYPES[0]
        if arch not in CANON.ENUM.SWIGLU_MODEL_TYPES:
            raise ConfigError(
                f"embedded model ARCH {arch!r} is not a SwiGLU model type; "
                f"use one of {list(CANON.ENUM.SWIGLU_MODEL_TYPES)}"
            )
        # The config pins the materializer version, so it enters every run id: weights
        # built by another version of this code cannot hide behind an old id.
        wanted = entry.get("MATERIALIZER", MATERIALIZER_VERSION)
        if wanted != MATERIALIZER_VERSION:
            raise ConfigError(
                f"embedded model entry asks for MATERIALIZER {wanted}, this critspec builds "
                f"version {MATERIALIZER_VERSION}; set MATERIALIZER to {MATERIALIZER_VERSION}"
            )
        keys = ("N_LAYERS", "HIDDEN", "D_FF", "N_HEADS", "MAX_POSITIONS", "SEED")
        missing = [k for k in keys if entry.get(k) is None]
        if missing:
            raise ConfigError(f"embedded model entry lacks {', '.join(missing)}; add them")
        defn = cls(*(int(entry[k]) for k in keys))
        if defn.hidden % defn.n_heads:
            raise ConfigError(
                f"embedded model: HIDDEN {defn.hidden} is not divisible by N_HEADS {defn.n_heads}"
            )
        return defn


def cache_key(defn: EmbeddedModelDef, vocab: tuple[str, ...]) -> str:
    """First CACHE_KEY_HEX hex of sha256 over the definition, the vocabulary and the recipe."""
    doc = {
        "definition": dataclasses.asdict(defn),
        "vocabulary": list(vocab),
        "materializer_version": MATERIALIZER_VERSION,
    }
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:CACHE_KEY_HEX]


def _init_weights(model: torch.nn.Module, seed: int) -> None:
    """Seeded init, parameters visited in sorted name order.

    Norm gains are one; every other matrix is N(0, 1/fan_in) (embeddings N(0, 1)), so
    the gate and up pre-activations have unit scale and SiLU works in its non-linear
    range: u then has the heavy-ish tails that thresholded events need.
    """
    gen = torch.Generator().manual_seed(seed)  # CPU: the same stream on every machine
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            if p.ndim == 1:
                p.copy_(torch.ones_like(p))
                continue
            is_embedding = name.endswith("embed_tokens.weight")
            std = 1 if is_embedding else p.shape[1] ** -0.5
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)


def _build(defn: EmbeddedModelDef, out_dir: Path) -> None:
    tokenizer = build_word_level_tokenizer(embedded_vocabulary())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=defn.hidden,
        intermediate_size=defn.d_ff,
        num_hidden_layers=defn.n_layers,
        num_attention_heads=defn.n_heads,
        num_key_value_heads=defn.n_heads,
        max_position_embeddings=defn.max_positions,
        # Untied: an lm_head sharing the embedding would be a shared tensor that
        # safetensors refuses to save twice, and gives the head its own init.
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # The constructor's own init draws from the global RNG; fork it so that
    # materializing leaves the caller's RNG state untouched (all weights are
    # overwritten by _init_weights anyway).
    with torch.random.fork_rng(devices=[]):
        model = LlamaForCausalLM(config)
    _init_weights(model, defn.seed)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def materialize(defn: EmbeddedModelDef, cache_root: Path) -> Path:
    """The model directory cache_root/<cache key>; built atomically if absent, else reused."""
    final = Path(cache_root) / cache_key(defn, embedded_vocabulary())
    return build_once(final, lambda tmp: _build(defn, tmp))


def weights_sha256(model_dir: Path) -> str:
    """sha256 over the bytes of every *.safetensors file of model_dir, in sorted name order."""
    files = sorted(Path(model_dir).glob(f"*{SAFETENSORS_SUFFIX}"))
    if not files:
        raise ConfigError(f"no {SAFETENSORS_SUFFIX} weights in {model_dir}; save with safetensors")
    h = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
    return h.hexdigest()
