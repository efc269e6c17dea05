"""A configured model entry to a loaded model (spec/06_MODELS_AND_HOOKS.md).

Embedded entries are first materialized, and gguf_package entries converted, into a
Hugging Face model directory in the cache; every source then loads through the same
from_pretrained path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers.utils import logging as hf_logging

from canon import CANON
from critspec.config.schema import ModelEntry
from critspec.errors import ConfigError
from critspec.models import gguf_package
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.models.loading import LoadedModel, load_model
from critspec.paths import cache_dir


def load_entry(entry: ModelEntry, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    loaded = _load(entry, device, dtype)
    if entry.SOURCE != CANON.ENUM.MODEL_SOURCE.EMBEDDED:
        _check_declared_shape(entry, loaded)
    return loaded


def _check_declared_shape(entry: ModelEntry, loaded: LoadedModel) -> None:
    """N_LAYERS / D_FF in a non-embedded entry (as `critspec init` writes them) must be the
    loaded model's: a config written for one checkpoint is not run on another."""
    for key, declared, actual in (
        ("N_LAYERS", entry.N_LAYERS, loaded.info.n_layers),
        ("D_FF", entry.D_FF, loaded.info.d_ff),
    ):
        if declared is not None and declared != actual:
            raise ConfigError(
                f"model {loaded.info.model_id}: the models file declares {key}: {declared}, "
                f"the loaded model has {actual}; fix the entry or point it at the right model"
            )


def _load(entry: ModelEntry, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    # Progress bars of weight loading are noise in a run's stderr, whose last line is the verdict.
    hf_logging.disable_progress_bar()
    if entry.SOURCE == CANON.ENUM.MODEL_SOURCE.EMBEDDED:
        model_dir = materialize(EmbeddedModelDef.from_canon(entry.model_dump()), cache_dir())
        return load_model(source=entry.SOURCE, device=device, dtype=dtype, local_dir=model_dir)
    if entry.SOURCE == CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE:
        defn = gguf_package.GgufPackageDef.from_canon(entry.model_dump())
        model_dir = gguf_package.materialize(defn, cache_dir())
        return load_model(
            source=entry.SOURCE,
            device=device,
            dtype=dtype,
            local_dir=model_dir,
            model_id=Path(defn.file).stem,
        )
    if entry.SOURCE == CANON.ENUM.MODEL_SOURCE.LOCAL_DIR:
        return load_model(source=entry.SOURCE, device=device, dtype=dtype, local_dir=entry.PATH)
    return load_model(
        source=entry.SOURCE,
        device=device,
        dtype=dtype,
        hf_id=entry.HF_ID,
        revision=entry.REVISION,
        allow_hub=entry.ALLOW_HUB,
    )
