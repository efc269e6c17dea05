"""Phase 2 overhead benchmark (spec/08_TEST_PLAN.md).

Prints, for the benchmark profile (CANON.PROFILE.BENCH) on CPU in fp32 with a
fixed thread count, in one process:
  - the bare forward time of the slice (same batch size, no hooks, inference mode),
  - the gain-grid time over CANON.CONST.GAIN_GRID_DEFAULT (run_gain_grid, both
    spike definitions, every target rate of the profile), run gain by gain with each
    gain paired with a bare pass timed just before it (so the per-call set-up is
    counted once per gain, and machine drift hits both sides of a pair alike),
  - the naive full-sort reference's time per gain,
  - the peak resident memory added by the gain grid (two gains) at N and 2N windows,
    for run_gain_grid and for the naive reference, each in a fresh subprocess: the
    kernel's peak-RSS mark is reset right before the grid (Linux clear_refs) and
    read after it; next to it, the state the streaming design retains (top-K
    buffers + one lattice) and the peak itself (children start from different
    RSS). The forward's own activations are included: they depend on the batch
    size, not on N,
  - `ray_task_overhead_seconds`: per pass task on a local Ray cluster
    (spec/06_MODELS_AND_HOOKS.md §7), the wall time of mapping one gain's task minus the
    pass time the worker measured (task start, argument and result transfer), the
    median over the grid's gains after a warm-up task that loads the model, next to
    that pass time (needs the `distributed` extra; `--no-ray` skips it),
and, as the last line, `gain_grid_over_bare_forward_ratio <grid / (n_gains * bare)>`,
the median over `--repeats` of the paired sums.

    .venv/bin/python bench/phase2_overhead.py [--threads N] [--repeats 3] [--naive-gains 2]
        [--shape LAYERS HIDDEN D_FF HEADS --no-rss --no-ray]

The scan's cost grows with d_ff per token and layer, the forward's with hidden * (hidden +
d_ff): `--shape` measures the ratio lines at another model shape (e.g. a real model's
hidden and d_ff on a few layers; the ratio does not depend on the layer count).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from canon import CANON
from critspec.events.gain_grid import run_gain_grid
from critspec.events.moments import MomentAccumulator, Moments
from critspec.events.rates import RateCounter, rate_targets
from critspec.events.reference import naive_gain_grid
from critspec.events.spikes import SPIKE_DEF_IDS, standardize
from critspec.events.tail_quantile import k_for_rate
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.models.forward import forward_slice, make_forward_fn
from critspec.models.loading import LoadedModel, load_model
from critspec.seeding import derive_seed

BENCH = CANON.PROFILE.BENCH
BARE_REPEATS = 2
BYTES_PER_TOPK_ENTRY = 4 + 8  # float32 value + int64 position


BENCH_SHAPE = (BENCH.N_LAYERS, BENCH.HIDDEN, BENCH.D_FF, BENCH.N_HEADS)


def build_model(cache_root: Path, shape: tuple[int, int, int, int] = BENCH_SHAPE) -> LoadedModel:
    n_layers, hidden, d_ff, n_heads = shape
    defn = EmbeddedModelDef(
        n_layers=n_layers,
        hidden=hidden,
        d_ff=d_ff,
        n_heads=n_heads,
        max_positions=BENCH.SEQ_LEN_TOKENS,
        seed=CANON.MODEL.EMBEDDED_INSTRUCT.SEED,
    )
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        device=torch.device(CANON.ENUM.DEVICE.CPU),
        dtype=torch.float32,
        local_dir=materialize(defn, cache_root),
    )


def bench_ids(loaded: LoadedModel, n_windows: int, *keys: object) -> torch.Tensor:
    """Random token windows seeded by n_windows and keys (other keys: another slice)."""
    seed = derive_seed("bench_phase2_overhead", n_windows, *keys)
    gen = torch.Generator().manual_seed(seed)
    vocab = loaded.model.config.vocab_size
    return torch.randint(0, vocab, (n_windows, BENCH.SEQ_LEN_TOKENS), generator=gen)


def calibrate(loaded: LoadedModel, ids: torch.Tensor) -> tuple[Moments, dict]:
    """Phase 1 in miniature: moments, then baseline rates and r_star per target rate."""
    n_layers, d_ff = loaded.info.n_layers, loaded.info.d_ff
    acc = MomentAccumulator(n_layers, d_ff)
    forward_slice(loaded, ids, BENCH.BATCH_SIZE, CANON.CONST.GAIN_BASELINE, acc.update)
    m = acc.finalize()
    counter = RateCounter(n_layers, SPIKE_DEF_IDS, CANON.CONST.TAU0_BASELINE)

    def count(layer: int, u: torch.Tensor) -> None:
        counter.update(layer, standardize(u, m.mu[layer], m.sigma[layer], CANON.CONST.EPS))

    forward_slice(loaded, ids, BENCH.BATCH_SIZE, CANON.CONST.GAIN_BASELINE, count)
    r_base = counter.r_base()
    r_star = {
        (sd, float(r)): rate_targets(r_base[sd], r, spike_def_id=sd).r_star
        for sd in SPIKE_DEF_IDS
        for r in BENCH.TARGET_LAYER_RATES
    }
    return m, r_star


def grid_kwargs(m: Moments, r_star: dict, gains) -> dict:
    return dict(
        mu=m.mu,
        sigma=m.sigma,
        eps=CANON.CONST.EPS,
        gains=gains,
        spike_def_ids=SPIKE_DEF_IDS,
        r_star=r_star,
        rate_match_tol_abs=CANON.CONST.RATE_MATCH_TOL_ABS,
        null_id=CANON.ENUM.NULL_ID.TIME_PERM,
        batch_size=BENCH.BATCH_SIZE,
        device=CANON.ENUM.DEVICE.CPU,
    )


def time_bare(loaded: LoadedModel, ids: torch.Tensor, repeats: int = BARE_REPEATS) -> list[float]:
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            started = time.perf_counter()
            for start in range(0, ids.shape[0], BENCH.BATCH_SIZE):
                loaded.model(input_ids=ids[start : start + BENCH.BATCH_SIZE], use_cache=False)
            times.append(time.perf_counter() - started)
    return times


def retained_bytes(r_star: dict, n_windows: int) -> int:
    """Top-K buffers (K = max k + 1 per spike definition and layer) plus one A lattice."""
    n = n_windows * BENCH.SEQ_LEN_TOKENS * BENCH.D_FF
    total = 0
    for sd in SPIKE_DEF_IDS:
        for layer in range(BENCH.N_LAYERS):
            k = max(k_for_rate(rs[layer], n) for (s, _), rs in r_star.items() if s == sd)
            total += (k + 1) * BYTES_PER_TOPK_ENTRY
    return total + n_windows * BENCH.N_LAYERS * BENCH.SEQ_LEN_TOKENS * np.dtype(np.uint16).itemsize


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (clear_refs 5) and return the current RSS in bytes.

    Loading transformers and the model sets a high peak before the grid starts, so the
    process-lifetime ru_maxrss would hide what the grid itself adds.
    """
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def child(cache_root: Path, n_windows: int, naive: bool, n_gains: int) -> None:
    """One fresh process: peak RSS added by a short gain grid on n_windows windows."""
    loaded = build_model(cache_root)
    ids = bench_ids(loaded, n_windows)
    m, r_star = calibrate(loaded, ids)
    gains = CANON.CONST.GAIN_GRID_DEFAULT[:n_gains]
    grid = naive_gain_grid if naive else run_gain_grid
    before = reset_peak_rss()
    grid(make_forward_fn(loaded), ids, **grid_kwargs(m, r_star, gains))
    after = peak_rss()
    doc = {"before": before, "after": after, "retained": retained_bytes(r_star, n_windows)}
    print(json.dumps(doc))


