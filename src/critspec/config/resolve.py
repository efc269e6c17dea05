"""Config resolution (DESIGN §1, §2): CANON references resolved recursively, each file
validated, includes inlined, and one canonical document per run hashed.

Relative include paths (models_file, datasets_file) are looked up against the
current directory first, then against the including file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from critspec.config.canon_refs import resolve_refs
from critspec.config.schema import DatasetsFile, ModelEntry, ModelsFile, PipelineFile
from critspec.errors import ConfigError, validated

M = TypeVar("M", bound=BaseModel)


def read_config_file(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{at}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return resolve_refs(data, path)


def validate_file(model: type[M], path: Path, data: Any) -> M:
    return validated(model, data, path, ConfigError)


def _include(path: Path, parent: Path) -> Path:
    if path.is_absolute() or path.exists():
        return path
    return parent.parent / path


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
        (DESIGN §4 "Model roles": a profile may declare a single role)."""
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


def scoped_document(
    config: ResolvedConfig, sections: tuple[str, ...], invocation: dict[str, Any]
) -> dict[str, Any]:
    """What one run depends on: the profile, its phase's sections and the invocation."""
    doc: dict[str, Any] = {"profile": config.document["profile"], "invocation": invocation}
    for section in sections:
        doc[section] = config.document[section]
    return doc
