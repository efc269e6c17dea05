"""contracts/packs/: every view of every contract pack, plus an index (spec/00_OVERVIEW.md).

Per pack `<pack>/`: a JSON Schema per JSON/YAML file, an array contract per NPZ
file, `pack.json` (the validated pack: files, bindings, constants, rules; what
`critspec validate --pack` reads) and `README.md` (the contract written for an
external trainer). `index.json` and `README.md` at the top list the packs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from critspec.generate import pack_doc
from critspec.generate.contracts_views import (
    ARRAYS_SUFFIX,
    INDEX_JSON,
    INDEX_MD,
    SCHEMA_SUFFIX,
    dump_json,
)
from critspec.generate.json_schema import DIALECT, object_schema
from critspec.spec.canon_spec import CanonSpec
from critspec.spec.load import load_packs
from critspec.spec.packs_spec import PackSpec

PACK_JSON = "pack.json"
INDEX_KEY = "pack_index"


def file_schema(pack: PackSpec, file_id: str, canon: CanonSpec, header: str) -> dict[str, Any]:
    spec = pack.files[file_id]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"{pack.id}/{file_id}{SCHEMA_SUFFIX}",
        "$comment": header,
        "title": f"{pack.title}: {file_id}",
        "description": spec.description,
        "type": "object",
    }
    schema.update(object_schema(spec.fields or {}, canon, closed=not spec.open))
    return schema


def file_arrays(pack: PackSpec, file_id: str, header: str) -> dict[str, Any]:
    spec = pack.files[file_id]
    arrays = {
        name: {k: v for k, v in a.model_dump().items() if v is not None} | {"shape": list(a.shape)}
        for name, a in (spec.arrays or {}).items()
    }
    return {
        "_generated": header,
        "pack": pack.id,
        "file": file_id,
        "format": spec.format,
        "allow_pickle": False,
        "free_symbols": sorted(free_symbols(pack, file_id)),
        "arrays": arrays,
    }


def free_symbols(pack: PackSpec, file_id: str) -> set[str]:
    """Shape symbols of a file that no binding fixes: taken from the file, consistent within it."""
    arrays = pack.files[file_id].arrays or {}
    dims = {d for a in arrays.values() for d in a.shape if isinstance(d, str)}
    return dims - set(pack.bindings)


def render_all(spec_dir: Path, canon: CanonSpec, header: str) -> dict[str, str]:
    top = f"{canon.PATH['CONTRACTS_DIR']}/{canon.PATH['PACKS_DIR']}"
    files: dict[str, str] = {}
    index: dict[str, Any] = {}
    for pack_id, pack in load_packs(spec_dir, canon).items():
        views: dict[str, dict[str, str]] = {}
        for file_id, spec in pack.files.items():
            if spec.fields is not None:
                name = file_id + SCHEMA_SUFFIX
                views[file_id] = {"schema": name}
                files[f"{top}/{pack_id}/{name}"] = dump_json(
                    file_schema(pack, file_id, canon, header)
                )
            elif spec.arrays is not None:
                name = file_id + ARRAYS_SUFFIX
                views[file_id] = {"arrays": name}
                files[f"{top}/{pack_id}/{name}"] = dump_json(file_arrays(pack, file_id, header))
        files[f"{top}/{pack_id}/{PACK_JSON}"] = dump_json(
            {"_generated": header, "pack": pack.model_dump(), "views": views}
        )
        files[f"{top}/{pack_id}/{INDEX_MD}"] = pack_doc.render(pack, canon, header)
        index[pack_id] = {
            "title": pack.title,
            "pack": f"{pack_id}/{PACK_JSON}",
            "doc": f"{pack_id}/{INDEX_MD}",
            "rules": [r.id for r in pack.rules],
        }
    if index:
        files[f"{top}/{INDEX_JSON}"] = dump_json({"_generated": header, INDEX_KEY: index})
        files[f"{top}/{INDEX_MD}"] = pack_doc.render_index(index, canon, header)
    return files
