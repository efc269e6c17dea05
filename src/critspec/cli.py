"""The `critspec` command (spec/07_RUNS_RECORDS_LOGGING.md): one subcommand per verb and per phase.

Errors are mapped to exit codes here and nowhere else; each prints one line
(the traceback only with --debug). A stop signal (Ctrl-C, SIGTERM, SIGHUP) at any
moment, start-up included, ends the command with one line and exit
CANON.CLI.EXIT.INTERRUPTED (see critspec.interrupts).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canon import CANON


def _is_entry() -> bool:
    """This process was started as the command (console script or `python -m`), so the
    process's signal handling is ours; a library caller (tests, notebooks) keeps its own."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return argv0.name == CANON.CLI.ENTRYPOINT or (
        argv0.name == "__main__.py" and argv0.parent.name == __name__.partition(".")[0]
    )


def _stopped_while_starting(signum: int, frame: Any) -> None:
    """Before main() runs there is nothing to keep: one line and out."""
    line = f"{CANON.CLI.ENTRYPOINT}: interrupted while starting; no run was sealed\n"
    os.write(2, line.encode())
    os._exit(CANON.CLI.EXIT.INTERRUPTED)


def _uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    """A stop signal that lands after main() returned, as the interpreter exits."""
    if issubclass(kind, KeyboardInterrupt):
        sys.stdout.flush()
        os.write(2, f"{CANON.CLI.ENTRYPOINT}: interrupted\n".encode())
        os._exit(CANON.CLI.EXIT.INTERRUPTED)
    sys.__excepthook__(kind, exc, tb)


ENTRY = _is_entry()
if ENTRY:
    for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(_sig, _stopped_while_starting)
    sys.excepthook = _uncaught

import argparse  # noqa: E402  (after the start-up handlers: imports take time)
import json  # noqa: E402

from critspec import interrupts  # noqa: E402
from critspec.errors import CritspecError  # noqa: E402
from critspec.spec.load import project_spec  # noqa: E402

SUB = CANON.CLI.SUBCOMMAND
FLAG = CANON.CLI.VALIDATE_FLAG
CMD = CANON.CLI.CMD
ROLE = CANON.ENUM.MODEL_ROLE

# Help for every subcommand: (one line for `critspec --help`, an example command).
# Kept as a table so that a new subcommand adds one row here and one `add_parser` below.
SUBCOMMAND_HELP: dict[str, tuple[str, str]] = {
    SUB.GENERATE: (
        "write canon/ and contracts/ of the checkout you are in from its spec/",
        f"{CANON.CLI.ENTRYPOINT} {SUB.GENERATE} --check",
    ),
    SUB.VALIDATE: (
        "check one artifact file against its contract, or a directory against a pack",
        f"{CANON.CLI.ENTRYPOINT} {SUB.VALIDATE} --contract calibration_stats stats.npz "
        "--bind L=28 --bind d_ff=18944",
    ),
    SUB.VALIDATE_RUN: (
        "check a sealed run directory, or every run of a runs directory",
        f"{CANON.CLI.ENTRYPOINT} {SUB.VALIDATE_RUN} {CANON.PATH.RUNS_DIR}",
    ),
    SUB.RUN_ALL: ("every phase for every model role, reusing existing runs", CMD.RUN_ALL),
    SUB.VERIFY_RELEASE: (
        "check a sealed release run, its released runs and its archive byte for byte",
        f"{CANON.CLI.ENTRYPOINT} {SUB.VERIFY_RELEASE} {CANON.PATH.RUNS_DIR}/RUN_P8REL_0123456789ab",
    ),
    SUB.GC: (
        "list (or with --yes remove) unfinished runs in a runs directory",
        f"{CANON.CLI.ENTRYPOINT} {SUB.GC} --runs-dir {CANON.PATH.RUNS_DIR} --yes",
    ),
    SUB.RUNS: (
        "one line per run in a runs directory: id, phase, role, profile, config, code, state",
        f"{CANON.CLI.ENTRYPOINT} {SUB.RUNS} --runs-dir {CANON.PATH.RUNS_DIR} --format json",
    ),
    SUB.SHOW: (
        "one run in words: what it consumed, what it produced, its summary",
        f"{CANON.CLI.ENTRYPOINT} {SUB.SHOW} RUN_P5ANA_0123456789ab",
    ),
    SUB.SELFCHECK: (
        "Phase 5's statistics on data with a known answer (spec/12_STATISTICS_AND_BOOTSTRAP.md §5)",
        CMD.SELFCHECK,
    ),
    SUB.ANALYZE_RASTERS: (
        "Phase 5's analysis of rasters made elsewhere, as a sealed run "
        "(spec/12_STATISTICS_AND_BOOTSTRAP.md §6)",
        CMD.ANALYZE_RASTERS,
    ),
    SUB.INIT: (
        "write a pipeline/models/datasets config trio for your own model into DIR",
        f"{CANON.CLI.ENTRYPOINT} {SUB.INIT} --model HuggingFaceTB/SmolLM2-135M "
        "--dataset corpus.txt my_model/",
    ),
}
# One line per phase for `critspec --help` (the commands themselves come from spec/phases.yaml).
PHASE_HELP: dict[str, str] = {
    "PHASE0_VALIDATE_ENV": "Phase 0: check the environment, the models, hooks and gain",
    "PHASE1_CALIBRATE": "Phase 1: per-neuron mu/sigma and per-layer target rates r*",
    "PHASE2_GAIN_GRID": "Phase 2: branching ratios over the gain grid on the calibration slice",
    "PHASE2_SELECT_GSTAR": "Phase 2: select gstar, the gain whose b_tot is closest to one",
    "PHASE3_EXTRACT_RASTERS": "Phase 3: event rasters at every gain on held-out windows",
    "PHASE4_RUN_NULLS": "Phase 4: the null rasters (time permutation, shift, token shuffle)",
    "PHASE5_ANALYZE": "Phase 5: branching, avalanches, crackling and figures (no model)",
    "PHASE6_GENERALIZE_B": "Phase 6: Dataset B rasters and next-token NLL at baseline and gstar",
    "PHASE6_MC_EVAL": "Phase 6: multiple choice in two regimes at baseline and gstar",
    "PHASE6_ABLATIONS": "Phase 6: the gain on the attention output or one band of MLPs",
    "PHASE7_REPLICATION": "Phase 7: does gstar replicate across model roles and seeds",
    "PHASE8_RELEASE": "Phase 8: the release: manifest, archive and report of the pipeline",
}
# Help of the options every phase and run-all share.
OPTION_HELP: dict[str, str] = {
    "--config": "the pipeline config (it names its models and datasets files)",
    "--runs-dir": "where runs are read and written",
    "--model-role": "which model role to run (phases per role need it)",
    "--device": "auto picks CUDA when present; a model that does not fit is an error",
    "--dtype": "auto: bf16 on CUDA, fp32 on CPU",
    "--run-id-mode": "content_hash (reusable, reproducible ids) or timestamp (always new)",
    "--allow-resume": "replace an incomplete run at the same id; it is rebuilt from scratch "
    "(a phase is never resumed part-way), and refused when there is none",
    "--dry-run": "print the plan (run ids, reused or new) and compute nothing",
    "--from": "the upstream run to consume instead of the planned one",
    "--set": "override one config value for this command (YAML value; recorded in the "
    "resolved config, so it changes the run id); repeatable",
}


def _metrics_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", type=Path, help="select from a metrics file made elsewhere")


def _executor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=_enum(CANON.ENUM.EXECUTOR),
        help="who runs the forward passes (default: runtime.executor of the config)",
    )
    p.add_argument(
        "--ray-address", metavar="ADDR", help="a running Ray cluster (with --executor ray)"
    )


# The extra options a phase may declare in spec/phases.yaml (`options`).
PHASE_OPTIONS = {"metrics": _metrics_option, "executor": _executor_option}


def _set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=OPTION_HELP["--set"],
    )


