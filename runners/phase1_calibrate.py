"""Phase 1, calibrate (spec/01_SPIKES_AND_STANDARDIZATION.md), per model role, at g = GAIN_BASELINE:

1. load the role's model and cut the calibration slice from Dataset A;
2. pass 1: mu and population sigma of u per (layer, unit), float64 accumulation;
3. pass 2: z = (u - mu) / (sigma + EPS); r_base per spike definition and layer
   (fraction of samples with v > TAU0);
4. r_star per target rate: r_base rescaled to mean r, clipped to [0, 1];
5. write calibration_stats.npz, calibration_slice.npz and rate_targets.json.
"""

from __future__ import annotations

import numpy as np
import torch

from canon import CANON
from critspec.data.from_config import calibration_slice
from critspec.errors import CheckFailed
from critspec.events.moments import MomentAccumulator
from critspec.events.rates import RateCounter, rate_targets
from critspec.events.spikes import count_sigma_clamped, standardize
from critspec.models.forward import forward_slice
from critspec.orchestrate import PhaseContext
from runners.common import load_role_model

EVENT = CANON.ENUM.LOG_EVENT
CHECK = CANON.ENUM.CHECK_ID


def run(ctx: PhaseContext) -> None:
    cal = ctx.config.pipeline.calibration
    batch_size = ctx.config.pipeline.runtime.batch_size
    loaded = load_role_model(ctx, ctx.model_role)
    ctx.run.model = loaded.info.to_record()
    n_layers, d_ff = loaded.info.n_layers, loaded.info.d_ff

    token_slice, slice_record = calibration_slice(ctx.config, loaded.tokenizer)
    ctx.run.dataset_slices.append(slice_record)
    ctx.run.log.event(EVENT.DATASET_LOADED, slice_record)
    input_ids = torch.from_numpy(token_slice.input_ids.astype(np.int64))

    samples = token_slice.n_windows * token_slice.seq_len * d_ff
    if samples < cal.min_cal_samples:
        raise CheckFailed(
            f"calibration slice has {samples} samples per layer, fewer than min_cal_samples "
            f"{cal.min_cal_samples}: use more or longer windows"
        )

    moments_acc = MomentAccumulator(n_layers, d_ff)
    forward_slice(loaded, input_ids, batch_size, cal.gain_baseline, moments_acc.update)
    moments = moments_acc.finalize()
    ctx.run.log.event(
        EVENT.CHECK, {"check_id": CHECK.NAN_CHECK, "passed": True, "layers": n_layers}
    )
    n_clamped = count_sigma_clamped(moments.sigma, cal.eps)
    ctx.run.log.event(
        EVENT.CHECK, {"check_id": CHECK.SIGMA_CLAMP, "n_sigma_clamped": n_clamped, "eps": cal.eps}
    )

    device = next(loaded.model.parameters()).device
    mu = torch.from_numpy(moments.mu).to(device)
    sigma = torch.from_numpy(moments.sigma).to(device)
    counter = RateCounter(n_layers, cal.spike_def_ids, cal.tau0)
    forward_slice(
        loaded,
        input_ids,
        batch_size,
        cal.gain_baseline,
        lambda layer, u: counter.update(layer, standardize(u, mu[layer], sigma[layer], cal.eps)),
    )
    r_base = counter.r_base()

    spike_defs = []
    for sd in cal.spike_def_ids:
        targets = []
        for rate in cal.target_rates:
            target = rate_targets(r_base[sd], rate, spike_def_id=sd)
            ctx.run.log.event(
                EVENT.CHECK,
                {
                    "check_id": CHECK.RATE_TARGET_CLIP,
                    "spike_def_id": sd,
                    "target_rate": rate,
                    "clipped": target.clipped,
                    "r_star_mean": float(target.r_star.mean()),
                },
            )
            targets.append(
                {"target_rate": rate, "r_star": target.r_star.tolist(), "clipped": target.clipped}
            )
        spike_defs.append(
            {
                "spike_def_id": sd,
                "r_base": r_base[sd].tolist(),
                "r_base_mean": float(r_base[sd].mean()),
                "targets": targets,
            }
        )

    ctx.run.write_npz("calibration_stats", {"mu": moments.mu, "sigma": moments.sigma})
    ctx.run.write_npz(
        "calibration_slice",
        {"window_index": token_slice.window_index, "input_ids": token_slice.input_ids},
    )
    ctx.run.write_json(
        "rate_targets",
        {
            "n_layers": n_layers,
            "d_ff": d_ff,
            "tau0": cal.tau0,
            "eps": cal.eps,
            "gain_baseline": cal.gain_baseline,
            "samples_per_layer": samples,
            "n_sigma_clamped": n_clamped,
            "spike_defs": spike_defs,
        },
    )
    ctx.run.summary.update(
        {
            "n_sigma_clamped": n_clamped,
            "samples_per_layer": samples,
            "r_base_mean": {sd["spike_def_id"]: sd["r_base_mean"] for sd in spike_defs},
        }
    )
