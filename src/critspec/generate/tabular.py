"""contracts/<id>.arrays.json (NPZ) and contracts/<id>.columns.json (Parquet).

These are the machine-readable contracts the validators read; shapes stay in
symbols and coverage names configured lists, both bound per run.
"""

from __future__ import annotations

from typing import Any

from critspec.spec.artifacts_spec import ArtifactSpec


def _compact(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.model_dump().items() if v is not None}


def render_arrays(art_id: str, art: ArtifactSpec, header: str) -> dict[str, Any]:
    return {
        "_generated": header,
        "artifact": art_id,
        "format": art.format,
        "allow_pickle": False,
        "arrays": {name: _compact(a) | {"shape": list(a.shape)} for name, a in art.arrays.items()},
    }


def render_columns(art_id: str, art: ArtifactSpec, header: str) -> dict[str, Any]:
    return {
        "_generated": header,
        "artifact": art_id,
        "format": art.format,
        "columns": [{"name": name} | _compact(c) for name, c in art.columns.items()],
        "row_key": list(art.row_key),
        "coverage": dict(art.coverage),
    }
