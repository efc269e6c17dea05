"""Phase 6 benchmark (spec/08_TEST_PLAN.md "bench/phase6.py"), next to the Phase 2 and 3 ones.

Prints, for the benchmark profile (CANON.PROFILE.BENCH) on CPU in fp32 with a fixed
thread count, in one process:
  - a Dataset B pass (the lattice consumer of every (spike definition, target rate) at
    g = GAIN_BASELINE plus the next-token NLL consumer) against a bare forward of the same
    windows and batch plan timed just before it; the line
    `phase6_b_pass_over_bare_forward_ratio` is the median over repeats (target <= 1.10);
  - four-option questions with single-token labels (the label regime) scored on the engine
    with one sequence per question against one sequence per option; the line
    `phase6_mc_questions_per_second_shared_over_per_option` (target >= 3).

    .venv/bin/python bench/phase6.py [--threads N] [--repeats 3]
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from phase2_overhead import BENCH, time_bare
from phase3_overhead import bench_parser, extraction_setup

from canon import CANON
from critspec.data.mc import synthetic_cloze_questions
from critspec.events.rasters import plan_rasters
from critspec.mc.consumer import score_in_process
from critspec.mc.encode import encode_options
from critspec.mc.prompts import option_requests
from critspec.passes.consumers.nll import NllConsumer
from critspec.passes.engine import drive, model_forward
from critspec.passes.intervention import default_intervention

N_QUESTIONS = 64
N_CHOICES = 4


def b_pass_ratio(b, repeats: int) -> list[float]:
    baseline = CANON.CONST.GAIN_BASELINE
    conds = [c for c in b.conditions if c.g == baseline]
    conds = [type(c)(**{**vars(c), "cond_id": i}) for i, c in enumerate(conds)]
    plan = plan_rasters(
        tuple(b.raster_ids.shape),
        mu=b.calibration.mu,
        sigma=b.calibration.sigma,
        eps=CANON.CONST.EPS,
        conditions=conds,
    )
    [lattice] = plan.consumers
    ratios = []
    for _ in range(repeats):
        bare = time_bare(b.loaded, b.raster_ids, repeats=1)[0]
        started = time.perf_counter()
        drive(
            model_forward(b.loaded),
            b.raster_ids,
            n_layers=BENCH.N_LAYERS,
            d_ff=BENCH.D_FF,
            batch_size=BENCH.BATCH_SIZE,
            intervention=default_intervention(baseline),
            consumers=(lattice, NllConsumer()),
            device=CANON.ENUM.DEVICE.CPU,
        )
        ratios.append((time.perf_counter() - started) / bare)
        print(f"b_pass_seconds {time.perf_counter() - started:.4f} bare_seconds {bare:.4f}")
    return ratios


def mc_rates(b, repeats: int) -> tuple[float, float]:
    questions = synthetic_cloze_questions(N_QUESTIONS, N_CHOICES, seed=BENCH.N_WINDOWS)
    tok = b.loaded.tokenizer
    encoded = [
        encode_options(
            tok, option_requests(q, CANON.ENUM.MC_REGIME.LABEL), BENCH.SEQ_LEN_TOKENS, ""
        )
        for q in questions
    ]
    iv = default_intervention(CANON.CONST.GAIN_BASELINE)
    rates: dict[bool, list[float]] = {True: [], False: []}
    scores = {}
    for _ in range(repeats):
        for shared in (False, True):
            started = time.perf_counter()
            scores[shared] = score_in_process(
                b.loaded, encoded, BENCH.BATCH_SIZE, iv, share_context=shared
            )
            rates[shared].append(N_QUESTIONS / (time.perf_counter() - started))
    worst = max(
        float(np.abs(a.loglik - c.loglik).max())
        for a, c in zip(scores[True], scores[False], strict=True)
    )
    print(f"mc_max_abs_loglik_diff_shared_vs_per_option {worst:.2e}")
    return statistics.median(rates[True]), statistics.median(rates[False])


def main() -> None:
    args = bench_parser(__doc__.splitlines()[0]).parse_args()
    with extraction_setup(args.threads) as b:
        ratios = b_pass_ratio(b, args.repeats)
        shared, per_option = mc_rates(b, args.repeats)
    print(f"mc_questions_per_second shared {shared:.1f} per_option {per_option:.1f}")
    print(f"phase6_mc_questions_per_second_shared_over_per_option {shared / per_option:.2f}")
    print(f"phase6_b_pass_over_bare_forward_ratio {statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
