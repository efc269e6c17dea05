"""`critspec run-all`: every phase for every role, then reuse of identical runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from canon import CANON
from critspec.cli import main
from critspec.paths import project_root
from critspec.spec.load import project_spec

CONFIG = str(project_root() / CANON.PATH.CONFIG_PIPELINE)


def test_run_all_then_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    argv = [CANON.CLI.SUBCOMMAND.RUN_ALL, "--config", CONFIG, "--runs-dir", str(store)]
    assert main(argv) == CANON.CLI.EXIT.OK
    first = capsys.readouterr().out
    n_runs = sum(len(p.roles) for p in project_spec().phases.phases)
    sealed = sorted(p.name for p in store.iterdir())
    assert len(sealed) == n_runs and all(n.startswith(CANON.PATH.RUN_DIR_PREFIX) for n in sealed)
    assert first.count("sealed ") == n_runs
    for role in (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE):
        for sd in (CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS, CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS):
            assert any(line.split()[:2] == [role, sd] for line in first.splitlines())

    assert main(argv) == CANON.CLI.EXIT.OK
    second = capsys.readouterr().out
    assert second.count("reused ") == n_runs and "sealed " not in second
    assert sorted(p.name for p in store.iterdir()) == sealed