def _phase_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=Path(CANON.PATH.CONFIG_PIPELINE),
        help=OPTION_HELP["--config"],
    )
    p.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help=OPTION_HELP["--runs-dir"]
    )
    p.add_argument(
        "--model-role", choices=_enum(CANON.ENUM.MODEL_ROLE), help=OPTION_HELP["--model-role"]
    )
    p.add_argument("--device", choices=_enum(CANON.ENUM.DEVICE), help=OPTION_HELP["--device"])
    p.add_argument("--dtype", choices=_enum(CANON.ENUM.DTYPE), help=OPTION_HELP["--dtype"])
    p.add_argument(
        "--run-id-mode",
        choices=_enum(CANON.ENUM.RUN_ID_MODE),
        default=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
        help=OPTION_HELP["--run-id-mode"],
    )
    p.add_argument("--allow-resume", action="store_true", help=OPTION_HELP["--allow-resume"])
    p.add_argument("--dry-run", action="store_true", help=OPTION_HELP["--dry-run"])
    p.add_argument("--from", dest="from_run", metavar="RUN_ID", help=OPTION_HELP["--from"])
    _set_option(p)


def _enum(group: type) -> list[str]:
    return [v for k, v in vars(group).items() if not k.startswith("_")]


def _add(sub: argparse._SubParsersAction, name: str, parents: list, **kw: object):  # noqa: ANN202
    """A subcommand with its help line and example from SUBCOMMAND_HELP."""
    text, example = SUBCOMMAND_HELP[name]
    return sub.add_parser(
        name,
        help=text,
        description=text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
        **kw,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=CANON.CLI.ENTRYPOINT,
        description=__doc__,
        epilog=f"examples:\n  {CMD.RUN_ALL}\n  {CANON.CLI.ENTRYPOINT} {SUB.RUNS}\n"
        f"  {CANON.CLI.ENTRYPOINT} <command> --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # --debug, -q and -v are also accepted after the subcommand; SUPPRESS keeps the
    # top-level value when they are not repeated there.
    common = argparse.ArgumentParser(add_help=False)
    for p, top in ((parser, True), (common, False)):
        kw = {} if top else {"default": argparse.SUPPRESS}
        p.add_argument("--debug", action="store_true", help="show tracebacks", **kw)
        p.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            help="no progress output on stderr (results and errors still print)",
            **kw,
        )
        p.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="progress as one line per gain even on a terminal",
            **kw,
        )
    parents = [common]
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = _add(sub, SUB.GENERATE, parents)
    gen.add_argument("--check", action="store_true", help="fail if generated files drift")
    gen.add_argument(
        "--root",
        type=Path,
        help="the checkout to generate (default: the one holding the current directory)",
    )

    val = _add(sub, SUB.VALIDATE, parents)
    target = val.add_mutually_exclusive_group(required=True)
    target.add_argument("--contract", help="a contract id (contracts/README.md lists them)")
    target.add_argument(FLAG.PACK, dest="pack", help="a contract pack (contracts/packs/)")
    val.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="SYMBOL=VALUE",
        help="a contract symbol's value, e.g. L=28 or gains=0.9,1.0,1.1; repeatable",
    )
    val.add_argument(
        "--bind-from",
        type=Path,
        metavar="RUN_DIR",
        help="bind every symbol a sealed run's record and config define (--bind wins)",
    )
    val.add_argument(
        FLAG.FORMAT,
        dest="report_format",
        choices=_enum(CANON.ENUM.REPORT_FORMAT),
        default=CANON.ENUM.REPORT_FORMAT.TEXT,
        help=f"how {FLAG.PACK} reports its violations",
    )
    val.add_argument(
        FLAG.STRICT,
        dest="strict",
        action="store_true",
        help=f"with {FLAG.PACK}: a pack's warnings fail too (exit 2)",
    )
    val.add_argument("path", type=Path, help="the artifact file, or the directory of a pack")

    vrun = _add(sub, SUB.VALIDATE_RUN, parents)
    vrun.add_argument(
        "run_dir", type=Path, help="a run directory, or a runs directory (every run in it)"
    )

    for phase in project_spec().phases.phases:
        text = PHASE_HELP.get(phase.key, f"run {phase.key}")
        examples = "\n  ".join(phase.commands.values())
        p = sub.add_parser(
            phase.id,
            help=text,
            description=text,
            epilog=f"example:\n  {examples}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=parents,
        )
        p.set_defaults(phase_key=phase.key)
        _phase_flags(p)
        for option in phase.options:
            PHASE_OPTIONS[option](p)

    allp = _add(sub, SUB.RUN_ALL, parents)
    _phase_flags(allp)
    _executor_option(allp)

    ver = _add(sub, SUB.VERIFY_RELEASE, parents)
    ver.add_argument("release_dir", type=Path, help="the release run directory")

    gc = _add(sub, SUB.GC, parents)
    gc.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help=OPTION_HELP["--runs-dir"]
    )
    gc.add_argument("--yes", action="store_true", help="remove them (default: only list)")

    runs = _add(sub, SUB.RUNS, parents)
    runs.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help=OPTION_HELP["--runs-dir"]
    )
    runs.add_argument(
        FLAG.FORMAT,
        dest="list_format",
        choices=("table", CANON.ENUM.REPORT_FORMAT.JSON),
        default="table",
        help="an aligned table (default) or a JSON list",
    )

    show = _add(sub, SUB.SHOW, parents)
    show.add_argument("run", metavar="RUN_ID", help="a run id in --runs-dir, or a run directory")
    show.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help=OPTION_HELP["--runs-dir"]
    )

    init = _add(sub, SUB.INIT, parents)
    init.add_argument(
        "--model",
        required=True,
        metavar="HF_ID_OR_DIR",
        help="a Hugging Face model id (read from the local cache) or a model directory",
    )
    init.add_argument(
        "--revision", help="the hub commit to pin (default: the cached snapshot's commit)"
    )
    init.add_argument(
        "--dataset",
        type=Path,
        metavar="PATH",
        help="a local .txt/.jsonl/.parquet corpus for every dataset role "
        "(default: the embedded synthetic corpora)",
    )
    init.add_argument("dir", type=Path, metavar="DIR", help="where the three files are written")

    check = _add(sub, SUB.SELFCHECK, parents)
    check.add_argument("--full", action="store_true", help="the paper's sizes (minutes)")

    ras = _add(sub, SUB.ANALYZE_RASTERS, parents)
    ras.add_argument(
        "rasters", type=Path, metavar="RASTERS.npz", help="A, X, cond_id, seq_id (contract rasters)"
    )
    ras.add_argument(
        "--conditions",
        type=Path,
        metavar="TABLE",
        help="a raster_conditions Parquet table naming each condition (default: numbered, "
        "no gain axis)",
    )
    ras.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help=OPTION_HELP["--runs-dir"]
    )
    ras.add_argument(
        "--config",
        type=Path,
        default=Path(CANON.PATH.CONFIG_PIPELINE),
        help="the pipeline config whose analysis section is used",
    )
    _set_option(ras)
    return parser


