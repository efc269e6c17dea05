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
from critspec.spec.packs_spec import (
    FILE_CHECKS,
    INDEX_SLOT,
    MIRROR_AT,
    SEV,
    UNKNOWN,
    PackArraySpec,
    PackFile,
    PackSpec,
)

PLACE = "pack"
GITHUB = "https://github.com"
DTYPE_KINDS = {"numeric": "any numeric", "floating": "any floating"}


def command(pack: PackSpec, canon: CanonSpec) -> str:
    """The validate command line for `pack`, with an example value per binding."""
    flag = canon.CLI["VALIDATE_FLAG"]
    words = [canon.CLI["ENTRYPOINT"], canon.CLI["SUBCOMMAND"]["VALIDATE"], flag["PACK"], pack.id]
    words.append("DIR")
    words += [f"--bind {name}={b.example}" for name, b in pack.bindings.items()]
    return " ".join(words)


def mirror_link(pack: PackSpec, mirror: str) -> str:
    """`path` at its commit in the upstream repository, as a Markdown link."""
    path, _, commit = mirror.partition(MIRROR_AT)
    if pack.upstream is None:
        return f"`{path}`"
    commit = commit or pack.upstream.commit
    url = f"{GITHUB}/{pack.upstream.repo}/blob/{commit}/{path}"
    return f"[`{pack.upstream.repo}/{path}` @ `{commit[:12]}`]({url})"


def _unknown_keys(spec: PackFile, what: str) -> str:
    if spec.unknown_keys == UNKNOWN.ALLOWED:
        return f"Other top-level {what} are allowed (the consumer ignores them)"
    if spec.unknown_keys == UNKNOWN.WARNING:
        return f"Other {what} are a warning (the consumer ignores them)"
    return f"Other {what} are an error"


def _array_rules(a: PackArraySpec) -> str:
    parts = [rules_text(a.model_copy(update={"finite": False}), PLACE)]
    if a.finite == SEV.ERROR:
        parts.append("finite (error)")
    elif a.finite == SEV.WARNING:
        parts.append("a NaN or infinity is a warning")
    return "; ".join(p for p in parts if p)


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
        elif spec.index == "digits":
            text += f", `{slot}` any digits, taken in number order"
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
    if spec.mirrors:
        out += ["Mirrors: " + ", ".join(mirror_link(pack, m) for m in spec.mirrors) + ".", ""]
    if spec.fields is not None:
        out += ["| field | type | required | rules |", "| --- | --- | --- | --- |"]
        field_rows("", spec.fields, out, PLACE)
        keys = _unknown_keys(spec, "keys")
        out += [
            "",
            f"{keys}; a repeated key is an error; NaN or Infinity (which Python's json "
            "writes and reads) is a warning.",
            "",
        ]
    if spec.arrays is not None:
        out += ["| array | dtype | shape | rules |", "| --- | --- | --- | --- |"]
        for name, a in spec.arrays.items():
            shape = "(" + ", ".join(str(d) for d in a.shape) + ")"
            dtype = DTYPE_KINDS.get(a.dtype, a.dtype)
            out.append(f"| `{name}` | {dtype} | {shape} | {_array_rules(a)} |")
        free = sorted(
            {d for a in spec.arrays.values() for d in a.shape if isinstance(d, str)}
            - set(pack.bindings)
        )
        out.append("")
        if free:
            names = ", ".join(f"`{s}`" for s in free)
            out += [f"Shape symbols {names} are read from the file and must agree within it.", ""]
        arrays = _unknown_keys(spec, "arrays")
        out += [f"{arrays}; loaded with `allow_pickle=False` (no object arrays).", ""]


def _rule_section(rule: Any, pack: PackSpec, out: list[str]) -> None:
    out += [f"### `{rule.id}` ({rule.severity})", "", rule.description, ""]
    out.append(f"- Severity: {rule.severity}")
    if rule.mirrors:
        out.append("- Mirrors: " + ", ".join(mirror_link(pack, m) for m in rule.mirrors))
    out.append(f"- Example: {rule.example}")
    if rule.each:
        out.append(f"- For each: `{rule.each}`")
    for name, expr in rule.let.items():
        out.append(f"- Where `{name}` = `{expr}`")
    if rule.when:
        out.append(f"- Applies when: `{rule.when}`")
    out += [f"- Check: `{rule.check}`", ""]


def render(pack: PackSpec, canon: CanonSpec, header: str) -> str:
    fmt = canon.CLI["VALIDATE_FLAG"]["FORMAT"]
    strict = canon.CLI["VALIDATE_FLAG"]["STRICT"]
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
        f"`{fmt} {json_fmt}` for one JSON object with the same list and each "
        "violation's severity.",
        "",
        f"A rule is an **{SEV.ERROR}** (the real consumer refuses the output or misbehaves "
        f"on it) or a **{SEV.WARNING}** (legal for the consumer but suspect). Warnings are "
        f"listed (`FILE: RULE: {SEV.WARNING}: found …`) and exit 0; `{strict}` makes them "
        "fail too. A rule that reads a file which failed its own contract is skipped and "
        "listed with the reason; every other rule still runs.",
        "",
        "Every file is resolved and must lie inside DIR and be a regular file (a symlink "
        "out of DIR, a directory, FIFO or device is a violation naming it); JSON/YAML "
        f"inputs above {canon.CONST['JSON_MAX_BYTES']} bytes are refused unread.",
        "",
    ]
    if pack.upstream is not None:
        up = pack.upstream
        url = f"{GITHUB}/{up.repo}/tree/{up.commit}"
        out += [
            "## The real producer and consumer",
            "",
            f"The rules mirror [`{up.repo}` @ `{up.commit}`]({url}): each rule below names "
            "the code it was read from. The producer's documented command "
            f"(`{up.producer}`), whose output this pack accepts:",
            "",
            "```",
            up.command,
            "```",
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
        "`exists(file)`, `has(x)` (an optional value is there), `get(x, default)`; a JSON "
        "null reads as `None`. A rule is skipped (listed with the reason in both reports) "
        "only when a file it reads failed its own contract; every other rule still runs. "
        "Each rule below gives its severity and the real code it mirrors.",
        "",
    ]
    for rule in pack.rules:
        _rule_section(rule, pack, out)
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
