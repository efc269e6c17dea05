"""Running the CANON command strings as a user would, and reading what they left."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
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


def run_pipeline(
    spec: Spec, runs_dir: Path, starts: StartTimes, trail_s: float | None = None
) -> PipelineRuns:
    """Every phase's CANON command per role, in spec order, into `runs_dir`.

    The leading pipeline (trail_s None) marks when each command starts; a trailing one
    starts each command at least trail_s seconds after the leader's.
    """
    runs: dict[str, str] = {}
    failures: dict[str, str] = {}
    for phase in spec.phases.phases:
        for role in phase.roles:
            key = PipelineRuns.key(phase.key, role)
            if trail_s is None:
                starts.mark(key)
            else:
                starts.wait_after(key, trail_s)
            before = set(os.listdir(runs_dir)) if runs_dir.exists() else set()
            proc = cli(phase.command(role), "--runs-dir", str(runs_dir))
            new = sorted(set(os.listdir(runs_dir)) - before) if runs_dir.exists() else []
            sealed = [n for n in new if n.startswith(CANON.PATH.RUN_DIR_PREFIX)]
            if proc.returncode != 0 or len(sealed) != 1:
                failures[key] = f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
            else:
                runs[key] = sealed[0]
    return PipelineRuns(runs_dir, runs, failures)


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