def run_child(cache_root: Path, threads: int, n_windows: int, naive: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n_windows), "--cache", str(cache_root)]
    cmd += ["--threads", str(threads)] + (["--naive"] if naive else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def ray_overhead(cache_root: Path, threads: int, m: Moments, r_star: dict) -> str:
    """The `ray_task_overhead_seconds` line (see the module docstring)."""
    import os

    from critspec.passes.executors import ray_available

    if not ray_available():
        extra = CANON.CONST.DISTRIBUTED_EXTRA
        return f"ray_task_overhead_seconds nan (ray not installed: pip install -e '{extra}')"
    from critspec.config.schema import ModelEntry
    from critspec.events.gain_grid import plan_gain_grid
    from critspec.passes.executors import open_executor, session
    from critspec.passes.intervention import default_intervention
    from critspec.passes.task import ModelRef, PassTask

    # Workers materialize the same embedded model into the same cache (inherited env).
    os.environ[CANON.PATH.CACHE_DIR_ENV] = str(cache_root)
    loaded = build_model(cache_root)
    ids = bench_ids(loaded, BENCH.N_WINDOWS).numpy()
    entry = ModelEntry(
        SOURCE=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        ARCH=CANON.MODEL.EMBEDDED_INSTRUCT.ARCH,
        N_LAYERS=BENCH.N_LAYERS,
        HIDDEN=BENCH.HIDDEN,
        D_FF=BENCH.D_FF,
        N_HEADS=BENCH.N_HEADS,
        MAX_POSITIONS=BENCH.SEQ_LEN_TOKENS,
        SEED=CANON.MODEL.EMBEDDED_INSTRUCT.SEED,
        MATERIALIZER=CANON.MODEL.EMBEDDED_INSTRUCT.MATERIALIZER,
    )
    gains = CANON.CONST.GAIN_GRID_DEFAULT
    plan = plan_gain_grid(
        ids.shape,
        mu=m.mu,
        sigma=m.sigma,
        eps=CANON.CONST.EPS,
        gains=gains,
        spike_def_ids=SPIKE_DEF_IDS,
        r_star=r_star,
    )

    def task(g: float) -> PassTask:
        return PassTask(
            key=(g,),
            model=ModelRef(entry=entry, revision=loaded.info.revision),
            device=CANON.ENUM.DEVICE.CPU,
            dtype=CANON.ENUM.DTYPE.FP32,
            torch_threads=threads,
            batch_size=BENCH.BATCH_SIZE,
            input_ids=ids,
            intervention=default_intervention(g),
            consumers=(plan.consumer,),
        )

    overheads, passes = [], []
    with tempfile.TemporaryDirectory(dir="/tmp") as runs:
        with session(CANON.ENUM.EXECUTOR.RAY, runs_dir=Path(runs)):
            with open_executor(CANON.ENUM.EXECUTOR.RAY, runs_dir=Path(runs)) as ex:
                ex.map([task(CANON.CONST.GAIN_BASELINE)])  # warm-up: the worker loads the model
                for g in gains:
                    started = time.perf_counter()
                    [result] = ex.map([task(g)])
                    overheads.append(time.perf_counter() - started - result.seconds)
                    passes.append(result.seconds)
    return (
        f"ray_task_overhead_seconds {statistics.median(overheads):.4f} "
        f"(pass {statistics.median(passes):.4f} s per task, {len(gains)} tasks, local cluster)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=BENCH.THREADS, help="torch intra-op threads (fixed)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="bracketed grid runs")
    parser.add_argument("--naive-gains", type=int, default=2, help="gains timed for the naive ref")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray overhead line")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory children")
    parser.add_argument(
        "--shape",
        type=int,
        nargs=4,
        metavar=("LAYERS", "HIDDEN", "D_FF", "HEADS"),
        default=list(BENCH_SHAPE),
        help="model shape of the ratio lines (default: the benchmark profile's); another "
        "shape needs --no-rss --no-ray",
    )
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if shape != BENCH_SHAPE and not (args.no_rss and args.no_ray):
        parser.error("--shape other than the benchmark profile's needs --no-rss --no-ray")
    if min(shape) < 1 or shape[1] % shape[3]:
        given = " ".join(map(str, shape))
        parser.error(f"--shape {given}: positive sizes, HIDDEN divisible by HEADS")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if args.child is not None:
        child(args.cache, args.child, args.naive, n_gains=2)
        return

    with tempfile.TemporaryDirectory() as tmp:
        cache_root = Path(tmp)
        loaded = build_model(cache_root, shape)
        ids = bench_ids(loaded, BENCH.N_WINDOWS)
        print(f"profile: L={shape[0]} hidden={shape[1]} d_ff={shape[2]} heads={shape[3]}")
        print(f"slice: N={BENCH.N_WINDOWS} T={BENCH.SEQ_LEN_TOKENS} batch={BENCH.BATCH_SIZE}")
        print(f"threads {args.threads}")
        m, r_star = calibrate(loaded, ids)
        gains = CANON.CONST.GAIN_GRID_DEFAULT
        # Side by side: the grid is run gain by gain, each gain paired with a bare pass
        # timed right before it, so this shared machine's drifts hit both alike. A repeat's
        # ratio is (sum of its per-gain grid times) / (sum of its paired bare times), i.e.
        # grid time / (n_gains x bare time); the median over repeats is reported.
        ratios, grid_times, bare_times = [], [], []
        for _ in range(args.repeats):
            grid_sum = bare_sum = 0.0
            for g in gains:
                bare_sum += time_bare(loaded, ids, repeats=1)[0]
                started = time.perf_counter()
                run_gain_grid(make_forward_fn(loaded), ids, **grid_kwargs(m, r_star, [g]))
                grid_sum += time.perf_counter() - started
            grid_times.append(grid_sum)
            bare_times.append(bare_sum / len(gains))
            ratios.append(grid_sum / bare_sum)
        print(f"bare_forward_seconds {statistics.median(bare_times):.4f}")
        print(f"gain_grid_seconds {statistics.median(grid_times):.4f} over {len(gains)} gains")
        print(f"gain_grid_seconds_per_gain {statistics.median(grid_times) / len(gains):.4f}")
        print(f"gain_grid_ratio_per_repeat {' '.join(f'{r:.4f}' for r in ratios)}")
        bare = statistics.median(bare_times)

        naive_gains = gains[: args.naive_gains]
        started = time.perf_counter()
        naive_gain_grid(make_forward_fn(loaded), ids, **grid_kwargs(m, r_star, naive_gains))
        naive_per_gain = (time.perf_counter() - started) / len(naive_gains)
        print(f"naive_reference_seconds_per_gain {naive_per_gain:.4f}")
        print(f"naive_reference_over_bare_forward_ratio {naive_per_gain / bare:.4f}")

        for n_windows in () if args.no_rss else (BENCH.N_WINDOWS, 2 * BENCH.N_WINDOWS):
            for naive in (False, True):
                r = run_child(cache_root, args.threads, n_windows, naive)
                name = "naive" if naive else "grid"
                print(
                    f"{name}_peak_rss_added_mib N={n_windows} {mib(r['after'] - r['before'])} "
                    f"(top-K + lattice bound {mib(r['retained'])} MiB; "
                    f"rss before the grid {mib(r['before'])} MiB, peak {mib(r['after'])} MiB)"
                )

        if not args.no_ray:
            print(ray_overhead(cache_root, args.threads, m, r_star), flush=True)
        print(f"gain_grid_over_bare_forward_ratio {statistics.median(ratios):.4f}")


if __name__ == "__main__":
    main()
