"""Immutable, content-hashed run directories (spec/07_RUNS_RECORDS_LOGGING.md).

A run is built in a temporary sibling directory, every artifact is validated
against its contract and indexed with its sha256, the record is validated
against its schema, files are made read-only, and only then is the directory
renamed into place. A run that fails leaves no sealed run: its partial
directory is kept beside the runs as `.failed_<run_id>` with its log. A process
killed outright leaves `.tmp_<run_id>.<pid>`. Neither is ever read as a run;
`critspec gc` lists them and, with --yes, removes them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from canon import CANON
from critspec import interrupts
from critspec.config.canonical import canonical_bytes, config_sha256
from critspec.errors import (
    ContractError,
    DependencyError,
    InputError,
    RunExistsError,
    writable_dir,
)
from critspec.runtime import code_version, determinism_flags, package_versions
from critspec.spec.phases_spec import PhaseSpec
from critspec.store import writers
from critspec.store.hashing import sha256_file
from critspec.store.logs import PhaseLog
from critspec.validate import contracts
from critspec.validate.artifact import validate_artifact
from critspec.validate.bindings import from_run
from critspec.validate.json_validator import validate_document
from critspec.validate.run import RUN_RECORD_CONTRACT, inside, validate_run

LOG_CONTRACT = "phase_log"
READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
READ_ONLY_DIR = READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_run_id(stage_tag: str, config_bytes: bytes, upstream_ids: list[str]) -> str:
    """RUN_<TAG>_<first hex of sha256(config bytes, tag, upstream run ids, code version)>.

    The code version is a part so that runs made by different code never share an id.
    """
    digest = hashlib.sha256()
    parts = (config_bytes, stage_tag.encode(), *(u.encode() for u in upstream_ids))
    for part in (*parts, code_version().encode()):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return (
        f"{CANON.PATH.RUN_DIR_PREFIX}{stage_tag}_{digest.hexdigest()[: CANON.CONST.RUN_HASH_LEN]}"
    )


def timestamp_run_id(stage_tag: str, config_bytes: bytes, upstream_ids: list[str]) -> str:
    """A fresh id per invocation, for repeated experiments with the same config."""
    return content_run_id(stage_tag, config_bytes + str(time.time_ns()).encode(), upstream_ids)


def make_run_id(stage_tag: str, config_bytes: bytes, upstream_ids: list[str], mode: str) -> str:
    """The one place a run id is made (the planner and the store both call it)."""
    make = timestamp_run_id if mode == CANON.ENUM.RUN_ID_MODE.TIMESTAMP else content_run_id
    return make(stage_tag, config_bytes, upstream_ids)


@dataclass(frozen=True)
class SealedRun:
    """A sealed run directory, loaded through its validated record."""

    run_dir: Path
    record: dict[str, Any]

    @classmethod
    def open(cls, run_dir: Path) -> SealedRun:
        if not run_dir.is_dir():
            raise DependencyError(f"{run_dir}: upstream run not found")
        try:
            record = validate_run(run_dir)
        except ContractError as exc:
            raise DependencyError(f"upstream run is not intact: {exc}") from None
        return cls(run_dir, record)

    @property
    def run_id(self) -> str:
        return self.record["run_id"]

    def indexed(self, contract_id: str) -> dict[str, Any]:
        for item in self.record["artifact_index"]:
            if item["contract"] == contract_id:
                return item
        raise DependencyError(f"{self.run_dir}: run has no {contract_id} artifact")


@dataclass
class RunBuilder:
    """The open, not yet sealed run a runner writes into."""

    phase: PhaseSpec
    run_id: str
    run_id_mode: str
    final_dir: Path
    work_dir: Path
    config_doc: dict[str, Any]
    model_role: str | None
    log: PhaseLog
    created_utc: str = field(default_factory=utc_now)
    model: dict[str, Any] | None = None
    dataset_slices: list[dict[str, Any]] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    # --- inputs -----------------------------------------------------------------
    def consume(self, upstream: SealedRun, contract_id: str) -> Path:
        """Re-hash an upstream artifact against the upstream record; exit 3 on mismatch.
        Only what the phase declares in spec/phases.yaml `consumes` may be read (anything
        of a pipeline run for a `consumes_pipeline` phase)."""
        declared = {a for dep in self.phase.consumes for a in dep.artifacts}
        if contract_id not in declared and not self.phase.consumes_pipeline:
            raise ContractError(
                f"{self.phase.key} read {contract_id!r}, which spec/phases.yaml does not "
                "declare in its consumes (a bug in the runner or the spec)"
            )
        item = upstream.indexed(contract_id)
        path = inside(upstream.run_dir, item["relative_path"])
        if not path.is_file():
            raise DependencyError(f"{path}: upstream artifact missing (run {upstream.run_id})")
        actual = sha256_file(path)
        if actual != item["sha256"]:
            raise DependencyError(
                f"{path}: sha256 {actual[:12]}… differs from run {upstream.run_id}'s record "
                f"({item['sha256'][:12]}…); the upstream artifact was altered: re-run that phase"
            )
        self._depend(upstream.run_id, upstream.record["phase_id"], contract_id, item)
        return path

    def consume_external(self, path: Path, contract_id: str, bindings: dict[str, Any]) -> Path:
        """An artifact made outside critspec: it must pass its contract; its sha256 is pinned."""
        if not path.is_file():
            raise DependencyError(f"{path}: file not found")
        validate_artifact(contract_id, path, bindings)
        item = {"relative_path": path.name, "sha256": sha256_file(path)}
        self._depend(None, None, contract_id, item)
        return path

    def _depend(self, run_id: str | None, phase_id: str | None, cid: str, item: dict) -> None:
        entry = {"contract": cid, "relative_path": item["relative_path"], "sha256": item["sha256"]}
        for dep in self.dependencies:
            if dep["run_id"] == run_id and dep["phase_id"] == phase_id:
                dep["artifacts"].append(entry)
                break
        else:
            self.dependencies.append({"run_id": run_id, "phase_id": phase_id, "artifacts": [entry]})
        self.log.event(CANON.ENUM.LOG_EVENT.DEPENDENCY_VERIFIED, {"run_id": run_id, **entry})

    # --- outputs ----------------------------------------------------------------
    def results_path(self, contract_id: str) -> Path:
        return contracts.path_in(self.work_dir, contract_id)

    def write_json(self, contract_id: str, obj: Any) -> Path:
        return self._written(contract_id, writers.write_json, obj)

    def write_npz(self, contract_id: str, arrays: Mapping[str, np.ndarray]) -> Path:
        return self._written(contract_id, writers.write_npz, arrays)

    def write_parquet(self, contract_id: str, columns: Mapping[str, Any]) -> Path:
        types = {c["name"]: c["type"] for c in contracts.view(contract_id, "columns")["columns"]}
        return self._written(
            contract_id, lambda p, cols: writers.write_parquet(p, cols, types), columns
        )

    def write_table(self, contract_id: str, csv_contract_id: str, frame: Any) -> Path:
        """A Parquet table and its CSV twin (`mirrors`) from the same typed columns."""
        types = {c["name"]: c["type"] for c in contracts.view(contract_id, "columns")["columns"]}
        columns = {name: _column(frame[name]) for name in frame.columns}
        path = self.write_parquet(contract_id, columns)
        table = writers.parquet_table(columns, types, path)
        self._written(csv_contract_id, writers.write_csv, table)
        return path

    def write_figure(self, contract_id: str, figure: Any, save: Any) -> list[Path]:
        """One figure as its PNG and PDF basenames; `save(figure, png, pdf)` writes both."""
        entry = contracts.entry(contract_id)
        paths = [self.work_dir / entry["subdir"] / base for base in entry["basenames"]]
        for path in paths:
            if path.exists():
                raise ContractError(f"{path}: already written in this run")
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        save(figure, *paths)
        for path in paths:
            validate_artifact(contract_id, path)
            self.written.append(path.relative_to(self.work_dir).as_posix())
        return paths

    def write_file(self, contract_id: str, write: Any) -> Path:
        """An artifact that `write(path)` writes (HTML reports, archives), then validated."""
        return self._written(contract_id, lambda path, _: write(path), None)

    def _written(self, contract_id: str, write: Any, payload: Any) -> Path:
        path = self.results_path(contract_id)
        if path.exists():
            raise ContractError(f"{path}: already written in this run")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write(path, payload)
        except OSError as exc:
            raise unwritable(path, exc) from None
        validate_artifact(contract_id, path, self.bindings())
        self.written.append(path.relative_to(self.work_dir).as_posix())
        return path

    def bindings(self) -> dict[str, Any]:
        """Contract symbols from the parts of the record that bind them (model, slices);
        the full record would re-read versions and the git state on every write."""
        partial = {
            "model": self.model,
            "dataset_slices": self.dataset_slices,
            "summary": self.summary,
        }
        return from_run(partial, self.config_doc)

    # --- record -----------------------------------------------------------------
    def _record(self, status: str, index: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "project": {"name": CANON.PROJECT.NAME, "spec_version": CANON.PROJECT.SPEC_VERSION},
            "run_id": self.run_id,
            "phase_id": self.phase.id,
            "stage_tag": self.phase.stage_tag,
            "stage_status": status,
            "run_id_mode": self.run_id_mode,
            "created_utc": self.created_utc,
            "model_role": self.model_role,
            "model": self.model,
            "dataset_slices": self.dataset_slices,
            "config_sha256": config_sha256(self.config_doc),
            "code_version": code_version(),
            "versions": package_versions(),
            "determinism": determinism_flags(),
            "dependencies": self.dependencies,
            "artifact_index": index,
            "summary": self.summary,
        }

    def seal(self) -> None:
        index = []
        for path in sorted(p for p in self.work_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(self.work_dir).as_posix()
            if rel in (CANON.OUTPUT.RUN_RECORD, CANON.OUTPUT.CONFIG_RESOLVED):
                continue
            cid = contracts.contract_for_basename(rel)
            if cid is None:
                raise ContractError(f"{path}: written by the run but no contract covers it")
            index.append(
                {
                    "contract": cid,
                    "relative_path": rel,
                    "sha256": sha256_file(path),
                    "bytes": path.stat().st_size,
                }
            )
        self._check_produces(index)
        bindings = self.bindings()
        for item in index:
            if item["relative_path"] not in self.written:
                validate_artifact(item["contract"], self.work_dir / item["relative_path"], bindings)
        record = self._record(CANON.ENUM.STAGE_STATUS.COMPLETE, index)
        record_path = self.work_dir / CANON.OUTPUT.RUN_RECORD
        schema = contracts.view(RUN_RECORD_CONTRACT, "schema")
        validate_document(schema, record, {}, RUN_RECORD_CONTRACT, str(record_path))
        # The complete record is the last thing written before the rename: a directory
        # interrupted earlier has none, and one interrupted later is still not a RUN_ name.
        writers.write_json(record_path, record)
        _make_read_only(self.work_dir)
        # The rename and the note that it happened are one step (critspec.interrupts): a
        # stop signal waits for both, so an interrupted command reports this run sealed.
        with interrupts.held():
            try:
                os.rename(self.work_dir, self.final_dir)
            except OSError:
                raise RunExistsError(
                    f"{self.final_dir}: appeared while this run was building"
                ) from None
            interrupts.note_sealed(self.final_dir)

    def _check_produces(self, index: list[dict[str, Any]]) -> None:
        """The run wrote exactly the artifacts its phase declares (besides its log)."""
        written = {item["contract"] for item in index} - {LOG_CONTRACT}
        declared = set(self.phase.produces)
        if written - declared:
            raise ContractError(
                f"{self.phase.key} wrote {sorted(written - declared)}, not declared in "
                "spec/phases.yaml `produces` (a bug in the runner or the spec)"
            )
        if declared - written:
            raise ContractError(
                f"{self.phase.key} did not write {sorted(declared - written)}, declared in "
                "spec/phases.yaml `produces` (a bug in the runner or the spec)"
            )


def unwritable(path: Path, exc: OSError) -> InputError:
    """A write the file system refused (a full disk, a quota, a file-size limit): the write
    call's OSError names no file, so the message does."""
    return InputError(
        f"{path}: could not be written ({exc.strerror or exc}); free space on its file "
        "system or pass another --runs-dir"
    )


