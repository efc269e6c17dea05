"""Hardening, round 2 (issue 19): what needs a real process to check. Stop signals sent
for real, a write that runs out of space, refusals within bounded memory and time, and
--allow-resume next to links out of the runs directory (spec/07_RUNS_RECORDS_LOGGING.md).

The one-line refusals themselves are cases of tests/test_refusals.py; here the same
kinds of input are run in a child process under `resource.setrlimit(RLIMIT_AS, 3 GiB)`
and a 60 s timeout, so a bound that stopped working shows up as a MemoryError, a kill
or a timeout rather than as a slow test.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from canon import CANON
from critspec.errors import ContractError, RunExistsError
from critspec.paths import project_root
from critspec.store.writers import read_json, write_json, write_parquet
from critspec.validate import consistency, contracts
from tests import figure_tables
from tests.test_store_throwaway import produce

EXIT = CANON.CLI.EXIT
SUB = CANON.CLI.SUBCOMMAND
LIMIT = CANON.CONST.CONFIG_LIMIT
TABLE = CANON.OUTPUT.TABLE
ROOT = project_root()
MEMORY_BYTES = 3 << 30
TIME_S = 60


def _bounded() -> None:
    """In the child: at most 3 GiB of address space."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _critspec(
    *args: str, timeout: float = TIME_S, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", CANON.PROJECT.NAME, *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        **kw,  # type: ignore[arg-type]
    )


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {text!r}"
    assert "Traceback" not in text
    return lines[0]


def _pipeline(tmp: Path, section: str, key: str, value: object) -> Path:
    raw = yaml.safe_load((ROOT / CANON.PATH.CONFIG_PIPELINE).read_text(encoding="utf-8"))
    raw["models_file"] = str(ROOT / CANON.PATH.CONFIG_MODELS)
    raw["datasets_file"] = str(ROOT / CANON.PATH.CONFIG_DATASETS)
    raw[section][key] = value
    path = tmp / f"{section}_{key}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# The numbers of issue 19's reproductions: each used to allocate without bound.
HUGE = [
    ("analysis", "bootstrap_reps", 100_000_000, "BOOTSTRAP_REPS_MAX"),
    ("rasters", "n_windows", 1_000_000_000, "N_WINDOWS_MAX"),
    ("calibration", "n_windows", 1_000_000_000, "N_WINDOWS_MAX"),
    ("runtime", "batch_size", 1_000_000_000, "BATCH_SIZE_MAX"),
    ("phase0", "check_windows", 1_000_000_000, "CHECK_WINDOWS_MAX"),
]


@pytest.mark.parametrize(("section", "key", "value", "bound"), HUGE, ids=[h[1] for h in HUGE])
def test_huge_config_number_refused_in_bounded_memory_and_time(
    tmp_path: Path, section: str, key: str, value: int, bound: str
) -> None:
    config = _pipeline(tmp_path, section, key, value)
    store = tmp_path / "store"
    done = _critspec(
        SUB.PHASE0_VALIDATE_ENV,
        "--config",
        str(config),
        "--runs-dir",
        str(store),
        preexec_fn=_bounded,
    )
    assert done.returncode == EXIT.CONTRACT, done.stderr
    line = _one_line(done.stderr)
    assert bound in line and key in line and str(config) in line
    assert not store.exists(), "a refused config creates nothing"


def test_deep_dataset_jsonl_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": ' + "[" * 1_000_000 + "]" * 1_000_000 + "}\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from critspec.data.sources import _local_file
        from critspec.errors import CritspecError
        try:
            _local_file(Path({str(path)!r}), "text")
        except CritspecError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIME_S,
        preexec_fn=_bounded,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert "nested deeper" in _one_line(done.stdout)


# --- stop signals ---------------------------------------------------------------------


def test_stop_signal_during_start_up_is_one_line(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) while the command is still importing and loading its config."""
    argv = [
        sys.executable, "-m", CANON.PROJECT.NAME, SUB.PHASE0_VALIDATE_ENV,
        "--config", str(ROOT / CANON.PATH.CONFIG_PIPELINE),
        "--runs-dir", str(tmp_path / "store"), "--dry-run",
    ]  # fmt: skip
    interrupted = 0
    for delay in (1.0, 2.0, 3.0):
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=TIME_S)
        if child.returncode == EXIT.OK:  # it finished first: nothing to interrupt
            continue
        assert child.returncode == EXIT.INTERRUPTED, err
        assert "interrupted" in _one_line(err) and "no run was sealed" in err
        assert not (tmp_path / "store").exists()
        interrupted += 1
    assert interrupted, "every run finished before its signal: nothing was tested"


SEAL_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from canon import CANON
    # Started as the command is: the process's signal handling belongs to critspec.
    sys.argv = [str(Path(sys.executable).parent / CANON.CLI.ENTRYPOINT), *sys.argv[1:]]
    from critspec import cli
    from critspec.store import run_store

    WHEN, SIGNAL = os.environ["SEAL_WHEN"], getattr(signal, os.environ["SEAL_SIGNAL"])
    rename, seal = os.rename, run_store.RunBuilder.seal

    def renaming(src, dst):  # the signal lands between the rename and its report
        rename(src, dst)
        if WHEN == "rename" and Path(dst).name.startswith(CANON.PATH.RUN_DIR_PREFIX):
            os.kill(os.getpid(), SIGNAL)

    def sealing(self):  # the signal lands after the seal, before the command prints it
        seal(self)
        if WHEN == "after":
            os.kill(os.getpid(), SIGNAL)

    os.rename, run_store.RunBuilder.seal = renaming, sealing
    sys.exit(cli.main())
    """
)


