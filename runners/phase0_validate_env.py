"""Phase 0, validate the environment (spec/06_MODELS_AND_HOOKS.md), for every model role:

versions and determinism flags recorded; the model loads fully on the requested
device; the tokenizer loads; the hooked u equals an independent recomputation
from the MLP input within U_HOOK_MATCH_TOL_ABS; logits at g = GAIN_BASELINE are
bit-identical to the unhooked model and change at the probe gain; the slice
hash is the same when the slice is cut twice. Writes env_report.json, prints a
table, and fails (exit 2) if any check failed, keeping the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from canon import CANON
from critspec.data.from_config import calibration_slice
from critspec.errors import CheckFailed
from critspec.models.adapters import recompute_u
from critspec.models.forward import logits
from critspec.models.hooks import capture_mlp_inputs, capture_u
from critspec.models.loading import LoadedModel
from critspec.orchestrate import PhaseContext
from critspec.runtime import determinism_flags, package_versions
from runners.common import load_role_model

CHECK = CANON.ENUM.CHECK_ID


@dataclass(frozen=True)
class Outcome:
    check_id: str
    model_role: str | None
    passed: bool
    value: float | None
    tolerance: float | None
    detail: str


def hook_u_max_abs_diff(loaded: LoadedModel, input_ids: torch.Tensor) -> float:
    """Largest |u_hook - u_recomputed| over every layer, token and unit."""
    captured_u: dict[int, torch.Tensor] = {}
    mlp_inputs: dict[int, torch.Tensor] = {}
    device = next(loaded.model.parameters()).device
    with (
        torch.inference_mode(),
        capture_u(loaded.sites, lambda layer, u: captured_u.__setitem__(layer, u)),
        capture_mlp_inputs(loaded.sites, lambda layer, h: mlp_inputs.__setitem__(layer, h)),
    ):
        loaded.model(input_ids=input_ids.to(device), use_cache=False)
        worst = 0.0
        for layer in range(loaded.sites.n_layers):
            again = recompute_u(loaded.sites, layer, mlp_inputs[layer])
            worst = max(worst, float((captured_u[layer] - again).abs().max()))
    return worst


def check_role(ctx: PhaseContext, role: str) -> tuple[list[Outcome], dict]:
    p0 = ctx.config.pipeline.phase0
    baseline = ctx.config.pipeline.calibration.gain_baseline
    out: list[Outcome] = []
    loaded = load_role_model(ctx, role)
    info = loaded.info
    out.append(
        Outcome(
            CHECK.MODEL_LOAD,
            role,
            True,
            None,
            None,
            f"{info.model_id} ({info.model_type}) fully on {info.device} as {info.dtype}",
        )
    )
    probe = loaded.tokenizer(["tokenizer probe"], add_special_tokens=False)["input_ids"]
    out.append(
        Outcome(
            CHECK.TOKENIZER_LOAD,
            role,
            len(probe[0]) > 0,
            None,
            None,
            f"vocabulary of {len(loaded.tokenizer)} tokens",
        )
    )

    token_slice, record = calibration_slice(ctx.config, loaded.tokenizer)
    again, record_again = calibration_slice(ctx.config, loaded.tokenizer)
    stable = record["slice_sha256"] == record_again["slice_sha256"] and np.array_equal(
        token_slice.input_ids, again.input_ids
    )
    out.append(Outcome(CHECK.SLICE_HASH_STABLE, role, stable, None, None, record["slice_sha256"]))
    ctx.run.log.event(CANON.ENUM.LOG_EVENT.DATASET_LOADED, {"model_role": role, **record})
    if record not in ctx.run.dataset_slices:
        ctx.run.dataset_slices.append(record)

    ids = torch.from_numpy(token_slice.input_ids[: p0.check_windows].astype(np.int64))
    diff = hook_u_max_abs_diff(loaded, ids)
    tol = p0.u_hook_match_tol_abs
    out.append(
        Outcome(
            CHECK.HOOK_U_MATCH,
            role,
            diff <= tol,
            diff,
            tol,
            f"{loaded.sites.n_layers} layers, {ids.shape[0]} windows",
        )
    )

    plain = logits(loaded, ids)
    at_baseline = logits(loaded, ids, baseline)
    identical = torch.equal(plain, at_baseline)
    out.append(
        Outcome(
            CHECK.GAIN_IDENTITY,
            role,
            identical,
            None,
            None,
            f"g = {baseline}: logits bit-identical to the unhooked model",
        )
    )
    changed = float((logits(loaded, ids, p0.probe_gain) - plain).abs().max())
    out.append(
        Outcome(
            CHECK.GAIN_CHANGES,
            role,
            changed > 0,
            changed,
            None,
            f"g = {p0.probe_gain}: max |delta logit|",
        )
    )
    model_row = {
        "model_role": role,
        "model_type": info.model_type,
        "arch_family": info.arch_family,
        "n_layers": info.n_layers,
        "d_ff": info.d_ff,
        "revision": info.revision,
        "dtype": info.dtype,
    }
    return out, model_row


def print_table(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        value = "" if o.value is None else f" value={o.value:.3g}"
        tol = "" if o.tolerance is None else f" tol={o.tolerance:.3g}"
        print(
            f"{'PASS' if o.passed else 'FAIL'}  {o.model_role or '-':9} {o.check_id:32}"
            f"{value}{tol}  {o.detail}"
        )


def run(ctx: PhaseContext) -> None:
    flags = determinism_flags()
    outcomes = [
        Outcome(
            CHECK.VERSIONS,
            None,
            True,
            None,
            None,
            ", ".join(f"{k} {v}" for k, v in package_versions().items()),
        ),
        Outcome(
            CHECK.DETERMINISM,
            None,
            bool(flags["torch_deterministic_algorithms"])
            and not flags["tf32_matmul"]
            and not flags["tf32_cudnn"],
            None,
            None,
            f"deterministic algorithms, TF32 off, {flags['torch_threads']} threads",
        ),
    ]
    models = []
    for binding in ctx.config.models.models:
        role_outcomes, row = check_role(ctx, binding.role)
        outcomes += role_outcomes
        models.append(row)
    for o in outcomes:
        ctx.run.log.event(CANON.ENUM.LOG_EVENT.CHECK, asdict(o))
    print_table(outcomes)
    all_passed = all(o.passed for o in outcomes)
    ctx.run.write_json(
        "env_report",
        {"all_passed": all_passed, "checks": [asdict(o) for o in outcomes], "models": models},
    )
    ctx.run.summary["all_passed"] = all_passed
    if not all_passed:
        failed = ", ".join(f"{o.check_id}[{o.model_role or '-'}]" for o in outcomes if not o.passed)
        raise CheckFailed(f"Phase 0 checks failed: {failed}; see the report in the failed run")
