"""Test-suite options (spec/08_TEST_PLAN.md §1): tests marked `slow` take many minutes on
two cores (every phase of the real-weights profile); they run with `--run-slow`
(`CANON.CLI.TEST_ALL`, `make test-all`) and otherwise skip, saying so."""

from __future__ import annotations

import pytest

from canon import CANON

RUN_SLOW = "--run-slow"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        RUN_SLOW,
        action="store_true",
        help="also run the tests marked slow (minutes each on two cores)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: minutes on two cores; runs with --run-slow")


def _group_names(item: pytest.Item) -> list[str]:
    marks = item.iter_markers("xdist_group")
    return sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})


def _apply_xdist_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test marked xdist_group the `@group` suffix `--dist loadgroup` schedules by.

    pytest-xdist 3.8 writes the suffix to `item._nodeid`, which pytest 9.2 no longer reads
    (a node id is `item._id`), so its loadgroup silently spread a group over the workers
    and each built the group's session fixture (a whole pipeline) again."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = _group_names(item)
        if names and "@" not in item.nodeid:
            grouped = f"{item.nodeid}@{'_'.join(names)}"
            try:
                from _pytest.nodeid import coerce_node_id
            except ImportError:  # a pytest whose node id is the string `_nodeid`
                item._nodeid = grouped
            else:
                item._id = coerce_node_id(grouped)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _apply_xdist_groups(config, items)
    if config.getoption(RUN_SLOW):
        return
    skip = pytest.mark.skip(
        reason=f"slow (minutes on two cores): run `{CANON.CLI.TEST_ALL}` or `make test-all`"
    )
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
