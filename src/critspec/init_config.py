"""`critspec init --model HF_ID_OR_DIR [--dataset PATH] DIR`: a pipeline/models/datasets
trio for your own model (README "Bring your own model"; spec/06_MODELS_AND_HOOKS.md).

The model's config.json is read (from the directory, or from the local Hugging Face cache
for a hub id: nothing is downloaded) to check its type is supported and to write its L and
d_ff into the model entry, which the loader then checks against the weights. A hub entry
is pinned to the cached snapshot's commit. Values are written as CANON references, like the
shipped configs. The pipeline is the shipped default's (small
sizes, device and dtype auto: bf16 on CUDA) under the profile CANON.ENUM.PROFILE.CUSTOM;
scale it with `--set` or by editing the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from canon import CANON
from critspec.errors import ConfigError
from critspec.paths import project_root

PIPELINE_FILE = "pipeline.yaml"
JSONL_SUFFIX = ".jsonl"
TEXT_FIELD = "text"
# config.json keys that give the number of layers and the MLP width, by convention.
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
D_FF_KEYS = ("intermediate_size", "n_inner", "ffn_dim")
WIDTH_KEYS = ("hidden_size", "n_embd")
# GPT-2 leaves n_inner null: the MLP is then four times the model width.
GPT2_MLP_RATIO = 4
PROFILE_LINE = "profile: CANON.ENUM.PROFILE.CUSTOM"


def _first(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def model_shape(config: dict[str, Any], where: str) -> tuple[int, int]:
    """(L, d_ff) from a config.json, after checking the model type is supported."""
    from critspec.models.adapters import supported_model_types

    model_type = config.get("model_type")
    if model_type not in supported_model_types():
        raise ConfigError(
            f"{where}: model_type {model_type!r} is not supported; critspec hooks "
            f"{', '.join(supported_model_types())}"
        )
    n_layers = _first(config, LAYER_KEYS)
    d_ff = _first(config, D_FF_KEYS)
    if d_ff is None and model_type in CANON.ENUM.GPT2_MODEL_TYPES:
        width = _first(config, WIDTH_KEYS)
        d_ff = GPT2_MLP_RATIO * width if width else None
    if n_layers is None or d_ff is None:
        raise ConfigError(f"{where}: config.json names no layer count or MLP width")
    return n_layers, d_ff


def _read_config(path: Path, where: str) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: {path} is not a readable config.json ({exc})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: {path} is not a JSON object")
    return config


def model_entry(model: str, revision: str | None) -> tuple[dict[str, Any], int, int]:
    """The models-file entry for a directory or a cached hub id, with its (L, d_ff)."""
    from critspec.models.embedded import CONFIG_FILE

    path = Path(model)
    if path.is_dir():
        config = _read_config(path / CONFIG_FILE, f"model directory {path}")
        n_layers, d_ff = model_shape(config, f"model directory {path}")
        entry = {"SOURCE": "CANON.ENUM.MODEL_SOURCE.LOCAL_DIR", "PATH": str(path.resolve())}
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, CONFIG_FILE, revision=revision)
        if not isinstance(cached, str):
            raise ConfigError(
                f"{model}: not a directory, and no hub model of that id is in the local "
                f"Hugging Face cache; download it first (`hf download {model}`) or pass a "
                "model directory"
            )
        config = _read_config(Path(cached), f"hub model {model}")
        n_layers, d_ff = model_shape(config, f"hub model {model}")
        entry = {
            "SOURCE": "CANON.ENUM.MODEL_SOURCE.HUB",
            "HF_ID": model,
            "REVISION": Path(cached).parent.name,
        }
    entry.update({"N_LAYERS": n_layers, "D_FF": d_ff})
    return entry, n_layers, d_ff


def dataset_entry(dataset: Path) -> dict[str, Any]:
    if not dataset.is_file():
        raise ConfigError(f"--dataset {dataset}: no such file (.txt, .jsonl or .parquet)")
    entry: dict[str, Any] = {
        "SOURCE": "CANON.ENUM.DATASET_SOURCE.LOCAL_FILE",
        "PATH": str(dataset.resolve()),
    }
    if dataset.suffix != ".txt":
        entry["TEXT_FIELD"] = TEXT_FIELD
    return entry


def _yaml(header: str, doc: dict[str, Any]) -> str:
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


def init_config(
    model: str, dataset: Path | None, out_dir: Path, revision: str | None = None
) -> list[Path]:
    """Write DIR/pipeline.yaml, models.yaml and datasets.yaml; refuses to overwrite."""
    entry, n_layers, d_ff = model_entry(model, revision)
    names = (PIPELINE_FILE, CANON.PATH.CONFIG_MODELS_INCLUDE, CANON.PATH.CONFIG_DATASETS_INCLUDE)
    targets = [out_dir / name for name in names]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: already exists; nothing was written (choose a new DIR)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: is a file, not a directory")

    shipped = (project_root() / CANON.PATH.CONFIG_PIPELINE).read_text(encoding="utf-8")
    pipeline = "\n".join(
        PROFILE_LINE if line.startswith("profile:") else line
        for line in shipped.splitlines()
        if not line.startswith("#")
    ).lstrip("\n")
    role = "CANON.ENUM.MODEL_ROLE.INSTRUCT"
    models = {"models": [{"role": role, "entry": entry}]}
    roles = ("CANON.ENUM.DATASET_ROLE.A", "CANON.ENUM.DATASET_ROLE.B")
    if dataset is None:
        embedded = ("CANON.DATASET.EMBEDDED_A", "CANON.DATASET.EMBEDDED_B")
        datasets = {
            "datasets": [{"role": r, "entry": e} for r, e in zip(roles, embedded, strict=True)]
        }
    else:
        datasets = {"datasets": [{"role": r, "entry": dataset_entry(dataset)} for r in roles]}

    out_dir.mkdir(parents=True, exist_ok=True)
    texts = (
        f"# Written by `{CANON.CLI.ENTRYPOINT} {CANON.CLI.SUBCOMMAND.INIT}` from the shipped "
        f"{CANON.PATH.CONFIG_PIPELINE}; scale it with --set KEY=VALUE or by editing.\n"
        + pipeline
        + "\n",
        _yaml(
            f"# {model}: L = {n_layers} layers, d_ff = {d_ff} (read from its config.json; the "
            "loader checks them against the weights). One role; add a BASE entry to compare.\n",
            models,
        ),
        _yaml(
            "# Dataset roles A (calibration and held-out rasters) and B. "
            + ("Embedded synthetic corpora.\n" if dataset is None else f"Both read {dataset}.\n"),
            datasets,
        ),
    )
    for path, text in zip(targets, texts, strict=True):
        path.write_text(text, encoding="utf-8")
    return targets
