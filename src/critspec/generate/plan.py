"""`critspec generate`: every generated file as (relative path -> text), then write or check.

One small module per generated view (canon_py, canon_md, json_schema, ...);
this module only assembles them. Stale files in a generated folder count as drift.
"""

from __future__ import annotations

from pathlib import Path

from critspec.errors import ContractError
from critspec.generate import canon_md, canon_py
from critspec.spec.load import load_canon

CANON_MODULE = "__init__.py"
CANON_TABLE = "CANON.md"


def build(root: Path) -> dict[str, str]:
    """All generated files, keyed by their path relative to the project root."""
    from critspec.generate import contracts_views, pack_views
    from critspec.paths import SPEC_DIRNAME

    spec_dir = root / SPEC_DIRNAME
    canon = load_canon(spec_dir)
    header = canon.PROJECT["GENERATED_HEADER"]
    canon_dir = canon.PATH["CANON_DIR"]
    files = {
        f"{canon_dir}/{CANON_MODULE}": canon_py.render(canon, header),
        f"{canon_dir}/{CANON_TABLE}": canon_md.render(canon, header),
    }
    files.update(contracts_views.render_all(spec_dir, canon, header))
    files.update(pack_views.render_all(spec_dir, canon, header))
    return files


def _generated_dirs(files: dict[str, str]) -> set[str]:
    return {rel.split("/", 1)[0] for rel in files}


def write(root: Path) -> list[str]:
    files = build(root)
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in _stale(root, files):
        (root / stale).unlink()
    return sorted(files)


def _stale(root: Path, files: dict[str, str]) -> list[str]:
    stale = []
    for top in _generated_dirs(files):
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and "__pycache__" not in rel and rel not in files:
                stale.append(rel)
    return stale


def check(root: Path) -> None:
    """Raise ContractError naming every generated file that differs from spec/."""
    files = build(root)
    drift = [
        rel
        for rel, text in sorted(files.items())
        if not (root / rel).exists() or (root / rel).read_text(encoding="utf-8") != text
    ]
    drift += _stale(root, files)
    if drift:
        raise ContractError(
            f"{len(drift)} generated file(s) differ from spec/: {', '.join(drift)}; "
            "run `critspec generate`"
        )