def gc(runs_dir: Path, remove: bool) -> int:
    """`critspec gc`: one line per unfinished run; removes only with --yes, never a live one."""
    from critspec.store.run_store import leftovers, remove_leftover

    found = leftovers(runs_dir)
    for item in found:
        if item.building:
            print(f"{item.path}: still being built by a live process; left alone")
        elif remove:
            remove_leftover(item)
            print(f"{item.path}: removed")
        else:
            print(f"{item.path}: unfinished run (remove with --yes)")
    if not found:
        print(f"{runs_dir}: no unfinished runs")
    return CANON.CLI.EXIT.OK


def verify_release(release_dir: Path) -> int:
    """`critspec verify-release DIR` (spec/16_RELEASE.md): exit 0 intact, 3 naming the first
    file that differs."""
    from critspec.release.verify import verify_release as verify

    done = verify(release_dir)
    where = (
        "released runs checked on disk and in the archive"
        if done.runs_checked_on_disk
        else "released runs not beside it: checked in the archive only"
    )
    print(
        f"{release_dir}: release {done.run_id} is intact ({done.n_runs} runs, {done.n_files} "
        f"files; {where}; archive sha256 {done.archive_sha256})"
    )
    return CANON.CLI.EXIT.OK


def _options(args: argparse.Namespace):  # noqa: ANN202
    from critspec.orchestrate import Options

    return Options(
        config=args.config,
        runs_dir=args.runs_dir,
        model_role=args.model_role,
        device=args.device,
        dtype=args.dtype,
        run_id_mode=args.run_id_mode,
        allow_resume=args.allow_resume,
        dry_run=args.dry_run,
        from_run=args.from_run,
        metrics=getattr(args, "metrics", None),
        overrides=tuple(args.overrides),
        executor=getattr(args, "executor", None),
        ray_address=getattr(args, "ray_address", None),
    )


