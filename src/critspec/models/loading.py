"""Loading a causal LM fully onto one device, with its provenance (spec/07_RUNS_RECORDS_LOGGING.md,
spec/06_MODELS_AND_HOOKS.md).

Embedded, local and hub models all go through the same from_pretrained call:
safetensors only, no remote code, an explicit dtype, no device_map (so nothing
is offloaded), and no network unless the caller allows the hub. After the move
to the requested device every parameter and buffer is checked to be there;
a model that did not load fully fails closed instead of running elsewhere.
Before any of that the checkpoint's config.json is read with the bounded JSON
reader: a model type critspec has no adapter for, or one that needs the
repository's own code, is refused in one line before a weight is read, with
transformers' logging and warnings kept out of the way.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from canon import CANON
from critspec.errors import ConfigError, ContractError
from critspec.models.adapters import MlpSites, adapt, arch_family
from critspec.models.device import dtype_name
from critspec.models.embedded import CONFIG_FILE, SAFETENSORS_SUFFIX, weights_sha256
from critspec.store.writers import read_json

# Eager attention: the same plain matmul + softmax on every backend. SDPA picks a
# kernel (flash, memory-efficient, math) by device, dtype and shape, so results
# could change with the hardware; at T <= a few hundred tokens eager costs little.
ATTN_IMPLEMENTATION = "eager"
META_DEVICE = "meta"
UNPINNED_REVISION = "unpinned"


@dataclass(frozen=True)
class ModelInfo:
    """What the run record pins about a loaded model (spec/07_RUNS_RECORDS_LOGGING.md)."""

    model_id: str
    source: str
    revision: str
    weights_sha256: str | None
    local_dir: str | None
    model_type: str
    arch_family: str
    n_layers: int
    d_ff: int
    dtype: str
    device: str

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    info: ModelInfo
    sites: MlpSites


def _check_local_dir(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"model directory {path} does not exist; fix PATH or materialize it")
    if not (path / CONFIG_FILE).is_file():
        raise ConfigError(
            f"model directory {path} has no {CONFIG_FILE}; save it with save_pretrained"
        )
    if not any(path.glob(f"*{SAFETENSORS_SUFFIX}")):
        raise ConfigError(
            f"model directory {path} has no {SAFETENSORS_SUFFIX} weights; "
            f"re-save it with save_pretrained(safe_serialization=True)"
        )


def _check_tokenizer_fits(tokenizer: Any, model: Any, where: str) -> None:
    # transformers builds an empty tokenizer instead of failing when a directory has a
    # config but no tokenizer files, so emptiness is checked here.
    n_vocab = len(tokenizer)
    n_special = len(set(tokenizer.all_special_ids))
    if n_vocab <= n_special:
        raise ConfigError(
            f"{where}: tokenizer has no vocabulary beyond its {n_special} special tokens "
            f"(tokenizer files missing?); save the tokenizer into the model directory"
        )
    n_embed = int(model.get_input_embeddings().num_embeddings)
    if n_vocab > n_embed:
        raise ConfigError(
            f"{where}: tokenizer has {n_vocab} tokens but the model embeds only {n_embed}; "
            f"pair the model with its own tokenizer"
        )


def off_device_tensors(model: torch.nn.Module, device: torch.device) -> list[str]:
    """Names of parameters and buffers that are not on `device` (meta counts as elsewhere)."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [
        name
        for name, t in tensors
        if t.device.type == META_DEVICE
        or t.device.type != device.type
        or (device.index is not None and t.device.index != device.index)
    ]


REMOTE_CODE_FLAG = "trust_remote_code"


def _refuse_remote_code(e: Exception, where: str) -> None:
    """Our one line instead of the library's advice to enable remote code (issue 7)."""
    if REMOTE_CODE_FLAG in str(e):
        raise ConfigError(
            f"{where}: needs the model repository's own Python code (remote code), which "
            "critspec never runs; use a checkpoint of a supported architecture "
            "(Llama/Qwen2/Mistral, GPT-2, GPT-NeoX)"
        ) from None


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


REMOTE_CODE_KEY = "auto_map"  # config.json names the repository's own classes here


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' logging and Python warnings silenced: a refusal is critspec's one line."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)


def _config_path(target: str, hub: bool, common: dict[str, Any], where: str, hint: str) -> Path:
    if not hub:
        return Path(target) / CONFIG_FILE
    from transformers.utils import cached_file

    options = {k: v for k, v in common.items() if k in ("local_files_only", "revision")}
    try:
        with _quiet_transformers():
            found = cached_file(target, CONFIG_FILE, **options)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: {CONFIG_FILE} did not load ({_one_line(e)}){hint}") from None
    if found is None:
        raise ConfigError(f"{where}: has no {CONFIG_FILE}{hint}")
    return Path(found)


def check_model_type(config_path: Path, where: str) -> str:
    """The checkpoint's model_type, read from its config.json before any weight: ConfigError
    for remote code or a model type without an adapter (spec/06_MODELS_AND_HOOKS.md)."""
    try:
        doc = read_json(config_path)
    except ContractError as e:
        raise ConfigError(f"{where}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: {config_path} is not a JSON object")
    if REMOTE_CODE_KEY in doc:
        _refuse_remote_code(ValueError(REMOTE_CODE_FLAG), where)
    model_type = doc.get("model_type")
    try:
        arch_family(str(model_type))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return str(model_type)


