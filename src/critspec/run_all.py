"""`critspec run-all`: every phase of spec/phases.yaml for every model role, then a summary
of what gstar means on the held-out rasters.

A run that already exists for the same config is reused after `validate-run`
instead of failing with exit 4; anything else behaves as the single commands. A
profile may declare a single model role (spec/00_OVERVIEW.md "Model roles"): per-role phases
then run for the configured roles only, and say which they skipped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from canon import CANON
from critspec.config.resolve import load_config
from critspec.orchestrate import Invocation, Options, execute, planned_run_id, settle
from critspec.passes.executors import session
from critspec.spec.load import Spec, project_spec
from critspec.store.run_store import SealedRun
from critspec.validate import contracts

SUMMARY_CONTRACT = "summary"
IDENT_CONTRACT = "identifiability"
CRACKLING_CONTRACT = "crackling"
GENERALIZATION_CONTRACT = "generalization"
MC_SUMMARY_CONTRACT = "mc_summary"
VS_BASELINE = "vs_baseline"
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT


def _run_or_reuse(inv: Invocation) -> tuple[Path, bool]:
    run_dir = inv.options.runs_dir / planned_run_id(inv)
    if inv.options.run_id_mode == CANON.ENUM.RUN_ID_MODE.CONTENT_HASH and run_dir.is_dir():
        SealedRun.open(run_dir)
        return run_dir, True
    return execute(inv), False


def run_all(options: Options) -> int:
    spec = project_spec()
    config = load_config(options.config)
    executor = options.executor or config.pipeline.runtime.executor
    # One cluster for every phase that maps pass tasks (spec/06_MODELS_AND_HOOKS.md §7).
    with session(executor, runs_dir=options.runs_dir, address=options.ray_address):
        return _run_all(options, spec, config.model_roles)


def _run_all(options: Options, spec: Spec, configured: tuple[str, ...]) -> int:
    analysis_runs: dict[str, Path] = {}
    phase6_runs: dict[str, dict[str, Path]] = {}
    for phase in spec.phases.phases:
        for role in phase.roles:
            if role is not None and role not in configured:
                print(f"skipped {phase.id} [{role}]: the profile declares no {role} model")
                continue
            inv = settle(replace(options, model_role=role, from_run=None), phase.key)
            run_dir, reused = _run_or_reuse(inv)
            label = f"{phase.id}" + (f" [{role}]" if role else "")
            print(f"{'reused' if reused else 'sealed'} {label}: {run_dir}", flush=True)
            if SUMMARY_CONTRACT in phase.produces:
                analysis_runs[role] = run_dir
            for cid in (GENERALIZATION_CONTRACT, MC_SUMMARY_CONTRACT):
                if cid in phase.produces:
                    phase6_runs.setdefault(role, {})[cid] = run_dir
    print()
    print(summary_table(analysis_runs))
    if phase6_runs:
        print()
        print(phase6_table(phase6_runs))
    print(f"\nruns directory: {options.runs_dir.resolve()}")
    return CANON.CLI.EXIT.OK


def _table(run_dir: Path, contract_id: str) -> pd.DataFrame:
    return pd.read_parquet(contracts.path_in(run_dir, contract_id))


def _ci(row: pd.Series, name: str) -> str:
    return f"{row[name]:.3f} [{row[name + '_ci_low']:.3f}, {row[name + '_ci_high']:.3f}]"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def summary_rows(run_dir: Path, role: str) -> list[tuple[str, ...]]:
    """Per (spike definition, target rate) of one role's Phase 5 run: gstar and what it
    means on the held-out rasters (spec/00_OVERVIEW.md)."""
    summary = _table(run_dir, SUMMARY_CONTRACT)
    ident = _table(run_dir, IDENT_CONTRACT)
    crackling = _table(run_dir, CRACKLING_CONTRACT)
    first_adj = crackling[crackling["adjacency"] == CANON.ENUM.ADJACENCY.ADJ_4N]
    perm = f"delta_{B_TOT}_{CANON.OUTPUT.NULL_SUFFIX.TIME_PERM}"
    rows = []
    for flags in ident.itertuples():
        mine = summary[
            (summary["spike_def_id"] == flags.spike_def_id)
            & (summary["target_rate"] == flags.target_rate)
        ]
        base = mine[mine["is_baseline"]].iloc[0]
        star = mine[mine["is_gstar"]].iloc[0]
        fit = first_adj[first_adj["cond_id"] == star["cond_id"]].iloc[0]
        rows.append(
            (
                role,
                flags.spike_def_id,
                f"{flags.target_rate:g}",
                f"{flags.gstar:g}",
                _ci(base, B_TOT),
                _ci(star, B_TOT),
                _ci(star, perm),
                _ci(star, "chi"),
                f"{fit['gamma_fit']:.2f} / {fit['gamma_pred']:.2f}",
                f"{flags.b_tot_range:.3f} / {flags.b_tot_ci_width_max:.3f}",
                _yes(flags.gstar_at_edge),
                _yes(flags.identifiable),
            )
        )
    return rows


def summary_table(analysis_runs: dict[str, Path]) -> str:
    head = (
        "model_role",
        "spike_def_id",
        "target_rate",
        "gstar",
        "b_tot(g=1) [CI]",
        "b_tot(gstar) [CI]",
        "delta_b_tot perm (gstar) [CI]",
        "chi(gstar) [CI]",
        "gamma fit/pred",
        "b_tot range/CI width",
        "edge",
        "identifiable",
    )
    rows = [head]
    for role, run_dir in analysis_runs.items():
        rows.extend(summary_rows(run_dir, role))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _delta(row: pd.Series, name: str) -> str:
    col = f"{name}_{VS_BASELINE}"
    return f"{row[col]:+.4f} [{row[col + '_ci_low']:+.4f}, {row[col + '_ci_high']:+.4f}]"


def phase6_rows(runs: dict[str, Path], role: str) -> list[tuple[str, ...]]:
    """Per distinct gstar of one role: the paired differences gstar - baseline of mean NLL
    on Dataset B and of multiple-choice accuracy in both regimes
    (spec/14_GENERALIZATION_MC_ABLATIONS.md)."""
    gen = _table(runs[GENERALIZATION_CONTRACT], GENERALIZATION_CONTRACT)
    mc = _table(runs[MC_SUMMARY_CONTRACT], MC_SUMMARY_CONTRACT)
    rows = []
    for g in sorted(set(gen.loc[gen["is_gstar"], "g"])):
        nll = gen[gen["g"] == g].iloc[0]  # NLL depends on g only
        cells = [role, f"{g:g}", _delta(nll, "nll_mean")]
        for regime in (CANON.ENUM.MC_REGIME.LABEL, CANON.ENUM.MC_REGIME.TEXT):
            row = mc[(mc["mc_regime"] == regime) & (mc["g"] == g)].iloc[0]
            cells += [_delta(row, "acc"), _delta(row, "acc_norm")]
        rows.append(tuple(cells))
    return rows


def phase6_table(runs: dict[str, dict[str, Path]]) -> str:
    label, text = CANON.ENUM.MC_REGIME.LABEL, CANON.ENUM.MC_REGIME.TEXT
    head = (
        "model_role",
        "gstar",
        "d mean NLL (B) [CI]",
        f"d acc {label} [CI]",
        f"d acc_norm {label} [CI]",
        f"d acc {text} [CI]",
        f"d acc_norm {text} [CI]",
    )
    rows = [head]
    for role, mine in runs.items():
        if GENERALIZATION_CONTRACT in mine and MC_SUMMARY_CONTRACT in mine:
            rows.extend(phase6_rows(mine, role))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
