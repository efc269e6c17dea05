"""Scans that keep the spec the single source (spec/00_OVERVIEW.md).

Single definition: outside spec/ and the generated canon/ and contracts/, no
Python string constant equals a CANON identifier (a PATH, CLI, ENUM or OUTPUT
value), none embeds a CANON artifact basename or command string, no number
equals a CANON.CONST float (other than 0, 0.5, 1) or a CONST integer of four
digits or more, and no config scalar does either. Docstrings are prose and are
not scanned. Every `CANON.X.Y` reference in spec prose, configs, contract docs
and the README resolves. Generated files match spec/.
"""

from __future__ import annotations

import ast
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canon import CANON
from critspec.config.canon_refs import canon_value
from critspec.errors import ContractError
from critspec.generate import plan
from critspec.paths import SPEC_DIRNAME, project_root

ROOT = project_root()
SCANNED_DIRS = ("src", "runners", "acceptance", "tests", "bench", CANON.PATH.CONFIGS_DIR)
IDENTIFIER_SECTIONS = ("PATH", "CLI", "ENUM", "OUTPUT")
GENERIC_NUMBERS = {0.0, 0.5, 1.0}
# Plain words that are also a data format's field names (ARC's "text" field, the "text"
# scoring regime): a literal "text" in code is nearly always the word, not the CANON id.
GENERIC_STRINGS = {"text"}
MIN_SCANNED_INT = 1000
MIN_SCANNED_STRING = 3
REF = re.compile(r"CANON(?:\.[A-Z][A-Z0-9_]*)+")


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        yield from node
    else:
        yield node


def _leaves(ref: str) -> Iterator[Any]:
    yield from _walk(canon_value(ref))


IDENTIFIERS = {
    v
    for section in IDENTIFIER_SECTIONS
    for v in _leaves(f"CANON.{section}")
    if isinstance(v, str) and len(v) >= MIN_SCANNED_STRING and v not in GENERIC_STRINGS
}
EMBEDDED = {v for v in _leaves("CANON.OUTPUT") if isinstance(v, str) and "." in v} | set(
    _leaves("CANON.CLI.CMD")
)
CONST_NUMBERS = {
    v
    for v in _leaves("CANON.CONST")
    if (isinstance(v, float) and v not in GENERIC_NUMBERS)
    or (isinstance(v, int) and not isinstance(v, bool) and v >= MIN_SCANNED_INT)
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _string_problem(value: str) -> str | None:
    if value in IDENTIFIERS:
        return f"string {value!r} is a CANON value"
    for embedded in EMBEDDED:
        if embedded in value:
            return f"string embeds CANON value {embedded!r}"
    return None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value in CONST_NUMBERS:
        return f"number {value!r} is a CANON.CONST value"
    return None


def python_findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in skip:
            continue
        problem = (
            _string_problem(node.value)
            if isinstance(node.value, str)
            else _number_problem(node.value)
        )
        if problem:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {problem}")
    return out


def yaml_findings(path: Path) -> list[str]:
    out = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
        else:
            problem = _string_problem(node) if isinstance(node, str) else _number_problem(node)
            if problem:
                out.append(f"{path.relative_to(ROOT)}:{where}: {problem}")

    walk(yaml.safe_load(path.read_text(encoding="utf-8")), "")
    return out


def scanned_files() -> Iterator[Path]:
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
                yield path


def test_scan_covers_the_code() -> None:
    names = {p.relative_to(ROOT).parts[0] for p in scanned_files()}
    assert {"src", "tests", "acceptance", CANON.PATH.CONFIGS_DIR} <= names


def test_no_canon_literal_outside_spec_and_generated_files() -> None:
    findings = []
    for path in scanned_files():
        findings += python_findings(path) if path.suffix == ".py" else yaml_findings(path)
    assert not findings, "CANON literals outside spec/:\n" + "\n".join(findings)


def test_scan_catches_a_planted_literal(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        f"X = {CANON.OUTPUT.ARTIFACT.METRICS!r}\nY = {CANON.CONST.EPS!r}\n"
        f"Z = 'results/' + {CANON.OUTPUT.ARTIFACT.GSTAR!r}\n"
    )
    shutil.copy(planted, ROOT / "tests" / f"_planted_{tmp_path.name}.py")
    try:
        found = python_findings(ROOT / "tests" / f"_planted_{tmp_path.name}.py")
    finally:
        (ROOT / "tests" / f"_planted_{tmp_path.name}.py").unlink()
    assert len(found) == 3, found


def _reference_files() -> Iterator[Path]:
    yield from sorted((ROOT / SPEC_DIRNAME).glob("*.md"))
    yield from sorted((ROOT / CANON.PATH.CONFIGS_DIR).glob("*.yaml"))
    yield from sorted((ROOT / CANON.PATH.CONTRACTS_DIR).glob("*.md"))
    yield ROOT / "README.md"


def test_every_canon_reference_resolves() -> None:
    unresolved = []
    seen = 0
    for path in _reference_files():
        if not path.exists():
            continue
        for ref in REF.findall(path.read_text(encoding="utf-8")):
            seen += 1
            try:
                canon_value(ref)
            except KeyError:
                unresolved.append(f"{path.relative_to(ROOT)}: {ref}")
    assert seen > 0
    assert not unresolved, "unresolved CANON references:\n" + "\n".join(unresolved)


def test_generated_files_in_sync() -> None:
    plan.check(ROOT)


@pytest.fixture()
def tree_copy(tmp_path: Path) -> Path:
    for top in (SPEC_DIRNAME, CANON.PATH.CANON_DIR, CANON.PATH.CONTRACTS_DIR):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_changed_constant_without_regenerating_is_drift(tree_copy: Path) -> None:
    canon_yaml = tree_copy / SPEC_DIRNAME / "canon.yaml"
    text = canon_yaml.read_text()
    assert "  TAU0_BASELINE: " in text
    canon_yaml.write_text(text.replace("  TAU0_BASELINE: ", "  TAU0_BASELINE: 3", 1))
    with pytest.raises(ContractError, match=r"canon/__init__\.py"):
        plan.check(tree_copy)
    plan.write(tree_copy)
    plan.check(tree_copy)


def test_stale_generated_file_is_drift(tree_copy: Path) -> None:
    (tree_copy / CANON.PATH.CONTRACTS_DIR / "stale.md").write_text("old\n")
    with pytest.raises(ContractError, match="stale.md"):
        plan.check(tree_copy)


def test_spec_rejects_unknown_section(tree_copy: Path) -> None:
    canon_yaml = tree_copy / SPEC_DIRNAME / "canon.yaml"
    canon_yaml.write_text(canon_yaml.read_text() + "\nSURPRISE:\n  X: 1\n")
    with pytest.raises(ContractError, match="SURPRISE"):
        plan.check(tree_copy)
