"""The Ray executor on a local cluster of this machine's CPUs seals Phase 2 and Phase 3
results sha256-identical to the in-process executor, for both roles
(spec/06_MODELS_AND_HOOKS.md §7 "Executors"); its refusals are one line, exit 2."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from canon import CANON
from critspec.cli import main
from critspec.config.resolve import load_config
from critspec.errors import CheckFailed
from critspec.models.device import resolve_dtype
from critspec.models.from_config import load_entry
from critspec.passes.executors import open_executor, ray_available, ray_tmp_paths, session
from critspec.passes.intervention import default_intervention
from critspec.passes.task import ModelRef, PassTask
from tests.test_run_all import reduced_config

ROLES = (CANON.ENUM.MODEL_ROLE.INSTRUCT, CANON.ENUM.MODEL_ROLE.BASE)
SUB = CANON.CLI.SUBCOMMAND
RAY = CANON.ENUM.EXECUTOR.RAY
# One worker runs them one after the other: each starts its own local cluster on the
# machine's CPUs, and two at once would only contend for them.
pytestmark = pytest.mark.xdist_group(RAY)
HAS_RAY = ray_available()
needs_ray = pytest.mark.skipif(
    not HAS_RAY,
    reason="ray is not installed; install the extra: "
    f"pip install -e '{CANON.CONST.DISTRIBUTED_EXTRA}'",
)


def _results(store: Path, phase_id: str) -> dict[tuple[str, str], str]:
    """(role, results file) -> sha256 over every run of a phase in a runs dir."""
    out = {}
    for run in store.iterdir():
        record = run / CANON.OUTPUT.RUN_RECORD
        if not record.is_file():
            continue
        doc = json.loads(record.read_text())
        if doc["phase_id"] != phase_id:
            continue
        for f in sorted((run / CANON.OUTPUT.SUBDIR.RESULTS).rglob("*")):
            if f.is_file():
                out[(doc["model_role"], f.name)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _phase(sub: str, config: str, store: Path, role: str, *extra: str) -> None:
    argv = [sub, "--config", config, "--runs-dir", str(store), "--model-role", role, *extra]
    assert main(argv) == CANON.CLI.EXIT.OK


@needs_ray
def test_ray_matches_in_process_for_phases_2_and_3(tmp_path: Path) -> None:
    config = reduced_config(tmp_path)
    local, remote = tmp_path / "inproc", tmp_path / "distributed"
    for role in ROLES:
        _phase(SUB.PHASE1_CALIBRATE, config, local, role)
    shutil.copytree(local, remote)
    for role in ROLES:
        for sub in (SUB.PHASE2_GAIN_GRID, SUB.PHASE2_SELECT_GSTAR, SUB.PHASE3_EXTRACT_RASTERS):
            _phase(sub, config, local, role)
    # One command starting (and removing) its own local cluster ...
    _phase(SUB.PHASE2_GAIN_GRID, config, remote, ROLES[0], "--executor", RAY)
    real, link = ray_tmp_paths(remote)
    assert not real.exists() and not link.is_symlink()
    # ... and the rest on one cluster held across commands, as run-all does.
    with session(RAY, runs_dir=remote):
        _phase(SUB.PHASE2_GAIN_GRID, config, remote, ROLES[1], "--executor", RAY)
        for role in ROLES:
            _phase(SUB.PHASE2_SELECT_GSTAR, config, remote, role)
            _phase(SUB.PHASE3_EXTRACT_RASTERS, config, remote, role, "--executor", RAY)
    for phase_id in (SUB.PHASE2_GAIN_GRID, SUB.PHASE3_EXTRACT_RASTERS):
        want = _results(local, phase_id)
        assert {role for role, _ in want} == set(ROLES)
        assert _results(remote, phase_id) == want


@needs_ray
def test_unreachable_cluster_is_one_line_and_seals_nothing(tmp_path: Path, capsys) -> None:
    config = reduced_config(tmp_path)
    store = tmp_path / "store"
    with pytest.raises(CheckFailed, match="cannot reach the Ray cluster at 127.0.0.1:9"):
        with session(RAY, runs_dir=store, address="127.0.0.1:9"):
            pass
    assert (
        main(
            [
                SUB.PHASE1_CALIBRATE,
                "--config",
                config,
                "--runs-dir",
                str(store),
                "--model-role",
                ROLES[0],
            ]
        )
        == CANON.CLI.EXIT.OK
    )
    argv = [SUB.PHASE2_GAIN_GRID, "--config", config, "--runs-dir", str(store)]
    argv += ["--model-role", ROLES[0], "--executor", RAY, "--ray-address", "127.0.0.1:9"]
    capsys.readouterr()
    assert main(argv) == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip().splitlines()
    assert "cannot reach the Ray cluster" in err[-1]
    sealed = [p for p in store.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]
    assert len(sealed) == 1  # Phase 1 only


def test_ray_flags_refused_where_no_pass_runs(tmp_path: Path, capsys) -> None:
    config = reduced_config(tmp_path)
    argv = [SUB.PHASE1_CALIBRATE, "--config", config, "--runs-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--model-role", ROLES[0], "--executor", RAY])
    assert exc.value.code == CANON.CLI.EXIT.CONTRACT
    argv = [SUB.PHASE2_GAIN_GRID, "--config", config, "--runs-dir", str(tmp_path / "x")]
    assert main([*argv, "--model-role", ROLES[0], "--ray-address", "h:1"]) == (
        CANON.CLI.EXIT.CONTRACT
    )
    assert "--ray-address is for executor" in capsys.readouterr().err


@dataclass(frozen=True)
class _KillsItsWorker:
    """A consumer whose start ends the worker process, as an out-of-memory kill would."""

    kind: ClassVar[str] = "kills_its_worker"
    needs_u: ClassVar[bool] = False
    needs_logits: ClassVar[bool] = True

    def start(self, shape, device):  # noqa: ANN001, ANN201
        os._exit(3)


@needs_ray
def test_dead_worker_is_one_line_exit_2(tmp_path: Path) -> None:
    config = load_config(Path(reduced_config(tmp_path)))
    entry = config.model_entry(ROLES[0])
    device = torch.device(CANON.ENUM.DEVICE.CPU)
    loaded = load_entry(entry, device, resolve_dtype(CANON.ENUM.DTYPE.FP32, device))
    task = PassTask(
        key=(CANON.CONST.GAIN_BASELINE,),
        model=ModelRef(entry=entry, revision=loaded.info.revision),
        device=CANON.ENUM.DEVICE.CPU,
        dtype=CANON.ENUM.DTYPE.FP32,
        torch_threads=1,
        batch_size=2,
        input_ids=np.zeros((2, 4), dtype=np.int64),
        intervention=default_intervention(CANON.CONST.GAIN_BASELINE),
        consumers=(_KillsItsWorker(),),
    )
    store = tmp_path / "store"
    with (
        session(RAY, runs_dir=store),
        open_executor(RAY, runs_dir=store) as executor,
        pytest.raises(CheckFailed, match="died or the cluster was lost") as exc,
    ):
        executor.map([task])
    assert "\n" not in str(exc.value) and exc.value.exit_code == CANON.CLI.EXIT.CONTRACT
    real, link = ray_tmp_paths(store)
    assert not real.exists() and not link.is_symlink()