def _hub_commit(hf_id: str, revision: str | None) -> str:
    """The commit the loaded files came from: the snapshot folder holding the cached config."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(hf_id, CONFIG_FILE, revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent.name
    return revision or UNPINNED_REVISION


# Seconds to wait for the hub's TCP handshake before calling it unreachable: long enough
# for a slow link, short enough that an offline machine fails at once instead of after the
# hub client's retries.
HUB_CONNECT_TIMEOUT_S = 3.0


def hub_reachable(timeout_s: float = HUB_CONNECT_TIMEOUT_S) -> str | None:
    """None when the hub endpoint accepts a connection; else why not, in words."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
    except OSError as e:
        return f"{url.hostname}:{port} is unreachable ({e.strerror or e})"
    return None


def hub_local_only(hf_id: str, revision: str | None, allow_hub: bool, where: str) -> bool:
    """Whether a hub model must load from the local cache only. With ALLOW_HUB and no
    connection it loads from the cache when the model is there, and otherwise fails in one
    line at once (the hub client would retry for most of a minute first)."""
    if not allow_hub:
        return True
    why = hub_reachable()
    if why is None:
        return False
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(hf_id, CONFIG_FILE, revision=revision), str):
        return True
    raise ConfigError(
        f"{where}: cannot download it, {why}, and it is not in the local Hugging Face cache; "
        f"download it where there is network (`hf download {hf_id}"
        + (f" --revision {revision}" if revision else "")
        + "`) or use a local directory entry"
    )


def load_model(
    *,
    source: str,
    device: torch.device,
    dtype: torch.dtype,
    local_dir: Path | None = None,
    hf_id: str | None = None,
    revision: str | None = None,
    allow_hub: bool = False,
    model_id: str | None = None,
) -> LoadedModel:
    """Load model and tokenizer from local_dir (embedded, local, converted gguf_package)
    or hf_id (hub).

    model_id names the model in the run record; it defaults to hf_id or the
    directory name.
    """
    sources = (
        CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        CANON.ENUM.MODEL_SOURCE.LOCAL_DIR,
        CANON.ENUM.MODEL_SOURCE.HUB,
        CANON.ENUM.MODEL_SOURCE.GGUF_PACKAGE,
    )
    if source not in sources:
        raise ConfigError(f"unknown model source {source!r}; use one of {list(sources)}")
    if source == CANON.ENUM.MODEL_SOURCE.HUB:
        if not hf_id:
            raise ConfigError(f"model source {source!r} needs an HF_ID")
        target: str = hf_id
        where = f"hub model {hf_id}" + (f"@{revision}" if revision else "")
    else:
        if local_dir is None:
            raise ConfigError(f"model source {source!r} needs a local directory (PATH)")
        local_dir = Path(local_dir)
        _check_local_dir(local_dir)
        target = str(local_dir)
        where = f"model directory {local_dir}"
    local_only = (
        hub_local_only(target, revision, allow_hub, where)
        if source == CANON.ENUM.MODEL_SOURCE.HUB
        else True
    )
    common: dict[str, Any] = {
        "local_files_only": local_only,
        REMOTE_CODE_FLAG: False,
        **({"revision": revision} if revision else {}),
    }
    hint = "" if allow_hub else " (offline: set ALLOW_HUB: true to download, or pre-download it)"
    hub = source == CANON.ENUM.MODEL_SOURCE.HUB
    check_model_type(_config_path(target, hub, common, where, hint), where)
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, **common)
    except (OSError, ValueError) as e:
        _refuse_remote_code(e, where)
        raise ConfigError(f"{where}: tokenizer did not load ({_one_line(e)}){hint}") from e
    try:
        model = AutoModelForCausalLM.from_pretrained(
            target,
            dtype=dtype,
            use_safetensors=True,
            attn_implementation=ATTN_IMPLEMENTATION,
            **common,
        )
    except (OSError, ValueError) as e:
        _refuse_remote_code(e, where)
        raise ConfigError(f"{where}: model did not load ({_one_line(e)}){hint}") from e
    try:
        model.to(device)
    except torch.OutOfMemoryError as e:
        raise ConfigError(
            f"{where} does not fit on {device} in {dtype_name(dtype)}; free device memory, "
            f"use a smaller dtype or another device"
        ) from e
    elsewhere = off_device_tensors(model, device)
    if elsewhere:
        raise ConfigError(
            f"{where} did not load fully on {device}: {len(elsewhere)} parameters or buffers "
            f"elsewhere (first: {elsewhere[0]}); free device memory or choose another device"
        )
    model.eval()
    _check_tokenizer_fits(tokenizer, model, where)
    sites = adapt(model)
    model_type = str(model.config.model_type)
    if source == CANON.ENUM.MODEL_SOURCE.HUB:
        w_sha = None
        pinned = _hub_commit(target, revision)
    else:
        w_sha = weights_sha256(Path(target))
        pinned = w_sha
    info = ModelInfo(
        model_id=model_id
        or (hf_id if source == CANON.ENUM.MODEL_SOURCE.HUB else Path(target).name),
        source=source,
        revision=pinned,
        weights_sha256=w_sha,
        local_dir=None if source == CANON.ENUM.MODEL_SOURCE.HUB else target,
        model_type=model_type,
        arch_family=sites.family,
        n_layers=sites.n_layers,
        d_ff=sites.d_ff,
        dtype=dtype_name(dtype),
        device=str(device),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, sites=sites)
