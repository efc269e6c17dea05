"""`critspec validate --pack PACK DIR`: a trainer's output directory against a contract pack.

Reads the generated pack (contracts/packs/<pack>/pack.json and its schema and
array views), locates every declared file, checks each against its own
contract, then evaluates the pack's rules. Unlike the single-artifact
validator it collects every violation: one (file, rule, found, expected) each.
Bad invocations (unknown pack, missing directory, unknown or missing binding)
raise ContractError before anything is checked.
"""

from __future__ import annotations

import functools
import json
import math
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator

from canon import CANON
from critspec.errors import ContractError
from critspec.generate.contracts_views import INDEX_JSON
from critspec.generate.pack_views import INDEX_KEY
from critspec.paths import contracts_dir
from critspec.spec import rule_lang
from critspec.spec.packs_spec import PF, PackFile, PackSpec, ParsedRule
from critspec.spec.rule_lang import Absent, Context, Doc, NoFile
from critspec.store.hashing import sha256_file
from critspec.store.writers import read_npz
from critspec.validate.bindings import _scalar
from critspec.validate.json_validator import load_document

CHECK = CANON.ENUM.PACK_CHECK
SEV = CANON.ENUM.PACK_SEVERITY
UNKNOWN = CANON.ENUM.PACK_UNKNOWN_KEYS
_BINDING_TYPES = {"integer": (int,), "number": (int, float), "string": (str,)}
# Values a rule could not be evaluated on: data of the wrong type or arithmetic on it.
_DATA_ERRORS = (TypeError, ValueError, ArithmeticError)
# jsonschema's name for "a key the schema does not declare".
_UNKNOWN_KEY_VALIDATOR = "additionalProperties"
_KINDS = {"numeric": (np.number, np.bool_), "floating": (np.floating,)}


@dataclass(frozen=True)
class Violation:
    file: str
    rule: str
    found: str
    expected: str
    severity: str = SEV.ERROR

    def line(self) -> str:
        mark = "" if self.severity == SEV.ERROR else f"{self.severity}: "
        return f"{self.file}: {self.rule}: {mark}found {self.found}, expected {self.expected}"


@dataclass(frozen=True)
class Skipped:
    rule: str
    reason: str

    def line(self) -> str:
        return f"{self.rule}: skipped: {self.reason}"


@dataclass(frozen=True)
class PackReport:
    pack: str
    directory: str
    files: tuple[str, ...]
    rules_checked: int
    violations: tuple[Violation, ...]
    skipped: tuple[Skipped, ...]
    strict: bool = False

    @property
    def errors(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == SEV.ERROR)

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == SEV.WARNING)

    @property
    def failing(self) -> tuple[Violation, ...]:
        """What fails the command: errors, and warnings too under --strict."""
        return self.violations if self.strict else self.errors

    @property
    def ok(self) -> bool:
        return not self.failing

    def as_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "directory": self.directory,
            "ok": self.ok,
            "strict": self.strict,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "files": list(self.files),
            "rules_checked": self.rules_checked,
            "violations": [vars(v) for v in self.violations],
            "skipped": [vars(s) for s in self.skipped],
        }


@dataclass(frozen=True)
class LoadedPack:
    spec: PackSpec
    views: dict[str, dict[str, Any]]


def packs_root(root: Path | None = None) -> Path:
    return (root or contracts_dir()) / CANON.PATH.PACKS_DIR


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: missing; run `critspec generate`") from None


@functools.cache
def _load(root: Path, pack_id: str) -> LoadedPack:
    index = _read_json(root / INDEX_JSON)[INDEX_KEY]
    if pack_id not in index:
        raise ContractError(f"unknown pack {pack_id!r}; known: {', '.join(sorted(index))}")
    doc = _read_json(root / index[pack_id]["pack"])
    views = {
        file_id: {kind: _read_json(root / pack_id / name)}
        for file_id, entry in doc["views"].items()
        for kind, name in entry.items()
    }
    return LoadedPack(spec=PackSpec.model_validate(doc["pack"]), views=views)


def load_pack(pack_id: str, root: Path | None = None) -> LoadedPack:
    """The generated pack `pack_id` (root: a contracts/ directory, default the checkout's)."""
    return _load(packs_root(root), pack_id)


