"""Read and validate the machine-readable spec files under spec/ (spec/00_OVERVIEW.md)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from critspec.errors import ContractError, validated
from critspec.spec.artifacts_spec import ArtifactsSpec, resolve_canon_refs
from critspec.spec.canon_spec import CanonSpec
from critspec.spec.packs_spec import PackSpec
from critspec.spec.phases_spec import ALL_ROLES, PhasesSpec

CANON_FILE = "canon.yaml"
ARTIFACTS_FILE = "artifacts.yaml"
PHASES_FILE = "phases.yaml"
PACK_SUFFIX = ".yaml"

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    """A spec file through the bounded loader: a duplicate key (e.g. from a merge) is refused."""
    from critspec.store.writers import CUniqueKeySafeLoader
    from critspec.store.writers import read_yaml as unique_keys

    if not path.is_file():
        raise ContractError(f"{path}: spec file missing")
    return unique_keys(path, ContractError, CUniqueKeySafeLoader)


def parse(model: type[M], path: Path, data: Any) -> M:
    """Validate `data` (read from `path`) against `model`; one-line error on failure."""
    return validated(model, data, path, ContractError)


def load_canon(spec_dir: Path) -> CanonSpec:
    path = spec_dir / CANON_FILE
    return parse(CanonSpec, path, read_yaml(path))


def _resolved(path: Path, canon: CanonSpec) -> Any:
    try:
        return resolve_canon_refs(read_yaml(path), canon.lookup)
    except ValueError as exc:
        raise ContractError(f"{path}: {exc}") from None


def load_packs(spec_dir: Path, canon: CanonSpec) -> dict[str, PackSpec]:
    """Every spec/packs/<pack>.yaml, keyed by pack id (the file's stem), sorted by id."""
    packs: dict[str, PackSpec] = {}
    for path in sorted((spec_dir / canon.PATH["PACKS_DIR"]).glob("*" + PACK_SUFFIX)):
        pack = parse(PackSpec, path, _resolved(path, canon))
        if pack.id != path.stem:
            raise ContractError(f"{path}: id {pack.id!r} differs from the file name {path.stem!r}")
        packs[pack.id] = pack
    return packs


@dataclass(frozen=True)
class Spec:
    canon: CanonSpec
    artifacts: ArtifactsSpec
    phases: PhasesSpec


def load_spec(spec_dir: Path) -> Spec:
    canon = load_canon(spec_dir)
    artifacts = parse(
        ArtifactsSpec, spec_dir / ARTIFACTS_FILE, _resolved(spec_dir / ARTIFACTS_FILE, canon)
    )
    phases_path = spec_dir / PHASES_FILE
    phases = parse(PhasesSpec, phases_path, _resolved(phases_path, canon))
    roles = set(canon.ENUM["MODEL_ROLE"].values()) | {ALL_ROLES}
    for phase in (*phases.phases, *phases.standalone):
        names = (*phase.produces, *(a for dep in phase.consumes for a in dep.artifacts))
        for name in names:
            if name not in artifacts.artifacts:
                raise ContractError(f"{phases_path}: {phase.key}: unknown artifact {name!r}")
        for role in phase.commands:
            if role not in roles:
                raise ContractError(f"{phases_path}: {phase.key}: unknown model role {role!r}")
        consumed_roles = set(canon.ENUM["CONSUMED_ROLES"].values())
        for dep in phase.consumes:
            if dep.roles is not None and dep.roles not in consumed_roles:
                raise ContractError(
                    f"{phases_path}: {phase.key}: consumes {dep.phase} with roles "
                    f"{dep.roles!r}, not one of {sorted(consumed_roles)}"
                )
    return Spec(canon=canon, artifacts=artifacts, phases=phases)


@functools.cache
def project_spec() -> Spec:
    """The checkout's spec, loaded once per process."""
    from critspec.paths import spec_dir

    return load_spec(spec_dir())
