"""The runs a release holds (spec/16_RELEASE.md, "Which runs"): the sealed runs the release
phase consumed, and every run they depend on, found through the `dependencies` of their
run records. Nothing else in the runs directory is read; the cache never is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from critspec.errors import DependencyError
from critspec.store.run_store import SealedRun


def release_closure(roots: Iterable[SealedRun], runs_dir: Path) -> list[SealedRun]:
    """`roots` and every run reachable through their recorded dependencies, each opened
    (and so validated) once, sorted by run id. A recorded dependency missing from
    `runs_dir` is exit 3."""
    found: dict[str, SealedRun] = {}
    todo = list(roots)
    while todo:
        run = todo.pop()
        if run.run_id in found:
            continue
        found[run.run_id] = run
        for dep in run.record["dependencies"]:
            up = dep["run_id"]
            if up is None or up in found:
                continue
            up_dir = runs_dir / up
            if not up_dir.is_dir():
                raise DependencyError(
                    f"{up_dir}: run {run.run_id} depends on it, but it is not in {runs_dir}; "
                    "a release needs every run its results came from"
                )
            todo.append(SealedRun.open(up_dir))
    return [found[k] for k in sorted(found)]