def parse_pack_binds(pack: PackSpec, pairs: list[str]) -> dict[str, Any]:
    """`--bind NAME=VALUE` pairs checked against the pack's bindings; defaults fill the rest."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ContractError(f"--bind {pair!r}: expected NAME=VALUE")
        if key not in pack.bindings:
            known = ", ".join(sorted(pack.bindings)) or "none"
            raise ContractError(f"--bind {key}: pack {pack.id} has no such binding; known: {known}")
        value = _scalar(text)
        spec = pack.bindings[key]
        if isinstance(value, bool) or not isinstance(value, _BINDING_TYPES[spec.type]):
            raise ContractError(f"--bind {key}={text}: expected a {spec.type}")
        out[key] = value if spec.type != "string" else text
    for name, spec in pack.bindings.items():
        if name not in out:
            if spec.default is None:
                raise ContractError(
                    f"pack {pack.id}: binding {name} is unbound; pass --bind {name}=VALUE "
                    f"(e.g. {spec.example})"
                )
            out[name] = spec.default
    return out


class _Run:
    """One validation of one directory: locate and load files, then evaluate rules.

    Every path is resolved and must stay inside DIR and be a regular file before it is
    opened (spec/packs/README.md); a file that fails its own contract is `broken`, and
    only the rules that read it are skipped.
    """

    def __init__(self, pack: LoadedPack, directory: Path, bindings: dict[str, Any]) -> None:
        self.pack = pack.spec
        self.views = pack.views
        self.root = directory.resolve()
        self.bindings = bindings
        self.files: dict[str, Doc | NoFile | list[Doc]] = {}
        self.broken: dict[str, str] = {}
        self.violations: list[Violation] = []
        self.skipped: list[Skipped] = []

    def fail(
        self, file: str, rule: str, found: str, expected: str, severity: str = SEV.ERROR
    ) -> None:
        self.violations.append(Violation(file, rule, found, expected, severity))

    def breaks(self, file_id: str, why: str) -> None:
        self.broken.setdefault(file_id, why)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # --- locating -------------------------------------------------------------
    def _inside(self, file_id: str, path: Path, shown: str) -> Path | None:
        """`path` resolved (symlinks followed); None, with a violation, when it leaves DIR."""
        target = path.resolve()
        if not target.is_relative_to(self.root):
            self.fail(shown, CHECK.FILE_LOCATION, "a path that resolves outside DIR", "inside DIR")
            self.breaks(file_id, CHECK.FILE_LOCATION)
            return None
        return target

    def _regular(self, file_id: str, target: Path, shown: str) -> bool | None:
        """True for a regular file, None when nothing is there, False (and a violation)
        for a directory, FIFO, device or socket: checked by stat, never by opening."""
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.fail(shown, CHECK.FILE_READABLE, f"unreadable ({exc.strerror})", "a file")
            self.breaks(file_id, CHECK.FILE_READABLE)
            return False
        if stat.S_ISREG(mode):
            return True
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        self.fail(shown, CHECK.FILE_NOT_REGULAR, kind, "a regular file")
        self.breaks(file_id, CHECK.FILE_NOT_REGULAR)
        return False

    def _field_value(self, ref: str) -> tuple[Path, str] | None:
        """(directory of the owning file, the field's string) for `owner.field`, or None.

        Read even from an owner that failed its schema: a valid path field still
        locates its file, so that file's own checks and rules run."""
        owner, _, dotted = ref.partition(".")
        doc = self.files.get(owner)
        if not isinstance(doc, Doc):
            return None
        value: Any = doc.content
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if not isinstance(value, str) or not value:
            return None
        return (self.root / doc.path).parent, value

    def locate(self, file_id: str, spec: PackFile) -> None:
        base = self.root
        if spec.reference is not None:
            owner = spec.reference.partition(".")[0]
            found = self._field_value(spec.reference)
            if found is None:
                self.files[file_id] = NoFile(file_id, None)
                if owner in self.broken:
                    # The owner's own violation already says why this file cannot be found.
                    self.breaks(file_id, f"{owner} failed its own contract")
                elif spec.under is not None and isinstance(self.files.get(owner), Doc):
                    self.breaks(file_id, f"`{spec.under}` names no directory")
                return
            if spec.path_field is not None:
                self._locate_named(file_id, spec, found[0] / found[1], found[1])
                return
            base = found[0] / found[1]
        if spec.pattern is not None:
            self._locate_family(file_id, spec, base)
            return
        assert spec.path is not None
        target = self._inside(file_id, base / spec.path, spec.path)
        if target is None:
            self.files[file_id] = NoFile(file_id, spec.path)
            return
        regular = self._regular(file_id, target, self.rel(target))
        if regular:
            self.load(file_id, spec, target)
        elif regular is None:
            self._absent(file_id, spec, self.rel(target), "the file")
        else:
            self.files[file_id] = NoFile(file_id, self.rel(target))

    def _locate_named(self, file_id: str, spec: PackFile, path: Path, shown: str) -> None:
        target = self._inside(file_id, path, shown)
        if target is None:
            self.files[file_id] = NoFile(file_id, shown)
            return
        regular = self._regular(file_id, target, self.rel(target))
        if regular:
            self.load(file_id, spec, target)
            return
        self.files[file_id] = NoFile(file_id, self.rel(target))
        if regular is None:
            self.fail(self.rel(target), CHECK.FILE_REQUIRED, "no such file", f"`{spec.path_field}`")
            self.breaks(file_id, CHECK.FILE_REQUIRED)

    def _absent(self, file_id: str, spec: PackFile, shown: str | None, what: str) -> None:
        self.files[file_id] = NoFile(file_id, shown)
        if spec.required:
            self.fail(shown or file_id, CHECK.FILE_REQUIRED, "no such file", f"{what} present")
            self.breaks(file_id, CHECK.FILE_REQUIRED)

    def _locate_family(self, file_id: str, spec: PackFile, base: Path) -> None:
        sub, regex = spec.pattern_parts()
        self.files[file_id] = []
        directory = self._inside(file_id, base / sub, self.rel_or(base / sub))
        if directory is None:
            return
        shown = (
            PurePosixPath(self.rel(directory)) / PurePosixPath(spec.pattern or "").name
        ).as_posix()
        if not directory.is_dir():
            self.fail(shown, CHECK.FILE_LOCATION, "no such directory", "a directory")
            self.breaks(file_id, CHECK.FILE_LOCATION)
            return
        members: list[tuple[int, str, Path]] = []
        for entry in directory.iterdir():
            match = regex.match(entry.name)
            if match is None:
                continue
            member = self.rel(directory / entry.name)
            # A member is confined like any file: a symlink out of DIR, a directory,
            # a FIFO or a device named like a member is a violation, never skipped.
            target = self._inside(file_id, entry, member)
            if target is None:
                continue
            regular = self._regular(file_id, target, member)
            if regular:
                members.append((int(match.group(1)), entry.name, target))
            elif regular is None:  # a dangling link: the consumer's glob lists it, then fails
                self.fail(member, CHECK.FILE_NOT_REGULAR, "a link to nothing", "a regular file")
                self.breaks(file_id, CHECK.FILE_NOT_REGULAR)
        members.sort()
        lo = spec.count.min if spec.count else 0
        hi = spec.count.max if spec.count else None
        if len(members) < lo or (hi is not None and len(members) > hi):
            want = f"at least {lo}" if hi is None else f"{lo} to {hi}"
            self.fail(shown, CHECK.FILE_COUNT, f"{len(members)} files", f"{want} files")
            self.breaks(file_id, CHECK.FILE_COUNT)
        indices = [i for i, _, _ in members]
        if spec.contiguous and indices != list(range(len(indices))):
            self.fail(
                shown,
                CHECK.FILE_CONTIGUOUS,
                f"indices {rule_lang.show(indices)}",
                f"0..{len(indices) - 1} with no gap",
            )
            self.breaks(file_id, CHECK.FILE_CONTIGUOUS)
        docs = []
        for _, _, path in members:
            doc = self.read(file_id, spec, path)
            if doc is not None:
                docs.append(doc)
        self.files[file_id] = docs

    def rel_or(self, path: Path) -> str:
        target = path.resolve()
        return self.rel(target) if target.is_relative_to(self.root) else str(path)

    # --- loading ----------------------------------------------------------------
    def load(self, file_id: str, spec: PackFile, path: Path) -> None:
        doc = self.read(file_id, spec, path)
        self.files[file_id] = doc if doc is not None else NoFile(file_id, self.rel(path))

    def read(self, file_id: str, spec: PackFile, path: Path) -> Doc | None:
        shown = self.rel(path)
        try:
            if spec.format == PF.NPZ:
                content: Any = read_npz(path)
            elif spec.format == PF.OPAQUE:
                content = None
            else:
                # The consumers packs mirror read JSON with Python's json, NaN included.
                content = load_document(path, spec.format, nonfinite=True)[0]
        except ContractError as exc:
            self.fail(shown, CHECK.FILE_READABLE, str(exc).removeprefix(f"{path}: "), spec.format)
            self.breaks(file_id, CHECK.FILE_READABLE)
            return None
        if spec.fields is not None:
            n_bad = _nonfinite(content)
            if n_bad:
                self.fail(
                    shown,
                    CHECK.FILE_READABLE,
                    f"{n_bad} NaN/Infinity numbers (Python's json reads them; strict JSON not)",
                    "finite numbers",
                    SEV.WARNING,
                )
            self._check_schema(file_id, spec, shown, content)
        if spec.arrays is not None:
            self._check_arrays(file_id, spec, shown, content)
        return Doc(file_id, shown, functools.cache(functools.partial(sha256_file, path)), content)

    def _check_schema(self, file_id: str, spec: PackFile, shown: str, content: Any) -> None:
        validator = Draft202012Validator(self.views[file_id]["schema"])
        errors = sorted(validator.iter_errors(content), key=lambda e: (list(e.path), e.message))
        unknown = SEV.WARNING if spec.unknown_keys != UNKNOWN.ERROR else SEV.ERROR
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "<root>"
            if error.validator == _UNKNOWN_KEY_VALIDATOR:
                self.fail(
                    shown,
                    CHECK.FILE_UNKNOWN_KEY,
                    f"{where}: {error.message}",
                    "declared keys only",
                    unknown,
                )
                if unknown == SEV.ERROR:
                    self.breaks(file_id, CHECK.FILE_UNKNOWN_KEY)
                continue
            self.fail(shown, CHECK.FILE_SCHEMA, f"{where}: {error.message}", str(error.validator))
            self.breaks(file_id, CHECK.FILE_SCHEMA)

    def _check_arrays(
        self, file_id: str, spec: PackFile, shown: str, arrays: dict[str, np.ndarray]
    ) -> None:
        want = self.views[file_id]["arrays"]["arrays"]
        before = len([v for v in self.violations if v.severity == SEV.ERROR])
        for name in want:
            if name not in arrays:
                self.fail(shown, CHECK.FILE_ARRAYS, f"no array {name!r}", f"arrays {list(want)}")
        if spec.unknown_keys != UNKNOWN.ALLOWED:
            severity = SEV.ERROR if spec.unknown_keys == UNKNOWN.ERROR else SEV.WARNING
            for name in arrays:
                if name not in want:
                    self.fail(
                        shown,
                        CHECK.FILE_UNKNOWN_KEY,
                        f"array {name!r}",
                        f"only {list(want)}",
                        severity,
                    )
        symbols: dict[str, int] = {k: v for k, v in self.bindings.items() if isinstance(v, int)}
        for name, array_spec in want.items():
            if name in arrays:
                self._check_array(shown, name, arrays[name], array_spec, symbols)
        if len([v for v in self.violations if v.severity == SEV.ERROR]) > before:
            self.breaks(file_id, CHECK.FILE_ARRAYS)

    def _check_array(
        self, shown: str, name: str, array: np.ndarray, spec: dict[str, Any], sym: dict[str, int]
    ) -> None:
        def bad(found: str, expected: str, severity: str = SEV.ERROR) -> None:
            self.fail(shown, CHECK.FILE_ARRAYS, f"{name}: {found}", expected, severity)

        want = spec["dtype"]
        kinds = _KINDS.get(want)
        if kinds is not None:
            if not any(np.issubdtype(array.dtype, k) for k in kinds):
                bad(f"dtype {array.dtype}", f"a {want} dtype")
                return
        elif array.dtype != np.dtype(want):
            bad(f"dtype {array.dtype}", want)
        dims = spec["shape"]
        if array.ndim != len(dims):
            bad(f"shape {list(array.shape)}", f"{len(dims)} dimensions {dims}")
            return
        for dim, size in zip(dims, array.shape, strict=True):
            # The first array that shows a free symbol fixes it for the rest of the file.
            want_size = sym.setdefault(dim, int(size)) if isinstance(dim, str) else dim
            if size != want_size:
                bad(f"shape {list(array.shape)}", f"{dims} with {dim}={want_size}")
                return
        if array.size == 0 or not np.issubdtype(array.dtype, np.number):
            return
        finite = spec.get("finite")
        if finite and np.issubdtype(array.dtype, np.inexact):
            n_bad = int(np.count_nonzero(~np.isfinite(array)))
            if n_bad:
                bad(f"{n_bad} non-finite values", "finite values", finite)
                if finite == SEV.ERROR:
                    return
        values = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.inexact) else array
        if values.size == 0:
            return
        lo, hi = spec.get("minimum"), spec.get("maximum")
        if lo is not None and values.min() < lo:
            bad(f"minimum {values.min()}", f">= {lo}")
        if hi is not None and values.max() > hi:
            bad(f"maximum {values.max()}", f"<= {hi}")

    # --- rules ----------------------------------------------------------------------
    def check_rule(self, parsed: ParsedRule) -> bool:
        """Evaluate one rule; False when it was skipped because a file it reads is broken."""
        rule = parsed.rule
        broken = sorted(parsed.file_ids(self.pack.files) & set(self.broken))
        if broken:
            why = self.broken[broken[0]]
            self.skipped.append(
                Skipped(rule.id, f"it reads {broken[0]}, which failed its own contract ({why})")
            )
            return False
        values: dict[str, Any] = {**self.pack.constants, **self.bindings}
        if parsed.each is None:
            self._check_once(parsed, self._context(parsed, values))
            return True
        var, seq_expr = parsed.each
        ctx = self._context(parsed, values)
        try:
            items = list(rule_lang.evaluate(seq_expr, ctx))
        except (Absent, *_DATA_ERRORS) as exc:
            self.fail(
                self._file_of(parsed, ctx), rule.id, _why(exc), f"`{rule.each}`", rule.severity
            )
            return True
        for item in items:
            where = f"{var}={rule_lang.show(item)}: "
            self._check_once(parsed, self._context(parsed, {**values, var: item}), where)
        return True

    def _context(self, parsed: ParsedRule, values: dict[str, Any]) -> Context:
        """A context whose `let` names evaluate lazily, in that same context, when read."""
        values = dict(values)
        ctx = Context(values=values, files=self.files, lazy=frozenset(parsed.let))
        for name, expr in parsed.let.items():
            values[name] = functools.partial(rule_lang.evaluate, expr, ctx)
        return ctx

    def _check_once(self, parsed: ParsedRule, ctx: Context, where: str = "") -> None:
        """One evaluation; `where` names the `each` value it ran for (prefixed to `found`)."""
        rule = parsed.rule
        try:
            if parsed.when is not None and not rule_lang.evaluate(parsed.when, ctx):
                return
            if rule_lang.evaluate(parsed.check, ctx):
                return
            found, expected = rule_lang.explain(parsed.check, ctx)
        except (Absent, *_DATA_ERRORS) as exc:
            found, expected = _why(exc), f"`{rule.check}` to be checkable"
        self.fail(self._file_of(parsed, ctx), rule.id, where + found, expected, rule.severity)

    def _file_of(self, parsed: ParsedRule, ctx: Context) -> str:
        names = sorted(parsed.file_ids(self.pack.files))
        fallback = names[0] if names else self.pack.id
        if parsed.file is None:
            return _shown(self.files.get(fallback), fallback)
        try:
            return _shown(rule_lang.evaluate(parsed.file, ctx), parsed.file.source)
        except (Absent, *_DATA_ERRORS):
            return parsed.file.source


