"""contracts/packs/<pack>/README.md: a contract pack written for an external trainer.

What to produce (every file, where it goes, its fields or arrays), every rule in
words with an example and its exact expression, and the command that checks an
output directory. Also the index of all packs (contracts/packs/README.md).
"""

from __future__ import annotations

import json
from typing import Any

from critspec.generate.contract_doc import field_rows, rules_text
from critspec.spec.canon_spec import CanonSpec
from critspec.spec.packs_spec import FILE_CHECKS, INDEX_SLOT, PackFile, PackSpec

PLACE = "pack"


def command(pack: PackSpec, canon: CanonSpec) -> str:
    """The validate command line for `pack`, with an example value per binding."""
    flag = canon.CLI["VALIDATE_FLAG"]
    words = [canon.CLI["ENTRYPOINT"], canon.CLI["SUBCOMMAND"]["VALIDATE"], flag["PACK"], pack.id]
    words.append("DIR")
    words += [f"--bind {name}={b.example}" for name, b in pack.bindings.items()]
    return " ".join(words)


def _where(file_id: str, spec: PackFile, pack: PackSpec) -> str:
    if spec.path_field is not None:
        owner, _, field = spec.path_field.partition(".")
        return (
            f"at the path that `{field}` of `{owner}` names, relative to the directory of `{owner}`"
        )
    name = spec.path if spec.path is not None else spec.pattern
    if spec.under is not None:
        owner, _, field = spec.under.partition(".")
        return f"`{name}` in the directory that `{field}` of `{owner}` names (relative to it)"
    return f"`{name}` in DIR"


def _presence(spec: PackFile) -> str:
    if spec.is_family:
        lo = spec.count.min if spec.count else 0
        hi = spec.count.max if spec.count else None
        slot = INDEX_SLOT.strip("{}")
        text = f"{lo} or more files" if hi is None else f"{lo} to {hi} files"
        if spec.contiguous:
            text += f", `{slot}` = 0, 1, … with no gap"
        return text
    if spec.path_field is not None:
        return "required" if spec.required else "optional; required when the field is given"
    return "required" if spec.required else "optional"


def _file_section(file_id: str, spec: PackFile, pack: PackSpec, out: list[str]) -> None:
    out += [
        f"### `{file_id}` ({spec.format}; {_presence(spec)})",
        "",
        spec.description,
        "",
        f"Location: {_where(file_id, spec, pack)}.",
        "",
    ]
    if spec.fields is not None:
        out += ["| field | type | required | rules |", "| --- | --- | --- | --- |"]
        field_rows("", spec.fields, out, PLACE)
        closed = "Other top-level keys are allowed" if spec.open else "Unknown keys are rejected"
        out += ["", f"{closed}; NaN and Infinity are not valid JSON numbers.", ""]
    if spec.arrays is not None:
        out += ["| array | dtype | shape | rules |", "| --- | --- | --- | --- |"]
        for name, a in spec.arrays.items():
            shape = "(" + ", ".join(str(d) for d in a.shape) + ")"
            out.append(f"| `{name}` | {a.dtype} | {shape} | {rules_text(a, PLACE)} |")
        free = sorted(
            {d for a in spec.arrays.values() for d in a.shape if isinstance(d, str)}
            - set(pack.bindings)
        )
        out.append("")
        if free:
            names = ", ".join(f"`{s}`" for s in free)
            out += [f"Shape symbols {names} are read from the file and must agree within it.", ""]
        out += ["Exactly these arrays; loaded with `allow_pickle=False` (no object arrays).", ""]


def _rule_section(rule: Any, out: list[str]) -> None:
    out += [f"### `{rule.id}`", "", rule.description, "", f"- Example: {rule.example}"]
    if rule.each:
        out.append(f"- For each: `{rule.each}`")
    for name, expr in rule.let.items():
        out.append(f"- Where `{name}` = `{expr}`")
    if rule.when:
        out.append(f"- Applies when: `{rule.when}`")
    out += [f"- Check: `{rule.check}`", ""]


def render(pack: PackSpec, canon: CanonSpec, header: str) -> str:
    fmt = canon.CLI["VALIDATE_FLAG"]["FORMAT"]
    json_fmt = canon.ENUM["REPORT_FORMAT"]["JSON"]
    out = [
        f"<!-- {header} -->",
        "",
        f"# Contract pack `{pack.id}`: {pack.title}",
        "",
        pack.description,
        "",
        "## Check your output directory",
        "",
        "```",
        command(pack, canon),
        "```",
        "",
        "Exit 0 means DIR conforms. Exit 2 prints every violation, one line each: "
        "`FILE: RULE: found …, expected …`; add "
        f"`{fmt} {json_fmt}` for one JSON object with the same list.",
        "",
    ]
    if pack.bindings:
        out += ["## Bindings (`--bind NAME=VALUE`)", ""]
        out += ["| name | type | meaning | example | default |", "| --- | --- | --- | --- | --- |"]
        for name, b in pack.bindings.items():
            default = "—" if b.default is None else f"`{b.default}`"
            out.append(f"| `{name}` | {b.type} | {b.description} | `{b.example}` | {default} |")
        out.append("")
    out += ["## Files to produce", ""]
    for file_id, spec in pack.files.items():
        _file_section(file_id, spec, pack, out)
    if pack.constants:
        out += ["## Constants the rules use", "", "| name | value |", "| --- | --- |"]
        for name, value in pack.constants.items():
            out.append(f"| `{name}` | `{json.dumps(value)}` |")
        out.append("")
    out += ["## Rules", ""]
    out += [
        "Rules are expressions over the files (by their names above), the bindings and the "
        "constants: `file.field`, `file[i].array.shape[k]`, `len`, `sha256(file)`, "
        "`exists(file)`, `has(x)` (an optional value is there), `get(x, default)`. A rule "
        "is skipped (and listed as such in the JSON report) when a file it reads already "
        "failed its own contract.",
        "",
    ]
    for rule in pack.rules:
        _rule_section(rule, out)
    out += ["## Checks every file gets", "", "| check | meaning |", "| --- | --- |"]
    for key, text in FILE_CHECKS.items():
        out.append(f"| `{canon.ENUM['PACK_CHECK'][key]}` | {text} |")
    return "\n".join(out) + "\n"


def render_index(index: dict[str, Any], canon: CanonSpec, header: str) -> str:
    rows = [
        f"| [`{pack_id}`]({entry['doc']}) | {entry['title']} | {len(entry['rules'])} |"
        for pack_id, entry in index.items()
    ]
    entry = canon.CLI["ENTRYPOINT"]
    validate = canon.CLI["SUBCOMMAND"]["VALIDATE"]
    flag = canon.CLI["VALIDATE_FLAG"]["PACK"]
    return "\n".join(
        [
            f"<!-- {header} -->",
            "",
            "# Contract packs",
            "",
            "Artifacts of other projects, declared in `spec/packs/` and checked with "
            f"`{entry} {validate} {flag} PACK DIR`.",
            "",
            "| pack | what | rules |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )
