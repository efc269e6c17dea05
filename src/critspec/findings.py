"""`python -m critspec.findings`: the README's "What a real model shows" block, made
from the sealed Phase 5 and Phase 6 runs of a profile: the run-all summary tables exactly
as the pipeline prints them and two of the runs' figures, each with the command that produced it.
No number in the block is typed by hand.

By default the block is printed to stdout and nothing is written. `--write-readme`
replaces the README's block and copies the figures into docs/; it is refused for a
profile other than the one the README's block documents (the profile of
`CANON.PATH.CONFIG_SMOLLM2_PIPELINE`), so one profile's results are never labelled
with another's command. Errors share the CLI's handling: one line and an exit code
(spec/07_RUNS_RECORDS_LOGGING.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from canon import CANON
from critspec.config.canonical import config_sha256
from critspec.config.resolve import load_config
from critspec.errors import ConfigError, DependencyError
from critspec.orchestrate import Options, planned_run_id, settle
from critspec.paths import project_root
from critspec.run_all import (
    GENERALIZATION_CONTRACT,
    MC_SUMMARY_CONTRACT,
    SUMMARY_CONTRACT,
    phase6_table,
    summary_table,
)
from critspec.spec.load import project_spec
from critspec.store.run_store import SealedRun

README = "README.md"
START, END = "<!-- findings:start -->", "<!-- findings:end -->"
FIGURES = (CANON.OUTPUT.FIGURE.B_CURVES, CANON.OUTPUT.FIGURE.DELTA_B_NULLS)
ANALYSIS_PHASE = next(p for p in project_spec().phases.phases if SUMMARY_CONTRACT in p.produces)
PHASE6 = {
    cid: next(p for p in project_spec().phases.phases if cid in p.produces)
    for cid in (GENERALIZATION_CONTRACT, MC_SUMMARY_CONTRACT)
}


def analysis_runs(
    config: Path, runs_dir: Path, overrides: tuple[str, ...] = (), phase=ANALYSIS_PHASE
) -> dict[str, SealedRun]:
    """The sealed run of `phase` (default Phase 5) of every role the profile declares
    (exit 3 if one is missing).

    The run made by this code is taken when there is one; otherwise the newest sealed run
    of the same resolved config (the README block names its code version), so that the
    block can be written after commits that did not touch the pipeline.
    """
    out = {}
    for role in load_config(config, overrides).model_roles:
        options = Options(config=config, runs_dir=runs_dir, model_role=role, overrides=overrides)
        inv = settle(options, phase.key)
        planned = runs_dir / planned_run_id(inv)
        if planned.is_dir():
            out[role] = SealedRun.open(planned)
            continue
        want = config_sha256(inv.config_doc())
        prefix = f"{CANON.PATH.RUN_DIR_PREFIX}{phase.stage_tag}_"
        same = [
            run
            for run in (SealedRun.open(d) for d in sorted(runs_dir.glob(prefix + "*")))
            if run.record["config_sha256"] == want
        ]
        if not same:
            raise DependencyError(
                f"no {phase.id} run of {config} in {runs_dir}: run "
                f"`{CANON.CLI.CMD.RUN_ALL_SMOLLM2}` (or run-all with this config) first"
            )
        out[role] = max(same, key=lambda run: run.record["created_utc"])
    return out


def readme_profile() -> str:
    """The profile whose results the README's findings block documents."""
    return load_config(project_root() / CANON.PATH.CONFIG_SMOLLM2_PIPELINE).pipeline.profile


def block(
    config: Path,
    runs: dict[str, SealedRun],
    figures: list[str],
    overrides: tuple[str, ...] = (),
    phase6: dict[str, dict[str, SealedRun]] | None = None,
) -> str:
    """The findings block for `config`'s runs, labelled with that config's own commands
    (with run-all's Phase 6 table when the profile's Phase 6 runs are given)."""
    table = summary_table({role: run.run_dir for role, run in runs.items()})
    if phase6:
        by_role = {
            role: {cid: runs_of[role].run_dir for cid, runs_of in phase6.items()} for role in runs
        }
        table += "\n\n" + phase6_table(by_role)
    profile = load_config(config, overrides).pipeline.profile
    make = " (the `make run-real` pipeline)" if profile == readme_profile() else ""
    flags = f" --config {config.as_posix()}" + "".join(f" --set {o}" for o in overrides)
    command = f"{CANON.CLI.ENTRYPOINT} {CANON.CLI.SUBCOMMAND.RUN_ALL}{flags}"
    tool = CANON.CLI.FINDINGS.split(" --")[0]
    lines = [
        START,
        f"Printed by `{command}`{make}, profile `{profile}`; this block is written by "
        f"`{tool}{flags}` from the sealed runs "
        + ", ".join(f"`{run.run_id}`" for run in runs.values())
        + f" (code version `{next(iter(runs.values())).record['code_version']}`).",
        "",
        "```",
        table,
        "```",
        "",
    ]
    lines += [f"![{Path(f).stem}]({f})" for f in figures]
    lines += ["", END]
    return "\n".join(lines)


