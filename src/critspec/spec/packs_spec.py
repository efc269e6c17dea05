"""Pydantic models of spec/packs/<pack>.yaml: another project's artifacts as a contract pack.

A pack declares the files a trainer must produce (fixed paths, paths named by a
field of an earlier file, or numbered patterns such as `layer_{i}.npz`), each
file's contract in the field/array DSL of spec/artifacts.yaml, the bindings a
user supplies, constants (lookup tables), and cross-file rules in the
whitelisted expression language of `critspec.spec.rule_lang`. Every expression
is parsed and every name it reads is resolved when the pack is loaded, so a
typo fails `critspec generate` instead of a trainer's validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canon import CANON
from critspec.spec import rule_lang
from critspec.spec.artifacts_spec import FieldSpec, NpzDtype

PF = CANON.ENUM.PACK_FORMAT
SEV = CANON.ENUM.PACK_SEVERITY
UNKNOWN = CANON.ENUM.PACK_UNKNOWN_KEYS
PackFormat = Literal[PF.JSON, PF.YAML, PF.NPZ, PF.OPAQUE]
Severity = Literal[SEV.ERROR, SEV.WARNING]
UnknownKeys = Literal[UNKNOWN.ERROR, UNKNOWN.WARNING, UNKNOWN.ALLOWED]
DOCUMENT_FORMATS = (PF.JSON, PF.YAML)
INDEX_SLOT = "{i}"
BindingType = Literal["integer", "number", "string"]
# How a numbered family spells `{i}`: canonical 0, 1, ... (no leading zero), or any
# digits read as an integer (a consumer that sorts `int(digits)`).
IndexStyle = Literal["canonical", "digits"]
# A pack array's dtype: an exact dtype, or a kind its consumer casts from.
ArrayKind = Literal["numeric", "floating"]
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIRROR_AT = "@"
# The structural checks every pack file gets (CANON.ENUM.PACK_CHECK keys), as the docs say them.
FILE_CHECKS = {
    "FILE_REQUIRED": "a required file, or a file a field names, is missing",
    "FILE_LOCATION": "a path leaves the pack directory or its directory is missing",
    "FILE_READABLE": "the file does not parse (JSON, YAML, NPZ without pickles)",
    "FILE_SCHEMA": "a JSON/YAML field breaks the file's schema (one line per error)",
    "FILE_ARRAYS": "an NPZ array is missing, unexpected, or breaks dtype/shape/bounds",
    "FILE_COUNT": "a numbered family has fewer or more files than its count allows",
    "FILE_CONTIGUOUS": "a numbered family's indices are not 0, 1, ..., n-1",
    "FILE_NOT_REGULAR": "a path names a directory, FIFO, device or other non-regular file",
    "FILE_UNKNOWN_KEY": "a key or array the contract does not declare (severity: the file's "
    "`unknown_keys`)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackBinding(_Strict):
    """A value the user passes with `--bind NAME=VALUE` (or its default)."""

    type: BindingType
    description: str
    example: int | float | str
    default: int | float | str | None = None


class Upstream(_Strict):
    """The real project a pack mirrors: its repository, the commit its rules were read
    from, and the producer command whose output the pack must accept."""

    repo: str
    commit: str
    producer: str
    command: str

    @model_validator(mode="after")
    def _shape(self) -> Upstream:
        if not _REPO.match(self.repo):
            raise ValueError(f"upstream.repo {self.repo!r} must read owner/name")
        if not _COMMIT.match(self.commit):
            raise ValueError(f"upstream.commit {self.commit!r} must be a 40-hex commit")
        return self


def _mirrors(values: tuple[str, ...], where: str) -> None:
    for value in values:
        path, sep, commit = value.partition(MIRROR_AT)
        if not path or (sep and not _COMMIT.match(commit)):
            raise ValueError(f"{where}: mirrors {value!r} must read PATH or PATH@COMMIT")


class PackArraySpec(_Strict):
    """An NPZ array of a pack: dtype exact or a kind the consumer casts from, shape with
    free symbols, and how non-finite values count (a consumer may load them)."""

    dtype: NpzDtype | ArrayKind
    shape: tuple[str | int, ...]
    finite: Severity | None = SEV.ERROR
    minimum: float | None = None
    maximum: float | None = None


class CountSpec(_Strict):
    min: int = Field(default=0, ge=0)
    max: int | None = Field(default=None, ge=0)


def _relative(path: str, where: str) -> None:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or "\\" in path:
        raise ValueError(f"{where}: {path!r} must be a relative path inside the pack directory")


class PackFile(_Strict):
    """One file (or numbered family of files) of a pack."""

    description: str
    format: PackFormat
    required: bool = True
    path: str | None = None
    path_field: str | None = None
    pattern: str | None = None
    under: str | None = None
    count: CountSpec | None = None
    contiguous: bool = False
    index: IndexStyle = "canonical"
    fields: dict[str, FieldSpec] | None = None
    unknown_keys: UnknownKeys = UNKNOWN.ERROR
    arrays: dict[str, PackArraySpec] | None = None
    mirrors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> PackFile:
        located = [k for k in ("path", "path_field", "pattern") if getattr(self, k) is not None]
        if len(located) != 1:
            raise ValueError("a file needs exactly one of `path`, `path_field`, `pattern`")
        for key in ("path", "pattern"):
            value = getattr(self, key)
            if value is not None:
                _relative(value, key)
        if self.pattern is not None and PurePosixPath(self.pattern).name.count(INDEX_SLOT) != 1:
            raise ValueError(f"`pattern` must hold {INDEX_SLOT} exactly once, in the file name")
        if self.pattern is None and (self.count is not None or self.contiguous):
            raise ValueError("`count`/`contiguous` only apply to a `pattern`")
        if self.path_field is not None and self.under is not None:
            raise ValueError("`under` does not combine with `path_field`")
        if (self.fields is not None) != (self.format in DOCUMENT_FORMATS):
            raise ValueError(f"format {self.format}: `fields` exactly for {DOCUMENT_FORMATS}")
        if (self.arrays is not None) != (self.format == PF.NPZ):
            raise ValueError(f"format {self.format}: `arrays` exactly for {PF.NPZ}")
        if self.unknown_keys != UNKNOWN.ERROR and self.format not in (*DOCUMENT_FORMATS, PF.NPZ):
            raise ValueError("`unknown_keys` only applies to a file with `fields` or `arrays`")
        _mirrors(self.mirrors, "file")
        return self

    @property
    def open(self) -> bool:
        """Top-level keys the contract does not declare are accepted without a word."""
        return self.unknown_keys == UNKNOWN.ALLOWED

    @property
    def reference(self) -> str | None:
        """`file.field.path` this file's location depends on, if any."""
        return self.path_field or self.under

    @property
    def is_family(self) -> bool:
        return self.pattern is not None

    def pattern_parts(self) -> tuple[str, re.Pattern[str]]:
        """(the pattern's directory, its file name as a regex capturing `{i}`: 0, 1, ... no 01)."""
        assert self.pattern is not None
        pattern = PurePosixPath(self.pattern)
        head, _, tail = pattern.name.partition(INDEX_SLOT)
        digits = "[0-9]+" if self.index == "digits" else "0|[1-9][0-9]*"
        regex = re.compile(f"^{re.escape(head)}({digits}){re.escape(tail)}$")
        return pattern.parent.as_posix(), regex


class PackRule(_Strict):
    """A cross-field or cross-file rule: `check` holds for every `each` value where `when` does."""

    id: str
    description: str
    example: str
    severity: Severity = SEV.ERROR
    mirrors: tuple[str, ...] = ()
    file: str | None = None
    each: str | None = None
    let: dict[str, str] = Field(default_factory=dict)
    when: str | None = None
    check: str

    def parsed(self) -> ParsedRule:
        each = rule_lang.parse_each(self.each) if self.each else None
        return ParsedRule(
            rule=self,
            each=each,
            let={k: rule_lang.parse(v) for k, v in self.let.items()},
            when=rule_lang.parse(self.when) if self.when else None,
            check=rule_lang.parse(self.check),
            file=rule_lang.parse(self.file) if self.file else None,
        )


@dataclass(frozen=True)
class ParsedRule:
    """A rule with every expression parsed (built once per validation, not stored)."""

    rule: PackRule
    each: tuple[str, rule_lang.Expr] | None
    let: dict[str, rule_lang.Expr]
    when: rule_lang.Expr | None
    check: rule_lang.Expr
    file: rule_lang.Expr | None

    def expressions(self) -> list[rule_lang.Expr]:
        out = [*self.let.values(), self.check]
        out += [e for e in (self.when, self.file) if e is not None]
        if self.each:
            out.append(self.each[1])
        return out

    def file_ids(self, files: dict[str, PackFile]) -> set[str]:
        """Pack files the rule reads by name (a `file(...)` lookup may read more)."""
        return {n for e in self.expressions() for n in e.names if n in files}


class PackSpec(_Strict):
    id: str
    title: str
    description: str
    upstream: Upstream | None = None
    bindings: dict[str, PackBinding] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, PackFile]
    rules: tuple[PackRule, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> PackSpec:
        if not _ID.match(self.id):
            raise ValueError(f"pack id {self.id!r} must be lower_snake")
        groups = {"files": self.files, "bindings": self.bindings, "constants": self.constants}
        seen: dict[str, str] = {}
        for group, names in groups.items():
            for name in names:
                if name in seen or name in rule_lang.FUNCTIONS:
                    clash = seen.get(name, "a function")
                    raise ValueError(f"{group}.{name}: name already used by {clash}")
                seen[name] = group
        earlier: list[str] = []
        for file_id, spec in self.files.items():
            self._check_reference(file_id, spec, earlier)
            for field_spec in _walk_fields(spec.fields or {}):
                if field_spec.length is not None:
                    raise ValueError(
                        f"files.{file_id}: `length` is not used in packs; write a rule"
                    )
            earlier.append(file_id)
        rule_ids = [r.id for r in self.rules]
        if len(set(rule_ids)) != len(rule_ids):
            raise ValueError("rule ids must be unique")
        for rule in self.rules:
            self._check_rule(rule)
            _mirrors(rule.mirrors, f"rule {rule.id}")
            if self.upstream is not None and not rule.mirrors:
                raise ValueError(f"rule {rule.id}: name the upstream code it mirrors (`mirrors`)")
        return self

    def _check_reference(self, file_id: str, spec: PackFile, earlier: list[str]) -> None:
        ref = spec.reference
        if ref is None:
            return
        owner, _, dotted = ref.partition(".")
        if owner not in earlier or not dotted:
            raise ValueError(f"files.{file_id}: {ref!r} must name `file.field` of an earlier file")
        owner_spec = self.files[owner]
        if owner_spec.is_family or owner_spec.fields is None:
            raise ValueError(f"files.{file_id}: {owner!r} is not a single document file")
        fields: dict[str, FieldSpec] | None = owner_spec.fields
        for part in dotted.split("."):
            if fields is None or part not in fields:
                raise ValueError(f"files.{file_id}: {ref!r}: {owner} declares no field {part!r}")
            target = fields[part]
            fields = target.fields
        if target.type != "string":
            raise ValueError(f"files.{file_id}: {ref!r} must be a string field")

    def _check_rule(self, rule: PackRule) -> None:
        try:
            parsed = rule.parsed()
        except ValueError as exc:
            raise ValueError(f"rule {rule.id}: {exc}") from None
        known = set(self.files) | set(self.bindings) | set(self.constants) | set(rule.let)
        if parsed.each:
            known.add(parsed.each[0])
        for expr in parsed.expressions():
            unknown = sorted(expr.names - known)
            if unknown:
                raise ValueError(f"rule {rule.id}: unknown name {unknown[0]!r} in {expr.source!r}")


def _walk_fields(fields: dict[str, FieldSpec]) -> list[FieldSpec]:
    out = []
    for f in fields.values():
        out.append(f)
        out += _walk_fields(f.fields or {})
        if f.items is not None:
            out += [f.items, *_walk_fields(f.items.fields or {})]
    return out