def dispatch(args: argparse.Namespace) -> int:
    from critspec.progress import NORMAL, QUIET, VERBOSE, set_verbosity

    set_verbosity(QUIET if args.quiet else VERBOSE if args.verbose else NORMAL)
    if args.command == SUB.GENERATE:
        return _generate(args)
    if args.command == SUB.VALIDATE:
        _refuse_strict_without_pack(args)
    if args.command == SUB.VALIDATE and args.pack is not None:
        return _validate_pack(args)
    if args.command == SUB.VALIDATE:
        return _validate_contract(args)
    if args.command == SUB.VALIDATE_RUN:
        from critspec.browse import validate_many

        lines, code = validate_many(args.run_dir)
        print("\n".join(lines))
        return code
    if args.command == SUB.GC:
        return gc(args.runs_dir, args.yes)
    if args.command == SUB.RUNS:
        from critspec.browse import list_runs, runs_json, runs_table

        rows = list_runs(args.runs_dir)
        print(
            runs_json(rows)
            if args.list_format == CANON.ENUM.REPORT_FORMAT.JSON
            else runs_table(rows)
        )
        return CANON.CLI.EXIT.OK
    if args.command == SUB.SHOW:
        from critspec.browse import describe_run, find_run

        print(describe_run(find_run(args.run, args.runs_dir)))
        return CANON.CLI.EXIT.OK
    if args.command == SUB.INIT:
        from critspec.init_config import init_config

        for path in init_config(args.model, args.dataset, args.dir, args.revision):
            print(f"wrote {path}")
        print(f"next: {CANON.CLI.ENTRYPOINT} {SUB.RUN_ALL} --config {args.dir / 'pipeline.yaml'}")
        return CANON.CLI.EXIT.OK
    if args.command == SUB.SELFCHECK:
        from critspec.analysis.selfcheck import selfcheck

        lines = selfcheck(args.full)
        failed = sum(not line.passed for line in lines)
        print(f"selfcheck: {len(lines) - failed}/{len(lines)} passed")
        return CANON.CLI.EXIT.OK if not failed else CANON.CLI.EXIT.BUG
    if args.command == SUB.ANALYZE_RASTERS:
        from runners.analyze_rasters import analyze_rasters

        run_dir = analyze_rasters(
            args.rasters, args.conditions, args.runs_dir, args.config, tuple(args.overrides)
        )
        print(f"sealed {run_dir}")
        return CANON.CLI.EXIT.OK
    if args.command == SUB.VERIFY_RELEASE:
        return verify_release(args.release_dir)
    if args.command == SUB.RUN_ALL:
        from critspec.run_all import run_all

        return run_all(_options(args))
    from critspec.orchestrate import check_resume, describe, execute, settle

    inv = settle(_options(args), args.phase_key)
    if args.dry_run:
        print(json.dumps(describe(inv), indent=2))
        return CANON.CLI.EXIT.OK
    check_resume(inv)
    run_dir = execute(inv)
    print(f"sealed {run_dir}")
    return CANON.CLI.EXIT.OK


def _generate(args: argparse.Namespace) -> int:
    """`critspec generate`: the checkout holding the current directory (or --root), never
    the tree the package happens to be installed from."""
    from critspec.generate import plan
    from critspec.paths import checkout_root

    root = checkout_root(args.root or Path.cwd())
    if args.check:
        plan.check(root)
        print(f"{root}: generated files are in sync with spec/")
    else:
        print(f"{root}: wrote {len(plan.write(root))} generated files")
    return CANON.CLI.EXIT.OK


def _validate_contract(args: argparse.Namespace) -> int:
    """One artifact against its contract. The file is checked in the contract's order (its
    own first violation first); when a check needs a symbol nobody bound, every unbound
    symbol of the contract is named at once."""
    from critspec.validate.artifact import validate_artifact
    from critspec.validate.bindings import UnboundSymbol, check_bound, from_run, parse_binds

    bindings = {}
    if args.bind_from is not None:
        from critspec.validate.run import check_config, validate_run

        record = validate_run(args.bind_from)
        bindings = from_run(record, check_config(args.bind_from, record))
    bindings.update(parse_binds(args.bind))
    try:
        validate_artifact(args.contract, args.path, bindings)
    except UnboundSymbol:
        check_bound(args.contract, bindings)
        raise
    print(f"{args.path}: conforms to contract {args.contract}")
    return CANON.CLI.EXIT.OK


