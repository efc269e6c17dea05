"""What several runners do the same way: load the role's model and log it, check it is
the model Phase 1 calibrated, read the gstar table, and map pass tasks on the configured
executor (spec/06_MODELS_AND_HOOKS.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from canon import CANON
from critspec.data.tokenizer import tokenizer_sha256
from critspec.data.windows import TokenSlice, slice_sha256
from critspec.errors import DependencyError
from critspec.events.rasters import RasterCondition, RasterReducer, RasterResult, plan_rasters
from critspec.models.device import resolve_dtype
from critspec.models.from_config import load_entry
from critspec.models.loading import LoadedModel
from critspec.orchestrate import PhaseContext
from critspec.passes.consumers.base import Consumer
from critspec.passes.executors import open_executor
from critspec.passes.intervention import Intervention, default_intervention
from critspec.passes.task import ModelRef, PassResult, PassTask, reusing
from critspec.progress import GainProgress
from critspec.store.run_store import SealedRun


def load_role_model(ctx: PhaseContext, role: str) -> LoadedModel:
    device = torch.device(ctx.inv.device)
    dtype = resolve_dtype(ctx.inv.dtype, device)
    loaded = load_entry(ctx.config.model_entry(role), device, dtype)
    ctx.run.log.event(
        CANON.ENUM.LOG_EVENT.MODEL_LOADED, {"model_role": role, **loaded.info.to_record()}
    )
    return loaded


def check_model_is_calibrated(
    loaded: LoadedModel, calibration: SealedRun, mu_shape: tuple[int, ...]
) -> None:
    """Exit 3 unless the loaded weights are the ones Phase 1 calibrated, with mu [L, d_ff]."""
    calibrated = calibration.record["model"]["revision"]
    if loaded.info.revision != calibrated:
        raise DependencyError(
            f"model {loaded.info.model_id} is at revision {loaded.info.revision[:12]}…, but "
            f"Phase 1 run {calibration.run_id} calibrated {calibrated[:12]}…: the weights "
            "changed since calibration; re-run Phase 1"
        )
    shape = (loaded.info.n_layers, loaded.info.d_ff)
    if tuple(mu_shape) != shape:
        raise DependencyError(
            f"Phase 1 run {calibration.run_id} has mu of shape {list(mu_shape)}, "
            f"this model needs {list(shape)}: calibrate this model first"
        )


def check_calibration_slice(
    loaded: LoadedModel, calibration: SealedRun, slice_arrays: dict
) -> dict:
    """Exit 3 unless Phase 1's slice, rehashed under this model's tokenizer (and the
    corpus content hash Phase 1 recorded), is the slice Phase 1 recorded; its entry."""
    [p1_slice] = calibration.record["dataset_slices"]
    token_slice = TokenSlice(slice_arrays["window_index"], slice_arrays["input_ids"])
    recomputed = slice_sha256(
        token_slice, tokenizer_sha256(loaded.tokenizer), p1_slice.get("content_sha256")
    )
    if recomputed != p1_slice["slice_sha256"]:
        raise DependencyError(
            f"calibration slice hash {recomputed[:12]}… under this model's tokenizer differs "
            f"from Phase 1's {p1_slice['slice_sha256'][:12]}…: the tokenizer changed; "
            "re-run Phase 1"
        )
    return p1_slice


@contextmanager
def gain_progress(ctx: PhaseContext, n_gains: int, desc: str) -> Iterator[Callable[[dict], None]]:
    """An on_progress callback: one log event per gain, and on stderr a bar (terminal) or
    a line with the elapsed time (critspec.progress)."""
    role = f" [{ctx.model_role}]" if ctx.model_role else ""
    bar = GainProgress(n_gains, f"{ctx.inv.phase.id}{role} {desc}")

    def progress(info: dict) -> None:
        ctx.run.log.event(CANON.ENUM.LOG_EVENT.PROGRESS, info)
        bar.tick(info)

    try:
        yield progress
    finally:
        bar.close()


def pass_task(
    ctx: PhaseContext,
    loaded: LoadedModel,
    input_ids: np.ndarray,
    intervention: Intervention,
    consumers: tuple[Consumer, ...],
    row_lengths: np.ndarray | None = None,
) -> PassTask:
    """One pass of this phase's role model over input_ids [N, T] (keyed by the intervention);
    `row_lengths` for logits-only passes over padded rows (critspec.passes.engine.drive)."""
    runtime = ctx.config.pipeline.runtime
    return PassTask(
        key=intervention.key(),
        model=ModelRef(
            entry=ctx.config.model_entry(str(ctx.model_role)), revision=loaded.info.revision
        ),
        device=ctx.inv.device,
        dtype=ctx.inv.dtype,
        torch_threads=runtime.torch_threads,
        batch_size=runtime.batch_size,
        input_ids=np.ascontiguousarray(input_ids, dtype=np.int64),
        intervention=intervention,
        consumers=consumers,
        row_lengths=row_lengths,
    )


def executor_name(ctx: PhaseContext) -> str:
    """--executor, else runtime.executor of the config."""
    return ctx.inv.options.executor or ctx.config.pipeline.runtime.executor


def map_passes(
    ctx: PhaseContext,
    loaded: LoadedModel,
    tasks: list[PassTask],
    on_result: Callable[[PassResult], None],
) -> list[PassResult]:
    """The tasks run on the configured executor; results by key, fingerprints checked."""
    name = executor_name(ctx)
    entry = ctx.config.model_entry(str(ctx.model_role))
    with (
        reusing(entry, loaded),
        open_executor(
            name,
            runs_dir=ctx.inv.options.runs_dir,
            address=ctx.inv.options.ray_address,
            device=ctx.inv.device,
        ) as executor,
    ):
        results = executor.map(tasks, on_result)
    if results:
        ctx.run.log.event(
            CANON.ENUM.LOG_EVENT.PROGRESS,
            {"executor": name, "n_tasks": len(results), "fingerprint": results[0].fingerprint},
        )
    return results


def rasters_at_every_gain(
    ctx: PhaseContext,
    loaded: LoadedModel,
    input_ids: np.ndarray,
    stats: dict[str, np.ndarray],
    conditions: list[RasterCondition],
    desc: str,
) -> RasterResult:
    """Phase 2's tau applied to input_ids [N, T] for every condition, one batched pass
    per gain, planned here, mapped on the executor and reduced in gain order
    (spec/09_RASTERS.md, spec/10_NULLS.md)."""
    plan = plan_rasters(
        input_ids.shape,
        mu=stats["mu"],
        sigma=stats["sigma"],
        eps=ctx.config.pipeline.calibration.eps,
        conditions=conditions,
    )
    reducer = RasterReducer(plan)
    tasks = [
        pass_task(ctx, loaded, input_ids, default_intervention(g), (consumer,))
        for g, consumer in zip(plan.gains, plan.consumers, strict=True)
    ]
    index = {task.key: i for i, task in enumerate(tasks)}
    with gain_progress(ctx, len(tasks), desc) as progress:

        def reduce(result: PassResult) -> None:
            i = index[result.key]
            max_err = reducer.add(i, result.arrays[0])
            progress({"g": plan.gains[i], "seconds": result.seconds, "max_abs_rate_err": max_err})

        map_passes(ctx, loaded, tasks, reduce)
    return reducer.result()
