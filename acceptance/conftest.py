"""The release gate's fixtures: the pipeline runs once per session (shared by xdist
workers through a file lock), phase by phase into runs directory A and, by the README's
one command (run-all) started at least a second after A, into B; checks read those runs
and never modify them."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import FileLock

from acceptance.harness import PipelineRuns, StartTimes, run_all_pipeline, run_pipeline
from critspec.spec.load import project_spec

MANIFEST = "pipeline_runs.json"
MIN_GAP_S = 1.0


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineRuns, PipelineRuns]:
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own basetemp inside the session's directory.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    with FileLock(str(shared / (MANIFEST + ".lock"))):
        manifest_a, manifest_b = shared / ("A_" + MANIFEST), shared / ("B_" + MANIFEST)
        if not manifest_b.exists():
            spec = project_spec()
            # B runs beside A on the other core, started at least MIN_GAP_S after A's
            # first command: the one-command path must seal the same bytes, run by run,
            # as the phase-by-phase one.
            starts = StartTimes()
            with ThreadPoolExecutor(max_workers=2) as pool:
                future_a = pool.submit(run_pipeline, spec, shared / "store_A", starts)
                future_b = pool.submit(
                    run_all_pipeline, spec, shared / "store_B", starts, MIN_GAP_S
                )
                manifest_a.write_text(future_a.result().to_json())
                manifest_b.write_text(future_b.result().to_json())
        return (
            PipelineRuns.from_json(manifest_a.read_text()),
            PipelineRuns.from_json(manifest_b.read_text()),
        )


@pytest.fixture()
def scratch(tmp_path: Path) -> Path:
    return tmp_path
