"""Code identity for run ids (spec/07_RUNS_RECORDS_LOGGING.md §2, §5): a hash of what can
change results, not the git commit. Checked on a copy of the checkout without git."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canon import CANON
from critspec import __version__
from critspec.paths import project_root
from critspec.runtime import code_files, code_version, source_sha256, version_of
from critspec.store.run_store import content_run_id

CODE_DIRS = ("src", "runners", "spec", CANON.PATH.CANON_DIR, CANON.PATH.CONTRACTS_DIR)
README = "README.md"
A_TEST = "tests/test_code_identity.py"
A_SOURCE = "src/critspec/runtime.py"
PACKAGE = Path(A_SOURCE).parent  # src/<package>/
TAG = CANON.OUTPUT.STAGE_TAG.PHASE1_CALIBRATE


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The code folders, the README and one test, copied without .git or caches."""
    root = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__")
    for name in CODE_DIRS:
        shutil.copytree(project_root() / name, root / name, ignore=ignore)
    for name in (README, A_TEST):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(project_root() / name, root / name)
    assert not (root / ".git").exists()
    return root


def run_id(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("critspec.store.run_store.code_version", lambda: version_of(root))
    return content_run_id(TAG, b"config", ["RUN_UP_0"])


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_copy_has_this_checkouts_code_version(checkout: Path) -> None:
    assert version_of(checkout) == code_version()
    assert code_version() == f"{__version__}+src.{source_sha256()[: CANON.CONST.RUN_HASH_LEN]}"
    rel = {p.relative_to(checkout).parts[0] for p in code_files(checkout)}
    assert rel == set(CODE_DIRS)


def test_readme_and_test_edits_keep_every_run_id(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = run_id(checkout, monkeypatch)
    _append(checkout / README, "\nAn edited paragraph.\n")
    _append(checkout / A_TEST, "\n# an edited comment\n")
    (checkout / "spec" / "99_NOTES.md").write_text("prose only\n")
    (checkout / PACKAGE / "__pycache__").mkdir(exist_ok=True)
    (checkout / PACKAGE / "__pycache__" / "stale.py").write_text("x = 1\n")
    assert run_id(checkout, monkeypatch) == before


@pytest.mark.parametrize(
    "edited", [A_SOURCE, "runners/phase1_calibrate.py", "spec/phases.yaml", "canon/__init__.py"]
)
def test_one_changed_line_of_code_changes_the_run_ids(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, edited: str
) -> None:
    before = run_id(checkout, monkeypatch)
    _append(checkout / edited, "\n# one more line\n")
    after = run_id(checkout, monkeypatch)
    assert after != before
    assert after.startswith(f"{CANON.PATH.RUN_DIR_PREFIX}{TAG}_")


def test_a_new_source_file_changes_the_run_ids(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = run_id(checkout, monkeypatch)
    (checkout / PACKAGE / "extra_module.py").write_text("VALUE = 2\n")
    assert run_id(checkout, monkeypatch) != before