def _column(series: Any) -> np.ndarray:
    """A pandas column as numpy; missing values of a nullable string column become None."""
    if series.dtype == object or str(series.dtype).startswith("string"):
        return series.to_numpy(dtype=object, na_value=None)
    return series.to_numpy()


def _make_read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        path.chmod(READ_ONLY_DIR if path.is_dir() else READ_ONLY_FILE)
    root.chmod(READ_ONLY_DIR)


def _make_writable(root: Path) -> None:
    """This process's own temporary run made writable again; a symlink is never followed
    (chmod would change its target, wherever that is)."""
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(mode | stat.S_IWUSR)


def _make_removable(root: Path) -> None:
    """The directories under `root` made writable so that rmtree can unlink their entries.
    Files and symlinks are left alone: unlinking needs only the directory's write bit, and
    chmod through a symlink or a hard link would change a file outside the runs directory."""

    def open_up(path: str) -> None:
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            os.chmod(path, mode | stat.S_IRWXU)

    open_up(str(root))
    for top, dirs, _files in os.walk(root):  # top-down: each dir is opened before its walk
        for name in dirs:
            open_up(os.path.join(top, name))


def _remove_run_dir(path: Path, runs_dir: Path) -> None:
    """Remove a run directory that lies directly in `runs_dir` and is not a symlink."""
    if path.is_symlink() or not path.is_dir():
        raise RunExistsError(
            f"{path}: is a symlink or not a directory; critspec never follows, changes or "
            "removes it (it may point outside the runs directory): remove it yourself"
        )
    if path.resolve().parent != runs_dir.resolve():
        raise RunExistsError(f"{path}: does not lie in the runs directory {runs_dir}; left alone")
    _make_removable(path)
    shutil.rmtree(path)


