"""Phases 3, 4 and 5 on one model's real rasters, in one process (spec/08_TEST_PLAN.md).

On the benchmark profile (CANON.PROFILE.BENCH; CPU, fp32, fixed thread count):
  - Phase 3: extract_rasters over CANON.CONST.GAIN_GRID_DEFAULT on the raster slice,
    each gain paired with a bare forward timed just before it (bench/phase3_overhead.py);
  - Phase 4: the time-permutation and circular-shift nulls of those rasters, and the
    token-shuffle null, i.e. one more paired extraction on the shuffled slice;
  - Phase 5: `analyze` on the real rasters and nulls with the study's constants and
    CANON.CONST.BOOTSTRAP_REPS, then everything the Phase 5 runner writes after it
    (runners.phase5_analyze.write_outputs: avalanches and tables as Parquet and CSV,
    each validated against its contract, and the 7 figures as PNG and PDF) into a
    temporary run directory.
gstar comes from the calibration slice's gain grid (select_gstar), as in Phase 2.
Prints the avalanche counts and fit reasons of the analysis, then

  phase3_extraction_over_bare_forward_ratio  extraction / (gains x bare forward)
  phase4_shuffle_over_bare_forward_ratio     token-shuffle extraction / (gains x bare)
  phase5_seconds_per_condition               whole Phase 5 / conditions
  phase5_over_phase3_ratio                   whole Phase 5 / whole Phase 3 extraction

--profile adds the top of a cProfile of the whole Phase 5 (cumulative time).

    .venv/bin/python bench/phase3_phase5.py [--threads N] [--repeats 3] [--profile]
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path

import numpy as np
import torch
from phase3_overhead import (
    BENCH,
    bench_parser,
    extraction_setup,
    print_extraction,
    timed_extraction,
)
from phase5_analysis import bench_params

from canon import CANON
from critspec.analysis.avalanches import ADJACENCIES
from critspec.analysis.tables import AnalysisTables, analyze
from critspec.analysis.tail_fits import ALTERNATIVES
from critspec.events.gain_grid import metrics_frame
from critspec.events.null import (
    circular_shift_rasters,
    shuffle_interior_tokens,
    time_permute_rasters,
)
from critspec.events.spikes import SPIKE_DEF_IDS
from critspec.select.gstar import select_gstar
from critspec.spec.load import project_spec
from critspec.store.logs import PhaseLog
from critspec.store.run_store import RunBuilder
from runners.phase2_select_gstar import b_tot_by_gain
from runners.phase3_extract_rasters import condition_table, rate_rows
from runners.phase4_run_nulls import null_condition_table
from runners.phase5_analyze import write_outputs

NULL = CANON.ENUM.NULL_ID
NULL_IDS = [NULL.TIME_PERM, NULL.CIRCULAR_SHIFT, NULL.TOKEN_SHUFFLE]
PROFILE_LINES = 25
PROFILE_OWN = r"/(critspec|runners)/"


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def phase5_run(work_dir: Path, gains: list[float]) -> RunBuilder:
    """An open Phase 5 run in work_dir (never sealed): the runner's writers and contract
    checks, with the config sections the table contracts' coverage binds."""
    phase = project_spec().phases.by_id(CANON.CLI.SUBCOMMAND.PHASE5_ANALYZE)
    run_id = CANON.CLI.SUBCOMMAND.PHASE5_ANALYZE
    return RunBuilder(
        phase=phase,
        run_id=run_id,
        run_id_mode=CANON.ENUM.RUN_ID_MODE.CONTENT_HASH,
        final_dir=work_dir.with_name(work_dir.name + "_sealed"),
        work_dir=work_dir,
        config_doc={
            "calibration": {
                "spike_def_ids": list(SPIKE_DEF_IDS),
                "target_rates": list(BENCH.TARGET_LAYER_RATES),
            },
            "gain_grid": {"gains": gains},
            "nulls": {"null_ids": NULL_IDS},
            "analysis": {"adjacencies": list(ADJACENCIES), "tail_alternatives": list(ALTERNATIVES)},
        },
        model_role=CANON.ENUM.MODEL_ROLE.INSTRUCT,
        log=PhaseLog(work_dir / CANON.OUTPUT.LOG.PHASE5_ANALYZE, run_id),
    )


def print_analysis(tables: AnalysisTables, lattice_sites: int) -> None:
    """What the analysis found: avalanche counts per condition, fit and m_mr reasons."""
    av = tables.avalanches
    for adjacency, rows in av.groupby("adjacency", sort=True):
        per_cond = rows.groupby("cond_id").size()
        print(
            f"avalanches {adjacency}: {len(rows)} total; per condition min {per_cond.min()} "
            f"median {per_cond.median():g} max {per_cond.max()}; largest size "
            f"{rows['size'].max()} (lattice holds {lattice_sites} sites per sequence)"
        )
    for name, frame in (("crackling", tables.crackling), ("tail_fits", tables.tail_fits)):
        counts = frame["reason"].value_counts(dropna=False).sort_index()
        print(f"{name} reasons: {dict(counts.items())}")
    n_av = tables.crackling["n_avalanches"]
    print(f"crackling n_avalanches per fit min {n_av.min()} max {n_av.max()}")
    m_mr = tables.summary["m_mr_reason"].value_counts(dropna=False)
    print(f"m_mr reasons: {dict(m_mr.items())}")
    ident = tables.identifiability
    print(
        f"identifiable {int(ident['identifiable'].sum())}/{len(ident)}; "
        f"gstar at edge {int(ident['gstar_at_edge'].sum())}/{len(ident)}"
    )


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the whole Phase 5")
    args = parser.parse_args()

    with extraction_setup(args.threads) as b:
        loaded, gains, m, conds, grid = b.loaded, b.gains, b.calibration, b.conditions, b.grid
        raster_ids, tmp = b.raster_ids, b.tmp
        seq_id = np.arange(BENCH.N_WINDOWS, dtype=np.int64)  # synthetic windows: 0..N-1

        # Phase 3.
        p3 = timed_extraction(loaded, raster_ids, m, conds, args.repeats)
        print_extraction(p3, len(gains))
        A = p3.result.A

        # Phase 4.
        cond_keys = [(c.spike_def_id, c.target_rate, c.g) for c in conds]
        perm, perm_s = timed(time_permute_rasters, A, cond_keys, seq_id)
        shift, shift_s = timed(circular_shift_rasters, A, cond_keys, seq_id)
        print(f"phase4_time_perm_seconds {perm_s:.4f}")
        print(f"phase4_circular_shift_seconds {shift_s:.4f}")
        shuffled = torch.from_numpy(shuffle_interior_tokens(raster_ids.numpy(), seq_id))
        p4 = timed_extraction(loaded, shuffled, m, conds, args.repeats)
        print_extraction(p4, len(gains), prefix="phase4_shuffle_")
        null_A = np.concatenate([perm, shift, p4.result.A], axis=0)

        # Phase 5 inputs, as Phases 2-4 write them.
        metrics = metrics_frame(grid)
        choices = select_gstar(
            metrics,
            tie_tol_abs=CANON.CONST.GSTAR_TIE_TOL_ABS,
            gain_baseline=CANON.CONST.GAIN_BASELINE,
        )
        gstar = {(c.spike_def_id, c.target_rate): c.gstar for c in choices}
        gstar_doc = {
            "tie_tol_abs": CANON.CONST.GSTAR_TIE_TOL_ABS,
            "gains": list(gains),
            "conditions": [
                {**c.to_json(), "b_tot_by_gain": b_tot_by_gain(metrics, c, list(gains))}
                for c in choices
            ],
        }
        print(f"gstar {dict(sorted((f'{sd}@{r:g}', g) for (sd, r), g in gstar.items()))}")
        conditions = condition_table(conds, CANON.CONST.GAIN_BASELINE, gstar)
        rates = rate_rows(conds, p3.result.achieved_rate)
        null_conditions = null_condition_table(NULL_IDS, conds)
        params = bench_params(CANON.CONST.BOOTSTRAP_REPS, tuple(gains), gstar)
        rasters = {"A": A, "X": (A > 0).astype(np.uint8), "seq_id": seq_id}

        # Phase 5.
        run = phase5_run(tmp / "phase5", gains)
        run.work_dir.mkdir()
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        tables = analyze(
            A, rasters["X"], conditions, null_A, null_conditions, rates, seq_id, params
        )
        analyze_s = time.perf_counter() - started
        write_outputs(run, tables, rasters, conditions, rates, gstar_doc, params.cc_max)
        p5 = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()

        print_analysis(tables, BENCH.N_LAYERS * BENCH.SEQ_LEN_TOKENS)
        n_cond, n_gains = len(conds), len(gains)
        print(f"phase5 bootstrap_reps {CANON.CONST.BOOTSTRAP_REPS} (CANON.CONST.BOOTSTRAP_REPS)")
        print(f"phase5_analyze_seconds {analyze_s:.4f}")
        print(f"phase5_write_seconds {p5 - analyze_s:.4f} (tables, CSV and 7 figures)")
        print(f"phase5_seconds {p5:.4f} over {n_cond} conditions")
        print(f"phase3_seconds_per_gain {p3.extraction_seconds / n_gains:.4f}")
        if profiler is not None:
            stats = pstats.Stats(profiler).sort_stats(pstats.SortKey.CUMULATIVE)
            stats.print_stats(PROFILE_LINES)  # overall, then critspec's own functions
            stats.print_stats(PROFILE_OWN, PROFILE_LINES)
        print(f"phase3_extraction_over_bare_forward_ratio {p3.ratio:.4f}")
        print(f"phase4_shuffle_over_bare_forward_ratio {p4.ratio:.4f}")
        print(f"phase5_seconds_per_condition {p5 / n_cond:.4f}")
        print(f"phase5_over_phase3_ratio {p5 / p3.extraction_seconds:.4f}")


if __name__ == "__main__":
    main()
