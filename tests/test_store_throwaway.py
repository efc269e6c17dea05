"""A throwaway two-phase pipeline declared here runs through the run store
(spec/07_RUNS_RECORDS_LOGGING.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from canon import CANON
from critspec.cli import main
from critspec.errors import ContractError, DependencyError, RunExistsError
from critspec.spec.phases_spec import Consumes, PhaseSpec
from critspec.store.hashing import sha256_file
from critspec.store.run_store import RunBuilder, SealedRun, open_run
from critspec.store.writers import read_json, read_jsonl, write_json

SUB = CANON.CLI.SUBCOMMAND
N, T, L, D_FF = 3, 5, 2, 4

PRODUCER = PhaseSpec(
    key="PRODUCER",
    id=SUB.PHASE1_CALIBRATE,
    stage_tag=CANON.OUTPUT.STAGE_TAG.PHASE1_CALIBRATE,
    log=CANON.OUTPUT.LOG.PHASE1_CALIBRATE,
    runner="tests",
    per_model_role=False,
    commands={},
    config_sections=(),
    consumes=(),
    produces=("calibration_slice",),
    checks=(),
    once_checks=(),
)
CONSUMER = PhaseSpec(
    key="CONSUMER",
    id=SUB.PHASE2_GAIN_GRID,
    stage_tag=CANON.OUTPUT.STAGE_TAG.PHASE2_GAIN_GRID,
    log=CANON.OUTPUT.LOG.PHASE2_GAIN_GRID,
    runner="tests",
    per_model_role=False,
    commands={},
    config_sections=(),
    consumes=(Consumes(phase="PRODUCER", artifacts=("calibration_slice",)),),
    produces=("calibration_stats",),
    checks=(),
    once_checks=(),
)
CONFIG = {"profile": "throwaway", "knob": [1, 2, 3]}
SLICE = {
    "dataset_role": CANON.ENUM.DATASET_ROLE.A,
    "slice_name": "throwaway",
    "source": CANON.ENUM.DATASET_SOURCE.SYNTHETIC,
    "n_windows": N,
    "seq_len_tokens": T,
    "slice_sha256": "a" * 64,
    "tokenizer_sha256": "b" * 64,
}
MODEL = {
    "model_id": "toy",
    "source": CANON.ENUM.MODEL_SOURCE.EMBEDDED,
    "revision": "c" * 64,
    "weights_sha256": "c" * 64,
    "local_dir": None,
    "model_type": "toy",
    "arch_family": CANON.ENUM.ARCH_FAMILY.SWIGLU,
    "n_layers": L,
    "d_ff": D_FF,
    "dtype": CANON.ENUM.DTYPE.FP32,
    "device": CANON.ENUM.DEVICE.CPU,
}


def producer_run(
    runs: Path,
    mode: str = CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
    allow_resume: bool = False,
):  # noqa: ANN201
    return open_run(
        phase=PRODUCER,
        runs_dir=runs,
        config_doc=CONFIG,
        model_role=None,
        upstream_ids=[],
        run_id_mode=mode,
        allow_resume=allow_resume,
    )


def write_slice(run: RunBuilder) -> None:
    run.dataset_slices.append(SLICE)
    run.write_npz(
        "calibration_slice",
        {
            "window_index": np.arange(N, dtype=np.int64),
            "input_ids": np.arange(N * T, dtype=np.int32).reshape(N, T),
        },
    )


def produce(runs: Path, **options: object) -> Path:
    with producer_run(runs, **options) as run:
        write_slice(run)
    return run.final_dir


def consume(runs: Path, upstream_dir: Path) -> Path:
    up = SealedRun.open(upstream_dir)
    with open_run(
        phase=CONSUMER,
        runs_dir=runs,
        config_doc=CONFIG,
        model_role=None,
        upstream_ids=[up.run_id],
        run_id_mode=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
        allow_resume=False,
    ) as run:
        run.model = MODEL
        ids = np.load(run.consume(up, "calibration_slice"))["input_ids"]
        mu = np.full((L, D_FF), ids.mean(), np.float32)
        run.write_npz("calibration_stats", {"mu": mu, "sigma": np.ones((L, D_FF), np.float32)})
    return run.final_dir


def results_hashes(run_dir: Path) -> dict[str, str]:
    sub = run_dir / CANON.OUTPUT.SUBDIR.RESULTS
    return {p.name: sha256_file(p) for p in sub.iterdir()}


def test_run_directory_record_logs_index(tmp_path: Path) -> None:
    up = produce(tmp_path / "store")
    down = consume(tmp_path / "store", up)
    record = read_json(down / CANON.OUTPUT.RUN_RECORD)
    assert record["stage_status"] == CANON.ENUM.STAGE_STATUS.COMPLETE
    assert down.name == record["run_id"] and down.name.startswith(CANON.PATH.RUN_DIR_PREFIX)
    [dep] = record["dependencies"]
    assert dep["run_id"] == up.name
    slice_path = up / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE
    assert dep["artifacts"][0]["sha256"] == sha256_file(slice_path)
    indexed = {i["relative_path"]: i for i in record["artifact_index"]}
    stats = f"{CANON.OUTPUT.SUBDIR.RESULTS}/{CANON.OUTPUT.ARTIFACT.CALIBRATION_STATS}"
    log = f"{CANON.OUTPUT.SUBDIR.LOGS}/{CANON.OUTPUT.LOG.PHASE2_GAIN_GRID}"
    assert set(indexed) == {stats, log}
    assert indexed[stats]["sha256"] == sha256_file(down / stats)
    events = [line["event_type"] for line in read_jsonl(down / log)]
    assert events[0] == CANON.ENUM.LOG_EVENT.START and events[-1] == CANON.ENUM.LOG_EVENT.END
    assert CANON.ENUM.LOG_EVENT.DEPENDENCY_VERIFIED in events
    assert not (down / stats).stat().st_mode & 0o222, "sealed files must be read-only"
    assert main([SUB.VALIDATE_RUN, str(down)]) == CANON.CLI.EXIT.OK


def test_rerun_into_second_runs_dir_is_identical(tmp_path: Path) -> None:
    a = consume(tmp_path / "A", produce(tmp_path / "A"))
    b = consume(tmp_path / "B", produce(tmp_path / "B"))
    assert a.name == b.name
    assert results_hashes(a) == results_hashes(b)


def test_rerun_into_same_runs_dir_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = produce(tmp_path / "store")
    before = results_hashes(up)
    with pytest.raises(RunExistsError) as exc:
        produce(tmp_path / "store")
    assert exc.value.exit_code == CANON.CLI.EXIT.RUN_EXISTS
    assert up.name in str(exc.value)
    assert results_hashes(up) == before


def test_altered_upstream_artifact_exits_3(tmp_path: Path) -> None:
    up = produce(tmp_path / "store")
    target = up / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.CALIBRATION_SLICE
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[-30] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DependencyError) as exc:
        consume(tmp_path / "store", up)
    assert exc.value.exit_code == CANON.CLI.EXIT.DEPENDENCY
    assert target.name in str(exc.value)
    sealed = [
        p for p in (tmp_path / "store").iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)
    ]
    assert sealed == [up]


def test_killed_run_leaves_no_sealed_run(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_store_throwaway import producer_run, write_slice
        with producer_run(Path(sys.argv[1])) as run:
            write_slice(run)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    runs = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", script, str(runs)], capture_output=True)
    assert proc.returncode != 0
    names = [p.name for p in runs.iterdir()]
    assert not [n for n in names if n.startswith(CANON.PATH.RUN_DIR_PREFIX)], names
    assert [n for n in names if n.startswith(CANON.PATH.TMP_RUN_PREFIX)], names
    assert produce(runs).is_dir(), "a later run with the same id must still seal"


def test_failed_run_keeps_its_log_and_seals_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "store"
    with pytest.raises(ZeroDivisionError), producer_run(runs):
        _ = 1 / 0
    [failed] = list(runs.iterdir())
    assert not failed.name.startswith(CANON.PATH.RUN_DIR_PREFIX)
    events = read_jsonl(failed / CANON.OUTPUT.SUBDIR.LOGS / CANON.OUTPUT.LOG.PHASE1_CALIBRATE)
    assert [e["event_type"] for e in events][-2:] == [
        CANON.ENUM.LOG_EVENT.ERROR,
        CANON.ENUM.LOG_EVENT.END,
    ]


def test_record_path_escaping_run_dir_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    up = produce(tmp_path / "store")
    record_path = up / CANON.OUTPUT.RUN_RECORD
    record = read_json(record_path)
    record["artifact_index"][0]["relative_path"] = "../../etc/passwd"
    record_path.chmod(0o644)
    write_json(record_path, record)
    assert main([SUB.VALIDATE_RUN, str(up)]) == CANON.CLI.EXIT.CONTRACT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "etc/passwd" in err


def test_timestamp_mode_gives_fresh_ids(tmp_path: Path) -> None:
    runs = [produce(tmp_path, mode=CANON.ENUM.RUN_ID_MODE.TIMESTAMP) for _ in range(2)]
    assert runs[0] != runs[1]
    assert results_hashes(runs[0]) == results_hashes(runs[1])


def test_allow_resume_only_replaces_an_incomplete_run(tmp_path: Path) -> None:
    store = tmp_path / "store"
    sealed = produce(store)
    with pytest.raises(RunExistsError):
        produce(store, allow_resume=True)
    record_path = sealed / CANON.OUTPUT.RUN_RECORD
    record = read_json(record_path)
    record["stage_status"] = CANON.ENUM.STAGE_STATUS.INCOMPLETE
    record_path.chmod(0o644)
    write_json(record_path, record)
    with pytest.raises(RunExistsError):
        produce(store)
    assert produce(store, allow_resume=True) == sealed
    assert read_json(record_path)["stage_status"] == CANON.ENUM.STAGE_STATUS.COMPLETE


def test_undeclared_artifact_fails_the_seal(tmp_path: Path) -> None:
    runs = tmp_path / "store"
    with pytest.raises(ContractError, match="not declared in spec/phases.yaml `produces`"):
        with producer_run(runs) as run:
            write_slice(run)
            run.model = MODEL
            ones = np.ones((L, D_FF), np.float32)
            run.write_npz("calibration_stats", {"mu": ones, "sigma": ones})
    assert not [p for p in runs.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]


def test_missing_declared_artifact_fails_the_seal(tmp_path: Path) -> None:
    runs = tmp_path / "store"
    with pytest.raises(ContractError, match="did not write \\['calibration_slice'\\]"):
        with producer_run(runs):
            pass
    assert not [p for p in runs.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]


def test_consuming_an_undeclared_artifact_fails(tmp_path: Path) -> None:
    up = SealedRun.open(produce(tmp_path / "store"))
    with pytest.raises(ContractError, match="does not declare in its consumes"):
        with open_run(
            phase=PRODUCER,
            runs_dir=tmp_path / "second",
            config_doc=CONFIG,
            model_role=None,
            upstream_ids=[up.run_id],
            run_id_mode=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
            allow_resume=False,
        ) as run:
            run.consume(up, "calibration_slice")


# --- issue 7: only sealed runs are runs --------------------------------------------
def test_interrupted_seal_leaves_a_failed_dir_whose_record_is_not_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "store"

    def interrupt(_: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("critspec.store.run_store._make_read_only", interrupt)
    with pytest.raises(KeyboardInterrupt):
        produce(runs)
    [failed] = list(runs.iterdir())
    assert failed.name.startswith(CANON.PATH.FAILED_RUN_PREFIX)
    record = read_json(failed / CANON.OUTPUT.RUN_RECORD)
    assert record["stage_status"] == CANON.ENUM.STAGE_STATUS.INCOMPLETE
    assert main([SUB.VALIDATE_RUN, str(failed)]) == CANON.CLI.EXIT.CONTRACT


def test_gc_lists_then_removes_leftovers_but_never_a_live_or_sealed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "store"
    sealed = produce(runs)
    with pytest.raises(ZeroDivisionError), producer_run(runs, CANON.ENUM.RUN_ID_MODE.TIMESTAMP):
        _ = 1 / 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    stale = runs / f"{CANON.PATH.TMP_RUN_PREFIX}{sealed.name}.{dead}"
    live = runs / f"{CANON.PATH.TMP_RUN_PREFIX}{sealed.name}.{os.getpid()}"
    stale.mkdir()
    live.mkdir()
    before = sorted(p.name for p in runs.iterdir())
    assert main([SUB.GC, "--runs-dir", str(runs)]) == CANON.CLI.EXIT.OK
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and sum("--yes" in line for line in listed) == 2
    assert sorted(p.name for p in runs.iterdir()) == before, "listing must not remove"
    assert main([SUB.GC, "--runs-dir", str(runs), "--yes"]) == CANON.CLI.EXIT.OK
    assert sorted(p.name for p in runs.iterdir()) == sorted([sealed.name, live.name])
    assert main([SUB.VALIDATE_RUN, str(sealed)]) == CANON.CLI.EXIT.OK


def test_code_version_is_part_of_the_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from critspec.runtime import code_version, source_sha256
    from critspec.store.run_store import content_run_id

    here = content_run_id(PRODUCER.stage_tag, b"config", [])
    assert here == content_run_id(PRODUCER.stage_tag, b"config", [])
    monkeypatch.setattr("critspec.store.run_store.code_version", lambda: "0.0.0+gother")
    assert content_run_id(PRODUCER.stage_tag, b"config", []) != here
    version = code_version()
    assert version.endswith(f"+src.{source_sha256()[: CANON.CONST.RUN_HASH_LEN]}")


def _role_run(runs: Path, role: str) -> Path:
    with open_run(
        phase=PRODUCER,
        runs_dir=runs,
        config_doc=CONFIG,
        model_role=role,
        upstream_ids=[],
        run_id_mode=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
        allow_resume=False,
    ) as run:
        write_slice(run)
    return run.final_dir


def _gain_grid_dry_run(runs: Path, from_run: str, role: str) -> list[str]:
    from critspec.paths import project_root

    return [
        SUB.PHASE2_GAIN_GRID,
        "--config",
        str(project_root() / CANON.PATH.CONFIG_PIPELINE),
        "--runs-dir",
        str(runs),
        "--model-role",
        role,
        "--from",
        from_run,
        "--dry-run",
    ]


def test_dry_run_from_prints_the_id_that_would_be_sealed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from critspec.config.canonical import canonical_bytes
    from critspec.orchestrate import Options, planned_run_id, settle
    from critspec.store.run_store import content_run_id

    runs = tmp_path / "store"
    role = CANON.ENUM.MODEL_ROLE.INSTRUCT
    up = _role_run(runs, role)
    capsys.readouterr()
    assert main(_gain_grid_dry_run(runs, up.name, role)) == CANON.CLI.EXIT.OK
    printed = json.loads(capsys.readouterr().out)["run_id"]
    from critspec.paths import project_root

    options = Options(
        config=project_root() / CANON.PATH.CONFIG_PIPELINE, runs_dir=runs, model_role=role
    )
    inv = settle(options, "PHASE2_GAIN_GRID")
    sealed = content_run_id(inv.phase.stage_tag, canonical_bytes(inv.config_doc()), [up.name])
    assert printed == sealed
    assert printed != planned_run_id(inv), "the planned upstream is not the --from run"


def test_from_a_run_of_the_other_model_role_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "store"
    up = _role_run(runs, CANON.ENUM.MODEL_ROLE.BASE)
    capsys.readouterr()
    code = main(_gain_grid_dry_run(runs, up.name, CANON.ENUM.MODEL_ROLE.INSTRUCT))
    err = capsys.readouterr().err.strip()
    assert code == CANON.CLI.EXIT.DEPENDENCY, err
    assert "model role" in err and CANON.ENUM.MODEL_ROLE.BASE in err
    assert len(err.splitlines()) == 1
