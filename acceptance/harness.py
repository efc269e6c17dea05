"""Running the CANON command strings as a user would, and reading what they left."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from canon import CANON
from critspec.paths import project_root
from critspec.spec.load import Spec
from critspec.store.hashing import sha256_file

COMMAND_TIMEOUT_S = 600


def entrypoint() -> str:
    """The installed console script next to this interpreter, else the one on PATH."""
    local = Path(sys.executable).parent / CANON.CLI.ENTRYPOINT
    return (
        str(local)
        if local.exists()
        else (shutil.which(CANON.CLI.ENTRYPOINT) or CANON.CLI.ENTRYPOINT)
    )


def cli(command: str | list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a CANON command string (or argv after the entrypoint) from the project root."""
    words = shlex.split(command) if isinstance(command, str) else [CANON.CLI.ENTRYPOINT, *command]
    argv = [entrypoint(), *words[1:], *extra]
    return subprocess.run(
        argv,
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


@dataclass(frozen=True)
class PipelineRuns:
    """Sealed run directories per (phase key, role) in one runs directory."""

    runs_dir: Path
    runs: dict[str, str]
    failures: dict[str, str]

    @staticmethod
    def key(phase_key: str, role: str | None) -> str:
        return f"{phase_key}/{role or '-'}"

    def run_dir(self, phase_key: str, role: str | None) -> Path:
        k = self.key(phase_key, role)
        if k in self.failures:
            raise AssertionError(f"{k} failed when the pipeline ran: {self.failures[k]}")
        return self.runs_dir / self.runs[k]

    def to_json(self) -> str:
        return json.dumps(
            {"runs_dir": str(self.runs_dir), "store": self.runs, "failures": self.failures}
        )

    @classmethod
    def from_json(cls, text: str) -> PipelineRuns:
        d = json.loads(text)
        return cls(Path(d["runs_dir"]), d["store"], d["failures"])


class StartTimes:
    """When each command of the leading pipeline started, for a follower to trail it."""

    def __init__(self) -> None:
        self._times: dict[str, float] = {}
        self._changed = threading.Condition()

    def mark(self, key: str) -> None:
        with self._changed:
            self._times[key] = time.monotonic()
            self._changed.notify_all()

    def wait_after(self, key: str, lag_s: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: key in self._times, timeout=COMMAND_TIMEOUT_S)
            start = self._times.get(key, time.monotonic())
        time.sleep(max(0.0, start + lag_s - time.monotonic()))


def sealed_runs(spec: Spec, runs_dir: Path) -> dict[str, str]:
    """The sealed run directories of `runs_dir` by (phase key, role), as their records say."""
    key_of = {p.id: p.key for p in spec.phases.phases}
    runs: dict[str, str] = {}
    for run in sorted(runs_dir.glob(CANON.PATH.RUN_DIR_PREFIX + "*")) if runs_dir.exists() else []:
        record = json.loads((run / CANON.OUTPUT.RUN_RECORD).read_text())
        key = PipelineRuns.key(key_of[record["phase_id"]], record["model_role"])
        if key in runs:
            raise AssertionError(f"{runs_dir}: two sealed runs for {key}: {runs[key]}, {run.name}")
        runs[key] = run.name
    return runs


def _pipeline(
    spec: Spec, runs_dir: Path, errors: dict[str, str], unsealed: str = "exited 0 but sealed no run"
) -> PipelineRuns:
    """The runs sealed in `runs_dir`; a (phase, role) whose command failed (`errors`) or that
    sealed nothing (`unsealed` says why) is a failure."""
    runs = sealed_runs(spec, runs_dir)
    failures = {}
    for phase in spec.phases.phases:
        for role in phase.roles:
            key = PipelineRuns.key(phase.key, role)
            if key in errors or key not in runs:
                failures[key] = errors.get(key, unsealed)
    return PipelineRuns(runs_dir, {k: v for k, v in runs.items() if k not in failures}, failures)


def run_pipeline(spec: Spec, runs_dir: Path, starts: StartTimes) -> PipelineRuns:
    """Every phase's CANON command per role into `runs_dir`, phase after phase in spec
    order, the roles of a phase side by side (they read only their own role's runs and
    the shared ones before them), marking when each command starts."""
    errors: dict[str, str] = {}

    def one(phase_key: str, role: str | None, command: str) -> None:
        key = PipelineRuns.key(phase_key, role)
        starts.mark(key)
        proc = cli(command, "--runs-dir", str(runs_dir))
        if proc.returncode != 0:
            errors[key] = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        for phase in spec.phases.phases:
            jobs = [pool.submit(one, phase.key, r, phase.command(r)) for r in phase.roles]
            for job in jobs:
                job.result()
    return _pipeline(spec, runs_dir, errors)


def run_all_pipeline(
    spec: Spec, runs_dir: Path, starts: StartTimes, trail_s: float
) -> PipelineRuns:
    """The README's one command (CANON run-all) into `runs_dir`, started at least trail_s
    after the leading pipeline's first command."""
    phases = spec.phases.phases
    starts.wait_after(PipelineRuns.key(phases[0].key, phases[0].roles[0]), trail_s)
    proc = cli(CANON.CLI.CMD.RUN_ALL, "--runs-dir", str(runs_dir))
    if proc.returncode == 0:
        return _pipeline(spec, runs_dir, {})
    # The runs sealed before run-all stopped stand; the rest failed with it.
    return _pipeline(spec, runs_dir, {}, f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}")


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