def record_status(run_dir: Path) -> str | None:
    path = run_dir / CANON.OUTPUT.RUN_RECORD
    if path.is_symlink():  # never read through a link out of the runs directory
        return None
    try:
        return writers.read_json(path).get("stage_status")
    except (ContractError, OSError, AttributeError):
        return None


@contextmanager
def open_run(
    *,
    phase: PhaseSpec,
    runs_dir: Path,
    config_doc: dict[str, Any],
    model_role: str | None,
    upstream_ids: list[str],
    run_id_mode: str,
    allow_resume: bool,
) -> Iterator[RunBuilder]:
    """Create, fill (the caller's block) and seal one run; exit 4 if it already exists."""
    config_bytes = canonical_bytes(config_doc)
    run_id = make_run_id(phase.stage_tag, config_bytes, upstream_ids, run_id_mode)
    final_dir = runs_dir / run_id
    if os.path.lexists(final_dir):  # a dangling symlink exists too
        status = None if final_dir.is_symlink() else record_status(final_dir)
        if not (allow_resume and status != CANON.ENUM.STAGE_STATUS.COMPLETE):
            raise RunExistsError(
                f"{final_dir}: run already exists (stage_status {status}); nothing was changed. "
                "Use the existing run, change the config, or pass --run-id-mode timestamp"
            )
        _remove_run_dir(final_dir, runs_dir)
    writable_dir(runs_dir, "runs directory")
    work_dir = runs_dir / f"{CANON.PATH.TMP_RUN_PREFIX}{run_id}.{os.getpid()}"
    if os.path.lexists(work_dir):
        _remove_run_dir(work_dir, runs_dir)
    for sub in (CANON.OUTPUT.SUBDIR.RESULTS, CANON.OUTPUT.SUBDIR.LOGS):
        (work_dir / sub).mkdir(parents=True)
    try:
        (work_dir / CANON.OUTPUT.CONFIG_RESOLVED).write_bytes(config_bytes)
    except OSError as exc:
        raise unwritable(work_dir / CANON.OUTPUT.CONFIG_RESOLVED, exc) from None
    log = PhaseLog(work_dir / CANON.OUTPUT.SUBDIR.LOGS / phase.log, run_id)
    builder = RunBuilder(
        phase=phase,
        run_id=run_id,
        run_id_mode=run_id_mode,
        final_dir=final_dir,
        work_dir=work_dir,
        config_doc=config_doc,
        model_role=model_role,
        log=log,
    )
    log.event(CANON.ENUM.LOG_EVENT.START, {"phase_id": phase.id, "model_role": model_role})
    log.event(
        CANON.ENUM.LOG_EVENT.CONFIG_RESOLVED,
        {"config_sha256": config_sha256(config_doc), "upstream_run_ids": upstream_ids},
    )
    ok = False
    try:
        yield builder
        log.event(CANON.ENUM.LOG_EVENT.ARTIFACTS_WRITTEN, {"artifacts": builder.written})
        ok = True
    except BaseException as exc:
        log.event(CANON.ENUM.LOG_EVENT.ERROR, {"type": type(exc).__name__, "message": str(exc)})
        raise
    finally:
        log.event(CANON.ENUM.LOG_EVENT.END, {"ok": ok})
        if not ok:
            _keep_failed(work_dir, runs_dir / f"{CANON.PATH.FAILED_RUN_PREFIX}{run_id}")
    try:
        builder.seal()
    except BaseException:
        _keep_failed(work_dir, runs_dir / f"{CANON.PATH.FAILED_RUN_PREFIX}{run_id}")
        raise


