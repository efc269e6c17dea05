"""contracts/<id>.schema.json: JSON Schema (2020-12) of a JSON/YAML/JSONL artifact.

Array lengths bound to a run (e.g. `[L]`) cannot be static; they are carried as
the annotation `x-length-symbol` and checked by the validator after binding.
"""

from __future__ import annotations

from typing import Any

from critspec.spec.artifacts_spec import ArtifactSpec, FieldSpec
from critspec.spec.canon_spec import CanonSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
LENGTH_SYMBOL = "x-length-symbol"
# No leading slash or drive letter, no '..' segment: the path stays inside the run.
RELATIVE_PATH_PATTERN = r"^(?![/\\])(?![A-Za-z]:)(?!.*(?:^|[/\\])\.\.(?:[/\\]|$)).+$"


def run_id_pattern(canon: CanonSpec) -> str:
    prefix = canon.PATH["RUN_DIR_PREFIX"]
    return f"^{prefix}[A-Z0-9]+_[0-9a-f]{{{canon.CONST['RUN_HASH_LEN']}}}$"


def field_schema(spec: FieldSpec, canon: CanonSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": [spec.type, "null"] if spec.nullable else spec.type}
    if spec.enum is not None:
        out["enum"] = [*spec.enum, None] if spec.nullable else list(spec.enum)
    if spec.run_id:
        out["pattern"] = run_id_pattern(canon)
    elif spec.relative_path:
        out["pattern"] = RELATIVE_PATH_PATTERN
    elif spec.pattern is not None:
        out["pattern"] = spec.pattern
    for key, name in (
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("exclusive_minimum", "exclusiveMinimum"),
    ):
        value = getattr(spec, key)
        if value is not None:
            out[name] = value
    if spec.length is not None:
        out[LENGTH_SYMBOL] = spec.length
    if spec.type == "object":
        out.update(object_schema(spec.fields or {}, canon, closed=not spec.open))
    if spec.items is not None:
        out["items"] = field_schema(spec.items, canon)
    return out


def object_schema(fields: dict[str, FieldSpec], canon: CanonSpec, closed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "properties": {name: field_schema(f, canon) for name, f in fields.items()},
        "required": [name for name, f in fields.items() if f.required],
    }
    if closed:
        out["additionalProperties"] = False
    return out


def render(art_id: str, art: ArtifactSpec, canon: CanonSpec, header: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"{art_id}.schema.json",
        "$comment": header,
        "title": art.title,
        "description": art.description,
        "type": "object",
    }
    schema.update(object_schema(art.fields or {}, canon, closed=True))
    return schema
