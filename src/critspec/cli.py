"""critspec command line (bootstrap: generate only; the full CLI follows)."""

from __future__ import annotations

import sys

from critspec.generate import plan
from critspec.paths import project_root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["generate"]:
        if "--check" in args:
            plan.check(project_root())
        else:
            plan.write(project_root())
        return 0
    return 2
