"""`--dist loadgroup` keeps an xdist_group on one worker (tests/conftest.py), so a group's
session fixture, such as a whole pipeline, is built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from critspec.paths import project_root

GROUPED = textwrap.dedent(
    """
    import os
    from pathlib import Path

    import pytest

    pytestmark = pytest.mark.xdist_group("grouped")


    @pytest.fixture(scope="session")
    def built():
        Path(os.environ["BUILDS_DIR"], str(os.getpid())).touch()


    def test_a(built): pass
    def test_b(built): pass
    def test_c(built): pass
    def test_d(built): pass
    """
)


def test_a_group_fixture_is_built_once_over_two_workers(tmp_path: Path) -> None:
    suite, builds = tmp_path / "suite", tmp_path / "builds"
    suite.mkdir()
    builds.mkdir()
    # The suite uses this project's test-suite hooks, as tests/ does.
    (suite / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (suite / "test_grouped.py").write_text(GROUPED)
    env = {**os.environ, "BUILDS_DIR": str(builds), "PYTHONPATH": str(project_root())}
    argv = [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup"]
    proc = subprocess.run(
        [*argv, "-p", "no:cacheprovider", "-p", "no:randomly", str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
    assert len(list(builds.iterdir())) == 1, "the grouped tests ran on more than one worker"
