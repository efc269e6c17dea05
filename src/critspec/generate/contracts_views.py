"""contracts/: every view of every artifact contract, plus an index (spec/00_OVERVIEW.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from critspec.generate import contract_doc, gx_suite, json_schema, tabular
from critspec.spec.canon_spec import CanonSpec
from critspec.spec.load import load_spec

SCHEMA_SUFFIX = ".schema.json"
ARRAYS_SUFFIX = ".arrays.json"
COLUMNS_SUFFIX = ".columns.json"
GX_SUFFIX = ".gx_suite.json"
DOC_SUFFIX = ".md"
INDEX_JSON = "index.json"
INDEX_MD = "README.md"


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render_all(spec_dir: Path, canon: CanonSpec, header: str) -> dict[str, str]:
    spec = load_spec(spec_dir)
    top = canon.PATH["CONTRACTS_DIR"]
    files: dict[str, str] = {}
    index: dict[str, Any] = {}
    for art_id, art in spec.artifacts.artifacts.items():
        views: dict[str, str] = {}
        if art.fields is not None:
            views["schema"] = art_id + SCHEMA_SUFFIX
            files[f"{top}/{views['schema']}"] = dump_json(
                json_schema.render(art_id, art, canon, header)
            )
        if art.arrays is not None:
            views["arrays"] = art_id + ARRAYS_SUFFIX
            files[f"{top}/{views['arrays']}"] = dump_json(
                tabular.render_arrays(art_id, art, header)
            )
        if art.columns is not None:
            views["columns"] = art_id + COLUMNS_SUFFIX
            views["gx_suite"] = art_id + GX_SUFFIX
            files[f"{top}/{views['columns']}"] = dump_json(
                tabular.render_columns(art_id, art, header)
            )
            files[f"{top}/{views['gx_suite']}"] = dump_json(gx_suite.render(art_id, art, header))
        if art.mirrors is not None:
            views["columns"] = art.mirrors + COLUMNS_SUFFIX
        views["doc"] = art_id + DOC_SUFFIX
        files[f"{top}/{views['doc']}"] = contract_doc.render(
            art_id, art, spec.artifacts, canon, header
        )
        index[art_id] = {
            "format": art.format,
            "subdir": art.subdir,
            "basenames": list(art.basenames),
            "views": views,
        }
    bindings = {k: b.model_dump() for k, b in spec.artifacts.bindings.items()}
    files[f"{top}/{INDEX_JSON}"] = dump_json(
        {"_generated": header, "artifacts": index, "bindings": bindings}
    )
    rows = [
        f"| [`{art_id}`]({art_id}{DOC_SUFFIX}) | {entry['format']} | "
        + ", ".join(f"`{b}`" for b in entry["basenames"])
        + " |"
        for art_id, entry in index.items()
    ]
    files[f"{top}/{INDEX_MD}"] = "\n".join(
        [
            f"<!-- {header} -->",
            "",
            "# Artifact contracts",
            "",
            "| contract | format | basename |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )
    return files