def _keep_failed(work_dir: Path, failed: Path) -> None:
    """Keep a failed attempt's log beside the runs, replacing an older failed attempt.

    A record it may hold is rewritten as incomplete: a failed run never claims to be sealed.
    """
    if not work_dir.exists():
        return
    _make_writable(work_dir)
    record_path = work_dir / CANON.OUTPUT.RUN_RECORD
    if record_path.is_file():
        record = writers.read_json(record_path)
        record["stage_status"] = CANON.ENUM.STAGE_STATUS.INCOMPLETE
        writers.write_json(record_path, record)
    if os.path.lexists(failed):
        _remove_run_dir(failed, failed.parent)
    os.rename(work_dir, failed)


@dataclass(frozen=True)
class Leftover:
    """A `.tmp_` or `.failed_` directory in a runs directory; never a sealed run."""

    path: Path
    building: bool  # a temporary whose process is still alive


def _alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def leftovers(runs_dir: Path) -> list[Leftover]:
    """Unfinished runs directly inside `runs_dir`: temporaries of live or dead processes
    (named `<TMP_RUN_PREFIX><run_id>.<pid>`) and kept failed attempts."""
    if not runs_dir.is_dir():
        raise InputError(f"{runs_dir}: no such runs directory")
    out = []
    for path in sorted(runs_dir.iterdir()):
        if path.is_symlink() or not path.is_dir():
            continue
        if path.name.startswith(CANON.PATH.TMP_RUN_PREFIX):
            out.append(Leftover(path, _alive(path.suffix.lstrip("."))))
        elif path.name.startswith(CANON.PATH.FAILED_RUN_PREFIX):
            out.append(Leftover(path, False))
    return out


def remove_leftover(leftover: Leftover) -> None:
    _remove_run_dir(leftover.path, leftover.path.parent)