def _validate_pack(args: argparse.Namespace) -> int:
    """`validate --pack`: errors and warnings on stdout, one line each, then the rules
    skipped (and why); the one stderr line says what failed (spec/packs/README.md)."""
    from critspec.errors import ContractError
    from critspec.validate.pack import validate_pack

    report = validate_pack(args.pack, args.path, args.bind, strict=args.strict)
    if args.report_format == CANON.ENUM.REPORT_FORMAT.JSON:
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        for line in [v.line() for v in report.violations] + [s.line() for s in report.skipped]:
            print(line)
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    if not report.ok:
        strict = f" ({FLAG.STRICT}: warnings count)" if args.strict else ""
        raise ContractError(
            f"{args.path}: {len(report.failing)} violation(s) of pack {args.pack}{strict}: "
            f"{counts}, each one line on stdout; first: {report.failing[0].line()}"
        )
    if args.report_format == CANON.ENUM.REPORT_FORMAT.TEXT:
        print(
            f"{args.path}: conforms to pack {args.pack} "
            f"({len(report.files)} files, {report.rules_checked} rules, {counts})"
        )
    return CANON.CLI.EXIT.OK


def _refuse_strict_without_pack(args: argparse.Namespace) -> None:
    from critspec.errors import ContractError

    if getattr(args, "strict", False) and getattr(args, "pack", None) is None:
        raise ContractError(
            f"{FLAG.STRICT} applies to {FLAG.PACK} only; a contract has no warnings"
        )


def main(argv: list[str] | None = None) -> int:
    sealed_before = interrupts.sealed_count()
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        if ENTRY:  # the outcome is being reported: a second Ctrl-C must not change it
            interrupts.ignore_stop()
        code = _interrupted(interrupts.sealed_since(sealed_before))
    if ENTRY:
        interrupts.ignore_stop()
        if code == CANON.CLI.EXIT.INTERRUPTED:
            # Reported already; leave now, as a stop during start-up does: the interpreter
            # would otherwise re-deliver an interrupt it saw during an import at its exit
            # and end by the signal instead of this exit code.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


def _interrupted(sealed: list[Path]) -> int:
    """One line that says truthfully whether a run was sealed before the interrupt."""
    if sealed:
        runs = ", ".join(str(p) for p in sealed)
        what = f"sealed before it and intact: {runs}"
    else:
        what = "no run was sealed"
    print(f"{CANON.CLI.ENTRYPOINT}: interrupted; {what}", file=sys.stderr, flush=True)
    return CANON.CLI.EXIT.INTERRUPTED


def _main(argv: list[str] | None) -> int:
    if ENTRY:
        interrupts.raise_on_stop()
    try:
        parser = build_parser()
    except CritspecError as exc:  # the phases' subcommands come from spec/, which must load
        print(f"{CANON.CLI.ENTRYPOINT}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    return guarded(lambda: dispatch(args), args.debug, args)


def guarded(call: Callable[[], int], debug: bool, args: argparse.Namespace | None = None) -> int:
    """Run one entry point's work with the CLI's error handling (spec/07_RUNS_RECORDS_LOGGING.md):
    every failure is one line on stderr and its exit code; tracebacks only with --debug.
    `python -m critspec.findings` shares it."""
    try:
        return call()
    except CritspecError as exc:
        if debug:
            raise
        print(f"{CANON.CLI.ENTRYPOINT}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system refused a path we did not check up front
        if debug:
            raise
        print(f"{CANON.CLI.ENTRYPOINT}: error: {_os_error(exc, args)}", file=sys.stderr)
        return CANON.CLI.EXIT.CONTRACT
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if debug:
            raise
        print(
            f"{CANON.CLI.ENTRYPOINT}: internal error (a bug): {type(exc).__name__}: {exc}; "
            "rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return CANON.CLI.EXIT.BUG


def _os_error(exc: OSError, args: argparse.Namespace | None) -> str:
    """The file system's refusal with the path it concerns. A write that fails for space
    (ENOSPC, EFBIG, EDQUOT) carries no file name; the runs directory is where it wrote."""
    where = exc.filename or getattr(args, "runs_dir", None) or getattr(args, "path", None)
    prefix = f"{where}: " if where else ""
    return f"{prefix}{exc.strerror or exc}; check the path and the free space there"
