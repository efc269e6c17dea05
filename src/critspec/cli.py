"""The `critspec` command (spec/07_RUNS_RECORDS_LOGGING.md): one subcommand per verb and per phase.

Errors are mapped to exit codes here and nowhere else; each prints one line
(the traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from canon import CANON
from critspec.errors import CritspecError
from critspec.spec.load import project_spec

SUB = CANON.CLI.SUBCOMMAND
FLAG = CANON.CLI.VALIDATE_FLAG


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


def _phase_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=Path(CANON.PATH.CONFIG_PIPELINE))
    p.add_argument("--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR))
    p.add_argument("--model-role", choices=_enum(CANON.ENUM.MODEL_ROLE))
    p.add_argument("--device", choices=_enum(CANON.ENUM.DEVICE))
    p.add_argument("--dtype", choices=_enum(CANON.ENUM.DTYPE))
    p.add_argument(
        "--run-id-mode",
        choices=_enum(CANON.ENUM.RUN_ID_MODE),
        default=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
    )
    p.add_argument("--allow-resume", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--from", dest="from_run", metavar="RUN_ID")


def _enum(group: type) -> list[str]:
    return [v for k, v in vars(group).items() if not k.startswith("_")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=CANON.CLI.ENTRYPOINT, description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # --debug is also accepted after the subcommand; SUPPRESS keeps the top-level value.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser(
        SUB.GENERATE, help="write canon/ and contracts/ from spec/", parents=[debug]
    )
    gen.add_argument("--check", action="store_true", help="fail if generated files drift")

    val = sub.add_parser(
        SUB.VALIDATE,
        help="check one artifact file against its contract, or a directory against a pack",
        parents=[debug],
    )
    target = val.add_mutually_exclusive_group(required=True)
    target.add_argument("--contract")
    target.add_argument(FLAG.PACK, dest="pack", help="a contract pack (contracts/packs/)")
    val.add_argument("--bind", action="append", default=[], metavar="SYMBOL=VALUE")
    val.add_argument(
        FLAG.FORMAT,
        dest="report_format",
        choices=_enum(CANON.ENUM.REPORT_FORMAT),
        default=CANON.ENUM.REPORT_FORMAT.TEXT,
        help=f"how {FLAG.PACK} reports its violations",
    )
    val.add_argument("path", type=Path, help="the artifact file, or the directory of a pack")

    vrun = sub.add_parser(
        SUB.VALIDATE_RUN, help="check a whole sealed run directory", parents=[debug]
    )
    vrun.add_argument("run_dir", type=Path)

    phases = project_spec().phases.phases
    for phase in phases:
        p = sub.add_parser(phase.id, help=f"run {phase.key}", parents=[debug])
        p.set_defaults(phase_key=phase.key)
        _phase_flags(p)
        for option in phase.options:
            PHASE_OPTIONS[option](p)

    allp = sub.add_parser(
        SUB.RUN_ALL, help="every phase for every model role, reusing runs", parents=[debug]
    )
    _phase_flags(allp)
    _executor_option(allp)

    gc = sub.add_parser(
        SUB.GC, help="list (or with --yes remove) unfinished runs in a runs dir", parents=[debug]
    )
    gc.add_argument("--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR))
    gc.add_argument("--yes", action="store_true", help="remove them (default: only list)")
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
        executor=getattr(args, "executor", None),
        ray_address=getattr(args, "ray_address", None),
    )


def dispatch(args: argparse.Namespace) -> int:
    if args.command == SUB.GENERATE:
        from critspec.generate import plan
        from critspec.paths import project_root

        if args.check:
            plan.check(project_root())
            print("generated files are in sync with spec/")
        else:
            print(f"wrote {len(plan.write(project_root()))} generated files")
        return CANON.CLI.EXIT.OK
    if args.command == SUB.VALIDATE and args.pack is not None:
        return _validate_pack(args)
    if args.command == SUB.VALIDATE:
        from critspec.validate.artifact import validate_artifact
        from critspec.validate.bindings import parse_binds

        validate_artifact(args.contract, args.path, parse_binds(args.bind))
        print(f"{args.path}: conforms to contract {args.contract}")
        return CANON.CLI.EXIT.OK
    if args.command == SUB.VALIDATE_RUN:
        from critspec.validate.run import validate_run

        record = validate_run(args.run_dir)
        print(
            f"{args.run_dir}: sealed run {record['run_id']} is intact "
            f"({len(record['artifact_index'])} artifacts)"
        )
        return CANON.CLI.EXIT.OK
    if args.command == SUB.GC:
        return gc(args.runs_dir, args.yes)
    if args.command == SUB.RUN_ALL:
        from critspec.run_all import run_all

        return run_all(_options(args))
    from critspec.orchestrate import describe, execute, settle

    inv = settle(_options(args), args.phase_key)
    if args.dry_run:
        print(json.dumps(describe(inv), indent=2))
        return CANON.CLI.EXIT.OK
    run_dir = execute(inv)
    print(f"sealed {run_dir}")
    return CANON.CLI.EXIT.OK


def _validate_pack(args: argparse.Namespace) -> int:
    from critspec.errors import ContractError
    from critspec.validate.pack import validate_pack

    report = validate_pack(args.pack, args.path, args.bind)
    if args.report_format == CANON.ENUM.REPORT_FORMAT.JSON:
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        for violation in report.violations:
            print(violation.line())
    if not report.ok:
        raise ContractError(
            f"{args.path}: {len(report.violations)} violation(s) of pack {args.pack}; "
            "each is one line on stdout"
        )
    if args.report_format == CANON.ENUM.REPORT_FORMAT.TEXT:
        print(
            f"{args.path}: conforms to pack {args.pack} "
            f"({len(report.files)} files, {report.rules_checked} rules)"
        )
    return CANON.CLI.EXIT.OK


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except CritspecError as exc:  # the phases' subcommands come from spec/, which must load
        print(f"{CANON.CLI.ENTRYPOINT}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    try:
        return dispatch(args)
    except CritspecError as exc:
        if args.debug:
            raise
        print(f"{CANON.CLI.ENTRYPOINT}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{CANON.CLI.ENTRYPOINT}: interrupted; no run was sealed", file=sys.stderr)
        return CANON.CLI.EXIT.INTERRUPTED
    except OSError as exc:  # the file system refused a path we did not check up front
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(
            f"{CANON.CLI.ENTRYPOINT}: error: {where}{exc.strerror or exc}; check the path",
            file=sys.stderr,
        )
        return CANON.CLI.EXIT.CONTRACT
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        if args.debug:
            raise
        print(
            f"{CANON.CLI.ENTRYPOINT}: internal error (a bug): {type(exc).__name__}: {exc}; "
            "rerun with --debug for the traceback",
            file=sys.stderr,
        )
        return CANON.CLI.EXIT.BUG
