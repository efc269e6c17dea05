"""The phase subcommands and their options are built from spec/phases.yaml (issue 8, item 0)."""

from __future__ import annotations

import argparse

from canon import CANON
from critspec.cli import PHASE_OPTIONS, build_parser
from critspec.spec.load import project_spec


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_phase_has_its_subcommand_and_options() -> None:
    subs = _subparsers(build_parser())
    for phase in project_spec().phases.phases:
        assert phase.id in subs, phase.key
        args = subs[phase.id].parse_args([])
        assert args.phase_key == phase.key
        for option in PHASE_OPTIONS:
            assert hasattr(args, option) == (option in phase.options), (phase.key, option)


def test_no_phase_subcommand_outside_the_spec() -> None:
    verbs = {v for k, v in vars(CANON.CLI.SUBCOMMAND).items() if not k.startswith("_")} - {
        p.id for p in project_spec().phases.phases
    }
    subs = _subparsers(build_parser())
    for name, sub in subs.items():
        if name not in verbs:
            assert sub.get_default("phase_key") in {p.key for p in project_spec().phases.phases}
