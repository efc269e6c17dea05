"""contracts/<id>.md: the contract written for an external producer of the artifact."""

from __future__ import annotations

from typing import Any

from critspec.spec.artifacts_spec import ArtifactSpec, ArtifactsSpec, FieldSpec
from critspec.spec.canon_spec import CanonSpec


def rules_text(spec: Any, place: str = "run") -> str:
    parts = []
    for key in ("minimum", "maximum", "exclusive_minimum"):
        value = getattr(spec, key, None)
        if value is not None:
            parts.append(f"{key} {value}")
    if getattr(spec, "enum", None):
        parts.append("one of " + ", ".join(f"`{v}`" for v in spec.enum))
    if getattr(spec, "nullable", False):
        parts.append("may be null")
    if getattr(spec, "allow_nan", False):
        parts.append("NaN allowed")
    if getattr(spec, "finite", False):
        parts.append("finite")
    if getattr(spec, "relative_path", False):
        parts.append(f"relative path inside the {place} directory")
    if getattr(spec, "run_id", False):
        parts.append("a run id")
    if getattr(spec, "pattern", None):
        parts.append(f"matches `{spec.pattern}`")
    if getattr(spec, "length", None):
        parts.append(f"length {spec.length}")
    if getattr(spec, "open", False):
        parts.append("free-form object")
    return "; ".join(parts)


def field_rows(
    prefix: str, fields: dict[str, FieldSpec], out: list[str], place: str = "run"
) -> None:
    for name, f in fields.items():
        path = f"{prefix}{name}"
        kind = f.type if f.items is None else f"array of {f.items.type}"
        req = "yes" if f.required else "no"
        out.append(f"| `{path}` | {kind} | {req} | {rules_text(f, place)} |")
        if f.fields:
            field_rows(f"{path}.", f.fields, out, place)
        if f.items is not None and f.items.fields:
            field_rows(f"{path}[].", f.items.fields, out, place)


def render(
    art_id: str, art: ArtifactSpec, spec: ArtifactsSpec, canon: CanonSpec, header: str
) -> str:
    entry = canon.CLI["ENTRYPOINT"]
    validate = canon.CLI["SUBCOMMAND"]["VALIDATE"]
    where = " or ".join(f"`{art.subdir + '/' if art.subdir else ''}{b}`" for b in art.basenames)
    out = [
        f"<!-- {header} -->",
        "",
        f"# Contract `{art_id}`: {art.title}",
        "",
        art.description,
        "",
        f"- Location in a run directory: {where}",
        f"- Format: {art.format}",
        "",
        "Check a file you produced:",
        "",
        "```",
        f"{entry} {validate} --contract {art_id} PATH"
        + "".join(f" --bind {s}=..." for s in _symbols(art)),
        "```",
        "",
        "Exit 0 means it conforms; exit 2 prints one line naming the first violation.",
        "",
    ]
    if art.fields is not None:
        out += ["| field | type | required | rules |", "| --- | --- | --- | --- |"]
        field_rows("", art.fields, out)
        out += ["", "Unknown keys are rejected; NaN and Infinity are not valid JSON numbers."]
    if art.arrays is not None:
        out += ["| array | dtype | shape | rules |", "| --- | --- | --- | --- |"]
        for name, a in art.arrays.items():
            shape = "[" + ", ".join(str(d) for d in a.shape) + "]"
            out.append(f"| `{name}` | {a.dtype} | {shape} | {rules_text(a)} |")
        out += ["", "Exactly these arrays; loaded with `allow_pickle=False` (no object arrays)."]
    if art.columns is not None:
        out += ["| column | arrow type | rules |", "| --- | --- | --- |"]
        for name, c in art.columns.items():
            out.append(f"| `{name}` | {c.type} | {rules_text(c) or 'not null'} |")
        key = ", ".join(f"`{c}`" for c in art.row_key)
        out += ["", f"Row key (unique): {key}."]
        if art.coverage:
            cov = " × ".join(f"`{col}` ∈ {lst}" for col, lst in art.coverage.items())
            out.append(f"Coverage: exactly one row for every combination {cov}.")
    if art.mirrors is not None:
        out += [
            f"Same columns, order, types and rules as [`{art.mirrors}`]({art.mirrors}.md), "
            "as CSV: a header row of the column names, floats in shortest round-trip "
            "form, NaN and null as empty cells, `true`/`false` for booleans."
        ]
        twin = spec.artifacts[art.mirrors]
        art = twin
    if art.format == canon.ENUM["ARTIFACT_FORMAT"]["FIGURE"]:
        out += ["A PNG file (PNG signature) and a PDF file (`%PDF-` header, `%%EOF` trailer)."]
    if art.format == canon.ENUM["ARTIFACT_FORMAT"]["HTML"]:
        out += [
            "A UTF-8 HTML5 file with exactly one Content-Security-Policy meta tag "
            f"(`{canon.CONST['REPORT_CSP']}`), no script, link, frame or object element, "
            "every `src` a data: URI and every `href` an in-page anchor."
        ]
    if art.format == canon.ENUM["ARTIFACT_FORMAT"]["ARCHIVE"]:
        out += [
            "A gzip file (header mtime 0, no stored name) holding a ustar archive of regular "
            "files and directories only, relative names in byte order, fixed mtime, owners "
            "and modes."
        ]
    used = _symbols(art)
    if used:
        out += ["", "Symbols (bound from the run record and config, or `--bind`):", ""]
        out += [f"- `{s}`: {spec.symbols[s]}" for s in used]
    return "\n".join(out) + "\n"


def _symbols(art: ArtifactSpec) -> list[str]:
    found: list[str] = []
    for a in (art.arrays or {}).values():
        found += [d for d in a.shape if isinstance(d, str)]
    found += list(art.coverage.values())

    def walk(fields: dict[str, FieldSpec]) -> None:
        for f in fields.values():
            if f.length:
                found.append(f.length)
            walk(f.fields or {})
            if f.items is not None:
                if f.items.length:
                    found.append(f.items.length)
                walk(f.items.fields or {})

    walk(art.fields or {})
    return list(dict.fromkeys(found))
