"""Phase 3 overhead benchmark (spec/08_TEST_PLAN.md), next to bench/phase2_overhead.py.

Prints, for the benchmark profile (CANON.PROFILE.BENCH) on CPU in fp32 with a fixed
thread count, in one process:
  - the bare forward time of the raster slice (same batch size, no hooks),
  - the extraction time over CANON.CONST.GAIN_GRID_DEFAULT (extract_rasters, both spike
    definitions and every target rate of the profile, with the tau of a gain grid run
    on a separate calibration slice), run gain by gain with each gain paired with a
    bare pass timed just before it, as the Phase 2 benchmark does,
and, as the last line, `phase3_extraction_over_bare_forward_ratio <extraction /
(n_gains * bare)>`, the median over `--repeats` of the paired sums.

    .venv/bin/python bench/phase3_overhead.py [--threads N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from phase2_overhead import BENCH, bench_ids, build_model, calibrate, grid_kwargs, time_bare

from canon import CANON
from critspec.events.gain_grid import GainGridResult, run_gain_grid, tau_frame
from critspec.events.moments import Moments
from critspec.events.rasters import (
    RasterCondition,
    RasterResult,
    extract_rasters,
    raster_conditions,
)
from critspec.models.forward import make_forward_fn
from critspec.models.loading import LoadedModel


def tau_conditions(
    loaded: LoadedModel, gains: list[float]
) -> tuple[Moments, list[RasterCondition], GainGridResult]:
    """Phases 1 and 2 in miniature on a calibration slice: every condition with its tau,
    and the gain grid they come from (its metrics give gstar)."""
    ids = bench_ids(loaded, BENCH.N_WINDOWS)
    m, r_star = calibrate(loaded, ids)
    grid = run_gain_grid(make_forward_fn(loaded), ids, **grid_kwargs(m, r_star, gains))
    return m, raster_conditions(tau_frame(grid), BENCH.N_LAYERS), grid


@dataclass(frozen=True)
class TimedExtraction:
    """Paired timings of extract_rasters gain by gain (medians over repeats) and the
    rasters of the last repeat, reassembled into the conditions' cond_id order."""

    bare_seconds: float
    extraction_seconds: float
    ratios: list[float]
    result: RasterResult

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def timed_extraction(
    loaded: LoadedModel,
    ids: torch.Tensor,
    m: Moments,
    conds: list[RasterCondition],
    repeats: int,
) -> TimedExtraction:
    """extract_rasters over every gain of conds, each gain paired with a bare pass timed
    just before it, as the Phase 2 benchmark does; a repeat's ratio is (sum of its
    per-gain extraction times) / (sum of its paired bare times)."""
    gains = sorted({c.g for c in conds})
    per_gain = {g: [c for c in conds if c.g == g] for g in gains}
    forward_fn = make_forward_fn(loaded)
    A = np.zeros((len(conds), ids.shape[0], BENCH.N_LAYERS, ids.shape[1]), dtype=np.uint16)
    achieved = np.zeros((len(conds), BENCH.N_LAYERS))
    ratios, extract_times, bare_times = [], [], []
    for _ in range(repeats):
        extract_sum = bare_sum = 0.0
        for g in gains:
            bare_sum += time_bare(loaded, ids, repeats=1)[0]
            started = time.perf_counter()
            part = extract_rasters(
                forward_fn,
                ids,
                mu=m.mu,
                sigma=m.sigma,
                eps=CANON.CONST.EPS,
                conditions=[dataclasses.replace(c, cond_id=i) for i, c in enumerate(per_gain[g])],
                batch_size=BENCH.BATCH_SIZE,
                device=CANON.ENUM.DEVICE.CPU,
            )
            extract_sum += time.perf_counter() - started
            rows = [c.cond_id for c in per_gain[g]]
            A[rows], achieved[rows] = part.A, part.achieved_rate
        extract_times.append(extract_sum)
        bare_times.append(bare_sum / len(gains))
        ratios.append(extract_sum / bare_sum)
    return TimedExtraction(
        bare_seconds=statistics.median(bare_times),
        extraction_seconds=statistics.median(extract_times),
        ratios=ratios,
        result=RasterResult(A=A, achieved_rate=achieved),
    )


def print_header(threads: int, conds: list[RasterCondition], gains: list[float]) -> None:
    print(f"profile: L={BENCH.N_LAYERS} hidden={BENCH.HIDDEN} d_ff={BENCH.D_FF}")
    print(f"raster slice: N={BENCH.N_WINDOWS} T={BENCH.SEQ_LEN_TOKENS} batch={BENCH.BATCH_SIZE}")
    print(f"threads {threads}; conditions {len(conds)} over {len(gains)} gains")


def print_extraction(t: TimedExtraction, n_gains: int, prefix: str = "") -> None:
    print(f"{prefix}bare_forward_seconds {t.bare_seconds:.4f}")
    print(f"{prefix}extraction_seconds {t.extraction_seconds:.4f} over {n_gains} gains")
    print(f"{prefix}extraction_seconds_per_gain {t.extraction_seconds / n_gains:.4f}")
    print(f"{prefix}extraction_ratio_per_repeat {' '.join(f'{r:.4f}' for r in t.ratios)}")


def bench_parser(description: str) -> argparse.ArgumentParser:
    """The flags every extraction benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--threads", type=int, default=BENCH.THREADS, help="torch intra-op threads (fixed)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="bracketed extraction runs")
    return parser


@dataclass(frozen=True)
class ExtractionSetup:
    """The bench model, its calibration and gain grid, and the raster slice's windows."""

    loaded: Any
    gains: list[float]
    calibration: Any
    conditions: list
    grid: Any
    raster_ids: Any
    tmp: Path


@contextmanager
def extraction_setup(threads: int) -> Iterator[ExtractionSetup]:
    """Fixed threads and deterministic kernels, the bench model in a temporary cache, tau
    from a gain grid on the calibration slice, the header printed."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = build_model(Path(tmp))
        gains = [float(g) for g in CANON.CONST.GAIN_GRID_DEFAULT]
        m, conds, grid = tau_conditions(loaded, gains)
        raster_ids = bench_ids(loaded, BENCH.N_WINDOWS, CANON.ENUM.SLICE_NAME.RASTERS)
        print_header(threads, conds, gains)
        yield ExtractionSetup(loaded, gains, m, conds, grid, raster_ids, Path(tmp))


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args()
    with extraction_setup(args.threads) as b:
        t = timed_extraction(b.loaded, b.raster_ids, b.calibration, b.conditions, args.repeats)
        print_extraction(t, len(b.gains))
        print(f"phase3_extraction_over_bare_forward_ratio {t.ratio:.4f}")


if __name__ == "__main__":
    main()
