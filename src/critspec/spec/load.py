"""Read and validate the machine-readable spec files under spec/."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from critspec.errors import ContractError

CANON_FILE = "canon.yaml"
ARTIFACTS_FILE = "artifacts.yaml"
PHASES_FILE = "phases.yaml"

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: spec file missing") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None


def parse(model: type[M], path: Path, data: Any) -> M:
    """Validate `data` (read from `path`) against `model`; one-line error on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ContractError(f"{path}: {where}: {first['msg']}") from None


def load_canon(spec_dir: Path):  # noqa: ANN201 - avoids an import cycle in annotations
    from critspec.spec.canon_spec import CanonSpec

    path = spec_dir / CANON_FILE
    return parse(CanonSpec, path, read_yaml(path))