@pytest.mark.parametrize(("when", "sig"), [("rename", "SIGINT"), ("after", "SIGTERM")])
def test_signal_at_the_seal_reports_the_run_sealed(tmp_path: Path, when: str, sig: str) -> None:
    store = tmp_path / "store"
    env = _env() | {"SEAL_WHEN": when, "SEAL_SIGNAL": sig}
    done = subprocess.run(
        [
            sys.executable, "-c", SEAL_CHILD, SUB.PHASE0_VALIDATE_ENV,
            "--config", str(ROOT / CANON.PATH.CONFIG_PIPELINE), "--runs-dir", str(store),
        ],
        capture_output=True, text=True, env=env, timeout=10 * TIME_S,
    )  # fmt: skip
    assert done.returncode == EXIT.INTERRUPTED, done.stderr
    line = _one_line(done.stderr)
    [sealed] = [p for p in store.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]
    assert f"interrupted; sealed before it and intact: {sealed}" in line
    assert not [p for p in store.iterdir() if p != sealed], "no leftover beside the run"
    check = _critspec(SUB.VALIDATE_RUN, str(sealed), timeout=10 * TIME_S)
    assert check.returncode == EXIT.OK, check.stderr


# --- the file system ------------------------------------------------------------------


def _no_bigger_files() -> None:
    """In the child: no file may grow past 64 bytes (EFBIG, as a full disk gives ENOSPC)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


def test_a_write_that_fails_for_space_names_the_path(tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = _critspec(
        SUB.PHASE0_VALIDATE_ENV,
        "--config", str(ROOT / CANON.PATH.CONFIG_PIPELINE), "--runs-dir", str(store),
        preexec_fn=_no_bigger_files, timeout=10 * TIME_S,  # a phase, not a refusal: torch loads
    )  # fmt: skip
    assert done.returncode == EXIT.CONTRACT, done.stderr
    line = _one_line(done.stderr)
    assert f"{store}/{CANON.PATH.TMP_RUN_PREFIX}" in line and os.strerror(errno.EFBIG) in line
    assert CANON.OUTPUT.CONFIG_RESOLVED in line  # the file whose write failed
    assert not [p for p in store.iterdir() if p.name.startswith(CANON.PATH.RUN_DIR_PREFIX)]


def _modes(root: Path) -> dict[str, int]:
    return {str(p): p.lstat().st_mode for p in [root, *root.rglob("*")]}


def test_allow_resume_never_changes_a_symlink_target(tmp_path: Path) -> None:
    """An unfinished run whose directory is a link out of the runs directory: refused,
    naming it, with the target's permissions and files as they were (issue 19)."""
    sealed = produce(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    os.rename(sealed, elsewhere)
    elsewhere.chmod(0o755)
    record_path = elsewhere / CANON.OUTPUT.RUN_RECORD
    record_path.chmod(0o644)
    record = read_json(record_path)
    record["stage_status"] = CANON.ENUM.STAGE_STATUS.INCOMPLETE
    write_json(record_path, record)
    for path in [*elsewhere.rglob("*"), elsewhere]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _modes(elsewhere)
    sealed.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(RunExistsError) as exc:
        produce(tmp_path / "store", allow_resume=True)
    assert str(sealed) in str(exc.value) and "symlink" in str(exc.value)
    assert _modes(elsewhere) == before and sealed.is_symlink()


def test_allow_resume_removes_a_link_inside_without_following_it(tmp_path: Path) -> None:
    """A real unfinished run holding links to a file and a folder outside: the run is
    rebuilt; the outside file keeps its read-only mode and the folder its contents."""
    sealed = produce(tmp_path / "store")
    sealed.chmod(0o755)
    record_path = sealed / CANON.OUTPUT.RUN_RECORD
    record_path.chmod(0o644)
    record = read_json(record_path)
    record["stage_status"] = CANON.ENUM.STAGE_STATUS.INCOMPLETE
    write_json(record_path, record)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (outside / "keep.txt").chmod(0o444)
    outside.chmod(0o555)
    (sealed / "file_link").symlink_to(outside / "keep.txt")
    (sealed / "dir_link").symlink_to(outside, target_is_directory=True)
    before = _modes(outside)
    rebuilt = produce(tmp_path / "store", allow_resume=True)
    assert rebuilt == sealed and not (rebuilt / "file_link").exists()
    assert _modes(outside) == before and (outside / "keep.txt").read_text() == "keep"


# --- transformers stays quiet ---------------------------------------------------------

MODEL_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    from canon import CANON
    from critspec.errors import CritspecError
    from critspec.models.loading import load_model
    try:
        load_model(source=CANON.ENUM.MODEL_SOURCE.LOCAL_DIR, device=torch.device("cpu"),
                   dtype=torch.float32, local_dir=Path(sys.argv[1]))
    except CritspecError as exc:
        print(exc)
    """
)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"model_type": "bert", "hidden_size": 8}, "is not supported"),
        (
            {
                "model_type": "critspec_custom_arch",
                "auto_map": {"AutoModelForCausalLM": "modeling_custom.CustomModel"},
            },
            "remote code",
        ),
    ],
    ids=["unsupported model type", "remote code"],
)
def test_model_refusal_is_our_line_alone(tmp_path: Path, config: dict, fragment: str) -> None:
    from critspec.models.embedded import CONFIG_FILE, SAFETENSORS_SUFFIX

    (tmp_path / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / f"model{SAFETENSORS_SUFFIX}").write_bytes(b"not safetensors: never read")
    done = subprocess.run(
        [sys.executable, "-c", MODEL_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=10 * TIME_S,  # importing torch and transformers alone may take a while
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert fragment in _one_line(done.stdout)


# --- gstar consistency ----------------------------------------------------------------


_FILLER = {"bool": False, "float64": 0.0, "int64": 0, "string": ""}


def _ident_and_summary(tmp: Path, gstar_shift: int = 0) -> tuple[Path, Path, dict]:
    summary = figure_tables.summary_table()
    rows = figure_tables.gstar_rows(summary)
    consumed = {(r.spike_def_id, r.target_rate): r.gstar for r in rows.itertuples()}
    types = {c["name"]: c["type"] for c in contracts.view("summary", "columns")["columns"]}
    # Columns the figures' table leaves out (they draw no figure) hold a typed filler.
    columns = {
        n: summary[n].tolist() if n in summary else [_FILLER[t]] * len(summary)
        for n, t in types.items()
    }
    columns["m_mr_reason"] = [None] * len(summary)
    write_parquet(tmp / TABLE.SUMMARY, columns, types)
    grid = sorted(CANON.CONST.GAIN_GRID_DEFAULT)
    ident_types = {
        c["name"]: c["type"] for c in contracts.view("identifiability", "columns")["columns"]
    }
    ident = {n: [] for n in ident_types}
    for (sd, rate), g in sorted(consumed.items()):
        reported = grid[grid.index(g) + gstar_shift]
        for name, typ in ident_types.items():
            ident[name].append(
                {"spike_def_id": sd, "target_rate": rate, "gstar": reported}.get(name, _FILLER[typ])
            )
    write_parquet(tmp / TABLE.IDENTIFIABILITY, ident, ident_types)
    return tmp / TABLE.IDENTIFIABILITY, tmp / TABLE.SUMMARY, consumed


def test_gstar_equals_the_consumed_runs(tmp_path: Path) -> None:
    ident, summary, consumed = _ident_and_summary(tmp_path)
    consistency.check_gstar(consumed, ident, summary)  # as consumed: passes


def test_gstar_other_than_the_consumed_runs_is_refused(tmp_path: Path) -> None:
    ident, summary, consumed = _ident_and_summary(tmp_path, gstar_shift=1)
    grid = sorted(CANON.CONST.GAIN_GRID_DEFAULT)
    first = sorted(consumed)[0]
    shifted = grid[grid.index(consumed[first]) + 1]
    want = rf"{re.escape(TABLE.IDENTIFIABILITY)}: row 0 .*gstar {shifted!r}, but .* selected "
    with pytest.raises(ContractError, match=want + re.escape(repr(consumed[first]))):
        consistency.check_gstar(consumed, ident, summary)
    moved = dict(consumed) | {first: grid[-1]}
    want = rf"{re.escape(TABLE.SUMMARY)}: row \d+ .*selected {re.escape(repr(grid[-1]))}"
    with pytest.raises(ContractError, match=want):
        consistency.check_gstar(moved, None, summary)


def test_read_only_files_stay_read_only_after_a_refused_resume(tmp_path: Path) -> None:
    """The refused resume left the sealed run exactly as it was (exit 4, nothing changed)."""
    sealed = produce(tmp_path / "store")
    before = _modes(sealed)
    with pytest.raises(RunExistsError):
        produce(tmp_path / "store", allow_resume=True)
    assert _modes(sealed) == before
    assert all(not m & stat.S_IWUSR for m in before.values())