def _nonfinite(node: Any) -> int:
    """How many NaN/Infinity numbers a parsed document holds (iterative: depth is bounded
    by the reader, but recursion is not needed)."""
    count, stack = 0, [node]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            count += 1
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _shown(value: Any, fallback: str) -> str:
    if isinstance(value, Doc):
        return value.path
    if isinstance(value, NoFile) and value.path is not None:
        return value.path
    return fallback


def _why(exc: Exception) -> str:
    if isinstance(exc, Absent):
        return f"absent value ({exc})"
    return f"uncheckable data ({type(exc).__name__}: {exc})"


def validate_pack(
    pack_id: str,
    directory: Path,
    binds: list[str],
    root: Path | None = None,
    strict: bool = False,
) -> PackReport:
    """Every violation of `directory` against pack `pack_id` (root: a contracts/ directory);
    `strict` makes warnings fail the report too."""
    loaded = load_pack(pack_id, root)
    if not directory.is_dir():
        raise ContractError(f"{directory}: no such directory (pack {pack_id})")
    run = _Run(loaded, directory, parse_pack_binds(loaded.spec, binds))
    for file_id, spec in loaded.spec.files.items():
        run.locate(file_id, spec)
    checked = sum(run.check_rule(rule.parsed()) for rule in loaded.spec.rules)
    present = [
        doc.path
        for value in run.files.values()
        for doc in (value if isinstance(value, list) else [value])
        if isinstance(doc, Doc)
    ]
    return PackReport(
        pack=pack_id,
        directory=str(directory),
        files=tuple(sorted(set(present))),
        rules_checked=checked,
        violations=tuple(run.violations),
        skipped=tuple(run.skipped),
        strict=strict,
    )
