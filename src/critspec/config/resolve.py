"""Config resolution (spec/00_OVERVIEW.md, spec/07_RUNS_RECORDS_LOGGING.md): CANON references
resolved recursively, each file
validated, includes inlined, and one canonical document per run hashed.

Relative include paths (models_file, datasets_file) are resolved against the
including file's directory, never the current directory, so a config works from
anywhere and a stray file in the working directory cannot override it. A config
file must be a non-empty regular UTF-8 file of at most CANON.CONST.CONFIG_MAX_BYTES,
read with the bounded YAML loader (duplicate keys and alias bombs refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from canon import CANON
from critspec.config.canon_refs import resolve_refs
from critspec.config.schema import DatasetsFile, ModelEntry, ModelsFile, PipelineFile
from critspec.errors import ConfigError, regular_file, validated
from critspec.store.writers import load_yaml

M = TypeVar("M", bound=BaseModel)


def read_config_file(path: Path) -> Any:
    size = regular_file(path, "config file", ConfigError)
    if size == 0:
        raise ConfigError(f"{path}: config file is empty")
    if size > CANON.CONST.CONFIG_MAX_BYTES:
        raise ConfigError(
            f"{path}: config file has {size} bytes, above {CANON.CONST.CONFIG_MAX_BYTES}; "
            "is it the right file?"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: config file is not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    data = load_yaml(text, str(path), ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return resolve_refs(data, path)


def validate_file(model: type[M], path: Path, data: Any) -> M:
    return validated(model, data, path, ConfigError)


def _include(path: Path, parent: Path) -> Path:
    """An include named by `parent`: absolute, or relative to `parent`'s directory."""
    return path if path.is_absolute() else parent.parent / path


@dataclass(frozen=True)
class ResolvedConfig:
    pipeline: PipelineFile
    models: ModelsFile
    datasets: DatasetsFile
    document: dict[str, Any]

    def model_entry(self, role: str) -> ModelEntry:
        for binding in self.models.models:
            if binding.role == role:
                return binding.entry
        raise ConfigError(f"no model configured for role {role}; add it to the models file")

    @property
    def model_roles(self) -> tuple[str, ...]:
        """The model roles the profile declares, in file order (one or both)."""
        return tuple(binding.role for binding in self.models.models)

    def require_roles(self, roles: tuple[str, ...], what: str) -> None:
        """ConfigError in one line when `what` needs a role the profile does not declare
        (spec/00_OVERVIEW.md "Model roles": a profile may declare a single role)."""
        missing = [r for r in roles if r not in self.model_roles]
        if missing:
            raise ConfigError(
                f"{what} needs model role {' and '.join(roles)}, but this profile declares "
                f"only {', '.join(self.model_roles)}; add a {missing[0]} model to the "
                f"models file or use a profile that has one"
            )

    def dataset_entry(self, role: str) -> Any:
        for binding in self.datasets.datasets:
            if binding.role == role:
                return binding.entry
        raise ConfigError(f"no dataset configured for role {role}; add it to the datasets file")


def load_config(path: Path) -> ResolvedConfig:
    raw = read_config_file(path)
    pipeline = validate_file(PipelineFile, path, raw)
    models_path = _include(pipeline.models_file, path)
    datasets_path = _include(pipeline.datasets_file, path)
    models_raw = read_config_file(models_path)
    datasets_raw = read_config_file(datasets_path)
    models = validate_file(ModelsFile, models_path, models_raw)
    datasets = validate_file(DatasetsFile, datasets_path, datasets_raw)
    document = {k: v for k, v in raw.items() if k not in ("models_file", "datasets_file")}
    document["models"] = models_raw["models"]
    document["datasets"] = datasets_raw["datasets"]
    return ResolvedConfig(pipeline, models, datasets, document)


# Keys that choose how a run is computed, never what it computes: they stay out of the
# run's config document and id (spec/06_MODELS_AND_HOOKS.md §7, "Executors").
HOW_NOT_WHAT: dict[str, tuple[str, ...]] = {"runtime": ("executor",)}


def scoped_document(
    config: ResolvedConfig, sections: tuple[str, ...], invocation: dict[str, Any]
) -> dict[str, Any]:
    """What one run depends on: the profile, its phase's sections and the invocation."""
    doc: dict[str, Any] = {"profile": config.document["profile"], "invocation": invocation}
    for section in sections:
        value = config.document[section]
        dropped = HOW_NOT_WHAT.get(section, ())
        if isinstance(value, dict) and dropped:
            value = {k: v for k, v in value.items() if k not in dropped}
        doc[section] = value
    return doc
