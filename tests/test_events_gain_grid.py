"""run_gain_grid (streaming top-K) against the naive full-sort reference on a toy model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from canon import CANON
from critspec.errors import CheckFailed
from critspec.events.gain_grid import (
    MetricsRow,
    TauRow,
    metrics_frame,
    run_gain_grid,
    tau_frame,
)
from critspec.events.moments import MomentAccumulator
from critspec.events.rates import RateCounter, rate_targets
from critspec.events.reference import naive_gain_grid
from critspec.events.spikes import standardize

SPIKE_DEFS = (CANON.ENUM.SPIKE_DEF_ID.TWO_SIDED_ABS, CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS)
GAINS = (
    CANON.CONST.GAIN_GRID_DEFAULT[-1],
    CANON.CONST.GAIN_BASELINE,
    CANON.CONST.GAIN_GRID_DEFAULT[0],
)
TARGET_RATES = (0.01, 0.04)
N_LAYERS, D_FF, VOCAB, N_WINDOWS, SEQ_LEN, BATCH = 3, 24, 50, 7, 12, 3

DEVICES = [CANON.ENUM.DEVICE.CPU] + ([CANON.ENUM.DEVICE.CUDA] if torch.cuda.is_available() else [])


class ToyModel:
    """A deterministic residual stack: token embedding, causal mixing, gain on each block."""

    def __init__(self, device: str, quantize: bool = False) -> None:
        gen = torch.Generator().manual_seed(5)
        self.emb = torch.randn(VOCAB, D_FF, generator=gen).to(device)
        self.w = [
            (torch.randn(D_FF, D_FF, generator=gen) / math.sqrt(D_FF)).to(device)
            for _ in range(N_LAYERS)
        ]
        self.quantize = quantize

    def forward(self, ids: torch.Tensor, g: float, on_u) -> None:
        h = self.emb[ids]
        for layer, w in enumerate(self.w):
            prev = torch.cat((torch.zeros_like(h[:, :1]), h[:, :-1]), dim=1)
            u = torch.tanh((h + 0.5 * prev) @ w)
            if self.quantize:
                u = torch.round(u)  # massive ties: no tail quantile can match the rate
            on_u(layer, u.float())
            h = h + g * u


def _ids() -> torch.Tensor:
    return torch.randint(0, VOCAB, (N_WINDOWS, SEQ_LEN), generator=torch.Generator().manual_seed(9))


def _calibrate(model: ToyModel, ids: torch.Tensor, device: str):
    acc = MomentAccumulator(N_LAYERS, D_FF)
    with torch.inference_mode():
        model.forward(ids.to(device), CANON.CONST.GAIN_BASELINE, acc.update)
    m = acc.finalize()
    counter = RateCounter(N_LAYERS, SPIKE_DEFS, 1.5)
    with torch.inference_mode():
        model.forward(
            ids.to(device),
            CANON.CONST.GAIN_BASELINE,
            lambda layer, u: counter.update(
                layer, standardize(u, m.mu[layer], m.sigma[layer], CANON.CONST.EPS)
            ),
        )
    r_base = counter.r_base()
    r_star = {
        (sd, r): rate_targets(r_base[sd], r).r_star for sd in SPIKE_DEFS for r in TARGET_RATES
    }
    return m, r_star


def _kwargs(m, r_star, device: str) -> dict:
    return dict(
        mu=m.mu,
        sigma=m.sigma,
        eps=CANON.CONST.EPS,
        gains=GAINS,
        spike_def_ids=SPIKE_DEFS,
        r_star=r_star,
        rate_match_tol_abs=CANON.CONST.RATE_MATCH_TOL_ABS,
        null_id=CANON.ENUM.NULL_ID.TIME_PERM,
        batch_size=BATCH,
        device=device,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_streaming_grid_equals_naive_reference(device: str) -> None:
    model = ToyModel(device)
    ids = _ids()
    m, r_star = _calibrate(model, ids, device)
    progress: list[dict] = []
    got = run_gain_grid(
        model.forward, ids, **_kwargs(m, r_star, device), on_progress=progress.append
    )
    want = naive_gain_grid(model.forward, ids, **_kwargs(m, r_star, device))
    pd.testing.assert_frame_equal(metrics_frame(got), metrics_frame(want), check_exact=True)
    pd.testing.assert_frame_equal(tau_frame(got), tau_frame(want), check_exact=True)
    assert [p["g"] for p in progress] == [float(g) for g in GAINS]

    metrics = metrics_frame(got)
    n_cond = len(SPIKE_DEFS) * len(TARGET_RATES) * len(GAINS)
    assert len(metrics) == n_cond and len(tau_frame(got)) == n_cond * N_LAYERS
    keys = list(zip(metrics.spike_def_id, metrics.target_rate, metrics.g, strict=True))
    assert keys == sorted(keys)
    assert (metrics.achieved_rate_max_abs_err <= CANON.CONST.RATE_MATCH_TOL_ABS).all()
    assert (metrics.n_occupied > 0).all() and (metrics.n_events >= metrics.n_occupied).all()
    np.testing.assert_array_equal(metrics.delta_b_tot, metrics.b_tot - metrics.b_tot_perm)
    np.testing.assert_array_equal(metrics.b_tot, metrics.b_time + metrics.b_depth)


def test_frames_have_the_artifact_columns_and_dtypes() -> None:
    model = ToyModel(CANON.ENUM.DEVICE.CPU)
    ids = _ids()
    m, r_star = _calibrate(model, ids, CANON.ENUM.DEVICE.CPU)
    kwargs = _kwargs(m, r_star, CANON.ENUM.DEVICE.CPU) | {"gains": GAINS[:1]}
    result = run_gain_grid(model.forward, ids, **kwargs)
    metrics, taus = metrics_frame(result), tau_frame(result)
    assert list(metrics.columns) == [f for f in MetricsRow.__dataclass_fields__]
    assert list(taus.columns) == [f for f in TauRow.__dataclass_fields__]
    ints = {"n_sequences", "n_events", "n_occupied", "layer", "k", "n"}
    for frame in (metrics, taus):
        for col in frame.columns[1:]:
            assert str(frame[col].dtype) == ("int64" if col in ints else "float64"), col
    assert (metrics.n_sequences == N_WINDOWS).all()
    assert (taus.n == N_WINDOWS * SEQ_LEN * D_FF).all()


def test_tied_values_fail_rate_matching_naming_the_condition() -> None:
    cpu = CANON.ENUM.DEVICE.CPU
    ids = _ids()
    m, r_star = _calibrate(ToyModel(cpu), ids, cpu)
    tied = ToyModel(cpu, quantize=True)
    with pytest.raises(CheckFailed, match=r"rate match failed at g=.*layer \d+.*\|error\|"):
        run_gain_grid(tied.forward, ids, **_kwargs(m, r_star, cpu))


def test_non_finite_u_fails_naming_layer_and_gain() -> None:
    cpu = CANON.ENUM.DEVICE.CPU
    ids = _ids()
    model = ToyModel(cpu)
    m, r_star = _calibrate(model, ids, cpu)

    def broken(batch: torch.Tensor, g: float, on_u) -> None:
        model.forward(batch, g, lambda layer, u: on_u(layer, u / 0 if layer == 1 else u))

    with pytest.raises(CheckFailed, match="non-finite u at layer 1"):
        run_gain_grid(broken, ids, **_kwargs(m, r_star, cpu))


def test_missing_hook_call_fails() -> None:
    cpu = CANON.ENUM.DEVICE.CPU
    ids = _ids()
    model = ToyModel(cpu)
    m, r_star = _calibrate(model, ids, cpu)

    def skips_last_layer(batch: torch.Tensor, g: float, on_u) -> None:
        model.forward(batch, g, lambda layer, u: None if layer == N_LAYERS - 1 else on_u(layer, u))

    with pytest.raises(CheckFailed, match="once per layer and batch"):
        run_gain_grid(skips_last_layer, ids, **_kwargs(m, r_star, cpu))
