"""`critspec run-all`: phases 0 -> 1 -> 2 -> select for every model role, then a summary.

A run that already exists for the same config is reused after `validate-run`
instead of failing with exit 4; anything else behaves as the single commands. A
profile may declare a single model role (DESIGN §4 "Model roles"): per-role phases
then run for the configured roles only, and say which they skipped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from canon import CANON
from critspec.config.resolve import load_config
from critspec.orchestrate import Invocation, Options, execute, planned_run_id, settle
from critspec.spec.load import project_spec
from critspec.store.run_store import SealedRun
from critspec.store.writers import read_json

GSTAR_CONTRACT = "gstar"


def _run_or_reuse(inv: Invocation) -> tuple[Path, bool]:
    run_dir = inv.options.runs_dir / planned_run_id(inv)
    if inv.options.run_id_mode == CANON.ENUM.RUN_ID_MODE.CONTENT_HASH and run_dir.is_dir():
        SealedRun.open(run_dir)
        return run_dir, True
    return execute(inv), False


def run_all(options: Options) -> int:
    spec = project_spec()
    configured = load_config(options.config).model_roles
    gstar_runs: dict[str, Path] = {}
    for phase in spec.phases.phases:
        for role in phase.roles:
            if role is not None and role not in configured:
                print(f"skipped {phase.id} [{role}]: the profile declares no {role} model")
                continue
            inv = settle(replace(options, model_role=role, from_run=None), phase.key)
            run_dir, reused = _run_or_reuse(inv)
            label = f"{phase.id}" + (f" [{role}]" if role else "")
            print(f"{'reused' if reused else 'sealed'} {label}: {run_dir}", flush=True)
            if GSTAR_CONTRACT in phase.produces:
                gstar_runs[role] = run_dir
    print()
    print(summary_table(gstar_runs))
    print(f"\nruns directory: {options.runs_dir.resolve()}")
    return CANON.CLI.EXIT.OK


def summary_table(gstar_runs: dict[str, Path]) -> str:
    rows = [("model_role", "spike_def_id", "target_rate", "gstar", "b_tot@gstar", "decided_by")]
    for role, run_dir in gstar_runs.items():
        doc = read_json(run_dir / CANON.OUTPUT.SUBDIR.RESULTS / CANON.OUTPUT.ARTIFACT.GSTAR)
        for c in doc["conditions"]:
            rows.append(
                (
                    role,
                    c["spike_def_id"],
                    f"{c['target_rate']:g}",
                    f"{c['gstar']:g}",
                    f"{c['b_tot_at_gstar']:.4f}",
                    c["decided_by"],
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows
    )
