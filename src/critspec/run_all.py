"""`critspec run-all`: the run graph of spec/phases.yaml for every model role, then a
summary of what gstar means on the held-out rasters (spec/07_RUNS_RECORDS_LOGGING.md
"Run graph").

Phases run in the graph's topological order, per role where a phase is per-role. A run
that already exists for the same config is reused after `validate-run` instead of failing
with exit 4; anything else behaves as the single commands. A profile may declare a single
model role (spec/00_OVERVIEW.md "Model roles"): per-role phases then run for the
configured roles only, a phase that consumes both roles is skipped, and each skip is a
line. `--dry-run` prints the plan and computes nothing; `--model-role` keeps that role's
runs and the role-free ones; `--from RUN_ID` puts a sealed run in place of its phase and
role's planned run and runs only what is downstream of it (plus what that needs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from canon import CANON
from critspec.config.resolve import load_config
from critspec.errors import DependencyError
from critspec.orchestrate import (
    Invocation,
    Node,
    Options,
    execute,
    missing_roles,
    open_named_run,
    planned_run_id,
    settle,
    upstream_nodes,
)
from critspec.passes.executors import session
from critspec.spec.load import project_spec
from critspec.store.run_store import SealedRun
from critspec.validate import contracts

SUMMARY_CONTRACT = "summary"
IDENT_CONTRACT = "identifiability"
CRACKLING_CONTRACT = "crackling"
REPORT_CONTRACT = "release_report"
GENERALIZATION_CONTRACT = "generalization"
MC_SUMMARY_CONTRACT = "mc_summary"
VS_BASELINE = "vs_baseline"
B_TOT = CANON.ENUM.SELECTION_INPUT.B_TOT


@dataclass(frozen=True)
class Step:
    """One (phase, role) of the plan: the invocation to run, or why it is left out."""

    node: Node
    phase_id: str
    inv: Invocation | None = None
    skipped: str | None = None

    @property
    def label(self) -> str:
        return self.phase_id + (f" [{self.node[1]}]" if self.node[1] else "")


def graph_steps(options: Options) -> list[Step]:
    """Every (phase, role) of the run graph in topological order, each with its invocation
    or the reason the profile cannot run it (a model role it lacks, directly or through
    what the phase consumes)."""
    spec = project_spec()
    configured = load_config(options.config, options.overrides).model_roles
    steps: list[Step] = []
    for phase in spec.phases.graph_order():
        for role in phase.roles:
            node = (phase.key, role)
            if role is not None and role not in configured:
                reason = f"the profile declares no {role} model"
                steps.append(Step(node, phase.id, skipped=reason))
                continue
            inv = settle(replace(options, model_role=role, from_run=None), phase.key, False)
            lacking = missing_roles(inv)
            if lacking:
                reason = (
                    f"it consumes runs of model role {' and '.join(lacking)}, and the "
                    f"profile declares only {', '.join(configured)}"
                )
                steps.append(Step(node, phase.id, skipped=reason))
            else:
                steps.append(Step(node, phase.id, inv=inv))
    return steps


def _from_node(steps: list[Step], run: SealedRun) -> Node:
    """The (phase, role) a --from run stands in for; it must be one this plan can run."""
    spec = project_spec()
    try:
        key = spec.phases.by_id(run.record["phase_id"]).key
    except KeyError:
        raise DependencyError(f"{run.run_dir}: is a run of no phase of spec/phases.yaml") from None
    node = (key, run.record["model_role"])
    step = next((s for s in steps if s.node == node), None)
    if step is None or step.inv is None:
        why = f" ({step.skipped})" if step is not None else ""
        raise DependencyError(
            f"{run.run_dir}: --from names a {step.label if step else key} run, which this "
            f"profile does not run{why}"
        )
    return node


def select(steps: list[Step], options: Options, from_node: Node | None) -> list[Step]:
    """The plan after --model-role and --from: a runnable step left out says why, and so
    does a step that consumes a run the plan leaves out."""
    ups = {s.node: upstream_nodes(s.inv) for s in steps if s.inv is not None}
    why: dict[Node, str] = {}
    role = options.model_role
    if role is not None:
        for node in ups:
            if node[1] not in (None, role):
                why[node] = f"--model-role {role}"
    if from_node is not None:
        down: set[Node] = set()
        for node, up in ups.items():  # topological order: one pass finds the descendants
            if any(u == from_node or u in down for u in up):
                down.add(node)
        needed, stack = set(down), list(down)
        while stack:
            for u in ups[stack.pop()]:
                if u != from_node and u not in needed:
                    needed.add(u)
                    stack.append(u)
        for node in ups:
            if node == from_node:
                why[node] = f"--from {options.from_run} stands in for it"
            elif node not in needed:
                why.setdefault(node, f"not downstream of --from {options.from_run}")
    out = []
    labels = {s.node: s.label for s in steps}
    for step in steps:
        if step.inv is None or step.node in why:
            out.append(replace(step, inv=None, skipped=step.skipped or why[step.node]))
            continue
        gone = next((u for u in ups[step.node] if u != from_node and u in why), None)
        gone = gone or next((u for u in ups[step.node] if u not in ups), None)
        if gone is not None:
            why[step.node] = f"it consumes {labels[gone]}, which this plan leaves out"
            out.append(replace(step, inv=None, skipped=why[step.node]))
        else:
            out.append(step)
    return out


def run_all(options: Options) -> int:
    steps = graph_steps(options)
    config = load_config(options.config, options.overrides)
    if options.model_role is not None:
        config.require_roles((options.model_role,), f"{CANON.CLI.SUBCOMMAND.RUN_ALL} --model-role")
    chosen: dict[Node, SealedRun] = {}
    from_node = None
    if options.from_run is not None:
        from_run = open_named_run(options.runs_dir, options.from_run, "--from")
        from_node = _from_node(steps, from_run)
        if options.model_role not in (None, from_node[1]) and from_node[1] is not None:
            raise DependencyError(
                f"{from_run.run_dir}: is a run for model role {from_node[1]}, but "
                f"--model-role {options.model_role} leaves out everything downstream of it"
            )
        chosen[from_node] = from_run
    plan = select(steps, options, from_node)
    if options.dry_run:
        return _print_plan(plan, options, {n: r.run_id for n, r in chosen.items()})
    executor = options.executor or config.pipeline.runtime.executor
    # One cluster for every phase that maps pass tasks (spec/06_MODELS_AND_HOOKS.md §7).
    with session(executor, runs_dir=options.runs_dir, address=options.ray_address):
        return _run_plan(plan, options, chosen)


def _run_plan(plan: list[Step], options: Options, chosen: dict[Node, SealedRun]) -> int:
    analysis_runs: dict[str, Path] = {}
    phase6_runs: dict[str, dict[str, Path]] = {}
    report: Path | None = None
    for step in plan:
        if step.inv is None:
            print(f"skipped {step.label}: {step.skipped}")
            continue
        run, reused = _run_or_reuse(step.inv, chosen)
        chosen[step.node] = run
        print(f"{'reused' if reused else 'sealed'} {step.label}: {run.run_dir}", flush=True)
        role = str(step.node[1])
        if SUMMARY_CONTRACT in step.inv.phase.produces:
            analysis_runs[role] = run.run_dir
        for cid in (GENERALIZATION_CONTRACT, MC_SUMMARY_CONTRACT):
            if cid in step.inv.phase.produces:
                phase6_runs.setdefault(role, {})[cid] = run.run_dir
        if REPORT_CONTRACT in step.inv.phase.produces:
            report = contracts.path_in(run.run_dir, REPORT_CONTRACT).resolve()
    for run_dir in analysis_runs.values():  # the summary reads only runs that are intact
        SealedRun.open(run_dir)  # and consistent (critspec.validate.consistency)
    if analysis_runs:
        print()
        print(summary_table(analysis_runs))
    if phase6_runs:
        print()
        print(phase6_table(phase6_runs))
    print(f"\nruns directory: {options.runs_dir.resolve()}")
    if report is not None:  # the last line: where the release report is (spec/16_RELEASE.md)
        print(f"report: {report}")
    return CANON.CLI.EXIT.OK


def _planned_dir(inv: Invocation, ids: dict[Node, str]) -> Path | None:
    """Where the run of `inv` is sealed under content-hash ids (None: a timestamp id)."""
    if inv.options.run_id_mode != CANON.ENUM.RUN_ID_MODE.CONTENT_HASH:
        return None
    return inv.options.runs_dir / planned_run_id(inv, ids)


def _run_or_reuse(inv: Invocation, chosen: dict[Node, SealedRun]) -> tuple[SealedRun, bool]:
    """The sealed run of `inv`: the existing one (checked by validate-run), or a new one
    built from the runs this plan chose upstream."""
    run_dir = _planned_dir(inv, {n: r.run_id for n, r in chosen.items()})
    if run_dir is not None and run_dir.is_dir():
        return SealedRun.open(run_dir), True
    return SealedRun.open(execute(inv, chosen)), False


def _print_plan(plan: list[Step], options: Options, ids: dict[Node, str]) -> int:
    """--dry-run: each phase and role, its run id, reused or new; nothing is computed and
    nothing is written."""
    for step in plan:
        if step.inv is None:
            print(f"skipped {step.label}: {step.skipped}")
            continue
        run_dir = _planned_dir(step.inv, ids)
        if run_dir is None:
            print(f"plan {step.label}: new (a timestamp run id is made when it runs)")
            continue
        ids[step.node] = run_dir.name
        reused = run_dir.is_dir()
        if reused:
            SealedRun.open(run_dir)  # exit 3 now, as the real run would, if it is not intact
        print(f"plan {step.label}: {run_dir.name} ({'reused' if reused else 'new'})")
    print(f"dry run: nothing was computed; runs directory {options.runs_dir.resolve()}")
    return CANON.CLI.EXIT.OK


def _table(run_dir: Path, contract_id: str) -> pd.DataFrame:
    return pd.read_parquet(contracts.path_in(run_dir, contract_id))


def _ci(row: pd.Series, name: str) -> str:
    return f"{row[name]:.3f} [{row[name + '_ci_low']:.3f}, {row[name + '_ci_high']:.3f}]"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _gamma(fit: pd.Series) -> str:
    """gamma fit / predicted; a NaN says why (the crackling table's reason id)."""
    cell = f"{fit['gamma_fit']:.2f} / {fit['gamma_pred']:.2f}"
    undefined = pd.isna(fit["gamma_fit"]) or pd.isna(fit["gamma_pred"])
    return f"{cell} ({fit['reason']})" if undefined and pd.notna(fit["reason"]) else cell


def summary_rows(run_dir: Path, role: str) -> list[tuple[str, ...]]:
    """Per (spike definition, target rate) of one role's Phase 5 run: gstar and what it
    means on the held-out rasters (spec/00_OVERVIEW.md)."""
    summary = _table(run_dir, SUMMARY_CONTRACT)
    ident = _table(run_dir, IDENT_CONTRACT)
    crackling = _table(run_dir, CRACKLING_CONTRACT)
    first_adj = crackling[
        (crackling["adjacency"] == CANON.ENUM.ADJACENCY.ADJ_4N)
        & crackling["null_id"].isna()
        & (crackling["avalanche_set"] == CANON.ENUM.AVALANCHE_SET.INTERIOR)
    ]
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
                _gamma(fit),
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
