"""Coverage of Phase 5's nominal 95% intervals on synthetic rasters with known b_tot and chi
(spec/12_STATISTICS_AND_BOOTSTRAP.md, section 5), at each shipped profile's window count and
at the counts given: the studentized interval Phase 5 reports (small-sample levels, spec/12
section 3) beside the percentile one.

    .venv/bin/python bench/coverage_study.py [--sets 2000] [--windows 16 32 64 128]
"""

from __future__ import annotations

import argparse
import time

from canon import CANON
from critspec.analysis.selfcheck import coverage, shipped_window_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", type=int, default=CANON.CONST.SELFCHECK_COVERAGE_SETS_FULL)
    parser.add_argument("--windows", type=int, nargs="*", default=[])
    args = parser.parse_args()
    counts = sorted(set(shipped_window_counts()) | set(args.windows))
    print("N_windows  sets  b_tot_studentized  b_tot_percentile  chi_studentized  chi_percentile")
    for n in counts:
        start = time.perf_counter()
        c = coverage(n, args.sets)
        print(
            f"{n:9d}  {c.n_sets:4d}  {c.b_tot:17.3f}  {c.b_tot_percentile:16.3f}  "
            f"{c.chi:15.3f}  {c.chi_percentile:14.3f}   ({time.perf_counter() - start:.1f} s)"
        )


if __name__ == "__main__":
    main()
