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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption(RUN_SLOW):
        return
    skip = pytest.mark.skip(
        reason=f"slow (minutes on two cores): run `{CANON.CLI.TEST_ALL}` or `make test-all`"
    )
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