def replace_block(text: str, new: str) -> str:
    """text with the findings block replaced; a README without both markers is an error."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ConfigError(f"README needs exactly one {START} … {END} block")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return head + new + tail


def figure_targets(config: Path, runs: dict[str, SealedRun], root: Path) -> list[tuple[Path, Path]]:
    """(source figure in a run, its copy under docs/) for every role and README figure."""
    profile = load_config(config).pipeline.profile
    docs = root / CANON.PATH.DOCS_DIR
    return [
        (run.run_dir / CANON.OUTPUT.SUBDIR.FIGS / png, docs / f"{profile}_{role.lower()}_{png}")
        for role, run in runs.items()
        for png, _pdf in FIGURES
    ]


def check_writable(config: Path, root: Path) -> str:
    """Everything --write-readme needs, checked before anything is written: the profile is
    the README's, docs/ is a directory (or absent), the README is a writable file with one
    findings block. Returns the README's text."""
    profile, documented = load_config(config).pipeline.profile, readme_profile()
    if profile != documented:
        raise ConfigError(
            f"{config}: profile {profile!r} is not the profile the README's findings block "
            f"documents ({documented!r}); print its block without --write-readme instead"
        )
    docs, readme = root / CANON.PATH.DOCS_DIR, root / README
    if docs.exists() and not docs.is_dir():
        raise ConfigError(f"{docs}: is not a directory; the findings figures are copied there")
    if not readme.is_file():
        raise ConfigError(f"{readme}: no README to write the findings block into")
    if not os.access(readme, os.W_OK) or (docs.is_dir() and not os.access(docs, os.W_OK)):
        where = readme if not os.access(readme, os.W_OK) else docs
        raise ConfigError(f"{where}: not writable; nothing was written")
    text = readme.read_text(encoding="utf-8")
    replace_block(text, f"{START}\n{END}")
    return text


def write(config: Path, runs_dir: Path, root: Path, overrides: tuple[str, ...] = ()) -> list[Path]:
    """Replace the README's findings block and copy its figures into docs/."""
    text = check_writable(config, root)
    runs = analysis_runs(config, runs_dir, overrides)
    targets = figure_targets(config, runs, root)
    (root / CANON.PATH.DOCS_DIR).mkdir(exist_ok=True)
    for source, target in targets:
        shutil.copyfile(source, target)
    readme = root / README
    rel = [target.relative_to(root).as_posix() for _, target in targets]
    phase6 = phase6_runs(config, runs_dir, overrides)
    new = block(config, runs, rel, overrides, phase6)
    readme.write_text(replace_block(text, new), encoding="utf-8")
    return [readme, *(target for _, target in targets)]


def phase6_runs(
    config: Path, runs_dir: Path, overrides: tuple[str, ...] = ()
) -> dict[str, dict[str, SealedRun]]:
    """The sealed Phase 6 runs (Dataset B, multiple choice) of every role, by contract."""
    return {cid: analysis_runs(config, runs_dir, overrides, phase) for cid, phase in PHASE6.items()}


def show(config: Path, runs_dir: Path, root: Path, overrides: tuple[str, ...] = ()) -> str:
    """The block as --write-readme would write it (figure paths as they would be)."""
    runs = analysis_runs(config, runs_dir, overrides)
    rel = [t.relative_to(root).as_posix() for _, t in figure_targets(config, runs, root)]
    return block(config, runs, rel, overrides, phase6_runs(config, runs_dir, overrides))


def main(argv: list[str] | None = None) -> int:
    from critspec.cli import guarded

    parser = argparse.ArgumentParser(
        prog="python -m critspec.findings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example: {CANON.CLI.FINDINGS} --write-readme",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(CANON.PATH.CONFIG_SMOLLM2_PIPELINE),
        help="the profile whose sealed Phase 5 runs are summarized",
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR), help="where the runs are"
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="replace the README's findings block and copy its figures into docs/ "
        "(default: print the block to stdout, write nothing)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the --set overrides the runs were made with (they are part of the run ids)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the checkout whose README and docs/ are written (default: this one)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def work() -> int:
        root = args.root or project_root()
        overrides = tuple(args.overrides)
        if args.write_readme:
            for path in write(args.config, args.runs_dir, root, overrides):
                print(f"wrote {path}")
        else:
            print(show(args.config, args.runs_dir, root, overrides))
        return CANON.CLI.EXIT.OK

    return guarded(work, args.debug, args)


if __name__ == "__main__":
    sys.exit(main())
