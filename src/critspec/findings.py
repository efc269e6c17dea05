"""`python -m critspec.findings`: the README's "What a real model shows" block, written
from the sealed Phase 5 and Phase 6 runs of a profile (issue 9): the run-all summary
tables exactly as the pipeline prints them, and two of the runs' figures copied into
docs/, each with the command that produced it. No number in the block is typed by hand.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from canon import CANON
from critspec.config.canonical import config_sha256
from critspec.config.resolve import load_config
from critspec.errors import ConfigError, CritspecError, DependencyError
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


def analysis_runs(config: Path, runs_dir: Path, phase=ANALYSIS_PHASE) -> dict[str, SealedRun]:
    """The sealed run of `phase` (default Phase 5) of every role the profile declares
    (exit 3 if one is missing).

    The run made by this code is taken when there is one; otherwise the newest sealed run
    of the same resolved config (the README block names its code version), so that the
    block can be written after commits that did not touch the pipeline.
    """
    out = {}
    for role in load_config(config).model_roles:
        inv = settle(Options(config=config, runs_dir=runs_dir, model_role=role), phase.key)
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


def block(
    config: Path,
    runs: dict[str, SealedRun],
    figures: list[str],
    phase6: dict[str, dict[str, SealedRun]] | None = None,
) -> str:
    """The README block between the findings markers (with run-all's Phase 6 table when
    the profile's Phase 6 runs are given)."""
    table = summary_table({role: run.run_dir for role, run in runs.items()})
    if phase6:
        by_role = {
            role: {cid: runs_of[role].run_dir for cid, runs_of in phase6.items()} for role in runs
        }
        table += "\n\n" + phase6_table(by_role)
    lines = [
        START,
        f"Printed by `critspec run-all --config {config.as_posix()}` (the `make run-real` "
        f"pipeline); this block is written by `{CANON.CLI.FINDINGS}` from the sealed runs "
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


def write(config: Path, runs_dir: Path, root: Path) -> list[Path]:
    runs = analysis_runs(config, runs_dir)
    phase6 = {cid: analysis_runs(config, runs_dir, phase) for cid, phase in PHASE6.items()}
    profile = load_config(config).pipeline.profile
    docs = root / CANON.PATH.DOCS_DIR
    docs.mkdir(exist_ok=True)
    written = []
    for role, run in runs.items():
        for png, _pdf in FIGURES:
            target = docs / f"{profile}_{role.lower()}_{png}"
            shutil.copyfile(run.run_dir / CANON.OUTPUT.SUBDIR.FIGS / png, target)
            written.append(target)
    readme = root / README
    rel = [p.relative_to(root).as_posix() for p in written]
    new = block(config, runs, rel, phase6)
    readme.write_text(replace_block(readme.read_text(encoding="utf-8"), new))
    return [readme, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m critspec.findings", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path(CANON.PATH.CONFIG_SMOLLM2_PIPELINE))
    parser.add_argument("--runs-dir", type=Path, default=Path(CANON.PATH.RUNS_DIR))
    args = parser.parse_args(argv)
    try:
        for path in write(args.config, args.runs_dir, project_root()):
            print(f"wrote {path}")
    except CritspecError as exc:
        print(f"{CANON.CLI.ENTRYPOINT}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return CANON.CLI.EXIT.OK


if __name__ == "__main__":
    sys.exit(main())
