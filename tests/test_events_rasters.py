"""extract_rasters against Phase 2 and against a direct numpy thresholding of every u.

On the embedded model's calibration slice, Phase 2's own tau must give back Phase 2's
lattice (its branching and event counts) and its achieved rates exactly; on other
windows and arbitrary thresholds, the counts must equal v > tau counted in numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from canon import CANON
from critspec.config.resolve import load_config
from critspec.data.from_config import calibration_slice
from critspec.data.sources import load_texts
from critspec.data.windows import check_disjoint, sample_heldout_windows, tokenize_concat
from critspec.errors import CheckFailed, ConfigError
from critspec.events.branching import branching
from critspec.events.gain_grid import run_gain_grid, tau_frame
from critspec.events.moments import MomentAccumulator
from critspec.events.rasters import (
    RasterCondition,
    extract_rasters,
    float32_floor,
    raster_conditions,
)
from critspec.events.rates import RateCounter, rate_targets
from critspec.events.spikes import standardize
from critspec.models.forward import forward_slice, make_forward_fn
from critspec.models.from_config import load_entry
from critspec.paths import project_root

SD = CANON.ENUM.SPIKE_DEF_ID
CPU = CANON.ENUM.DEVICE.CPU
EPS = CANON.CONST.EPS
CONFIG = project_root() / CANON.PATH.CONFIG_PIPELINE
# The module's fixture loads the model and runs Phases 1 and 2: build it on one worker only.
pytestmark = pytest.mark.xdist_group("events_rasters")
DEVICES = [CPU] + ([CANON.ENUM.DEVICE.CUDA] if torch.cuda.is_available() else [])


def captured_u(loaded, ids: torch.Tensor, g: float, batch: int) -> np.ndarray:  # noqa: ANN001
    """Every u of the slice at gain g: float32 [L, N, T, d_ff]."""
    per_layer: dict[int, list[np.ndarray]] = {}
    forward_slice(
        loaded,
        ids,
        batch,
        g,
        lambda layer, u: per_layer.setdefault(layer, []).append(u.cpu().numpy().copy()),
    )
    return np.stack([np.concatenate(per_layer[layer]) for layer in sorted(per_layer)])


def numpy_counts(
    u: np.ndarray, mu: np.ndarray, sigma: np.ndarray, eps: float, sd: str, tau: np.ndarray
) -> np.ndarray:
    """A [N, L, T] by the definition: z in float32, v > tau compared in float64."""
    z = (u - mu[:, None, None, :]) / (sigma[:, None, None, :] + np.float32(eps))
    v = np.abs(z) if sd == SD.TWO_SIDED_ABS else z
    above = v.astype(np.float64) > np.asarray(tau, dtype=np.float64)[:, None, None, None]
    return above.sum(axis=3).transpose(1, 0, 2)


@pytest.fixture(scope="module")
def embedded():  # noqa: ANN201
    """Model, calibration slice, Phase 1 moments and r_star, Phase 2's result on that slice."""
    config = load_config(CONFIG)
    pipe = config.pipeline
    loaded = load_entry(
        config.model_entry(CANON.ENUM.MODEL_ROLE.INSTRUCT), torch.device(CPU), torch.float32
    )
    token_slice, _ = calibration_slice(config, loaded.tokenizer)
    ids = torch.from_numpy(token_slice.input_ids.astype(np.int64))
    batch = pipe.runtime.batch_size
    acc = MomentAccumulator(loaded.info.n_layers, loaded.info.d_ff)
    forward_slice(loaded, ids, batch, pipe.calibration.gain_baseline, acc.update)
    m = acc.finalize()
    counter = RateCounter(
        loaded.info.n_layers, pipe.calibration.spike_def_ids, pipe.calibration.tau0
    )
    forward_slice(
        loaded,
        ids,
        batch,
        pipe.calibration.gain_baseline,
        lambda layer, u: counter.update(
            layer, standardize(u, m.mu[layer], m.sigma[layer], pipe.calibration.eps)
        ),
    )
    r_base = counter.r_base()
    r_star = {
        (sd, float(r)): rate_targets(r_base[sd], r).r_star
        for sd in pipe.calibration.spike_def_ids
        for r in pipe.calibration.target_rates
    }
    grid = run_gain_grid(
        make_forward_fn(loaded),
        ids,
        mu=m.mu,
        sigma=m.sigma,
        eps=pipe.calibration.eps,
        gains=pipe.gain_grid.gains,
        spike_def_ids=pipe.calibration.spike_def_ids,
        r_star=r_star,
        rate_match_tol_abs=pipe.gain_grid.rate_match_tol_abs,
        null_id=pipe.gain_grid.null_id,
        batch_size=batch,
        device=CPU,
    )
    return loaded, token_slice, m, pipe, grid


def test_phase2_tau_on_the_calibration_slice_gives_phase2_back(embedded) -> None:  # noqa: ANN001
    loaded, token_slice, m, pipe, grid = embedded
    conds = raster_conditions(tau_frame(grid), loaded.info.n_layers)
    ids = torch.from_numpy(token_slice.input_ids.astype(np.int64))
    calls: list[float] = []
    forward = make_forward_fn(loaded)

    def counting_forward(batch, g, on_u) -> None:  # noqa: ANN001
        calls.append(g)
        forward(batch, g, on_u)

    progress: list[dict] = []
    got = extract_rasters(
        counting_forward,
        ids,
        mu=m.mu,
        sigma=m.sigma,
        eps=pipe.calibration.eps,
        conditions=conds,
        batch_size=pipe.runtime.batch_size,
        device=CPU,
        on_progress=progress.append,
    )
    n_layers, seq_len = loaded.info.n_layers, token_slice.seq_len
    keys = [(c.spike_def_id, c.target_rate, c.g) for c in conds]
    assert (
        keys == sorted(keys) == sorted((r.spike_def_id, r.target_rate, r.g) for r in grid.metrics)
    )
    assert [c.cond_id for c in conds] == list(range(len(conds)))
    assert got.A.dtype == np.uint16 and got.achieved_rate.dtype == np.float64
    assert got.A.shape == (len(conds), token_slice.n_windows, n_layers, seq_len)
    # One pass per gain: every batch of the slice once per distinct g, nothing more.
    gains = sorted({float(g) for g in pipe.gain_grid.gains})
    n_batches = math.ceil(token_slice.n_windows / pipe.runtime.batch_size)
    assert calls == [g for g in gains for _ in range(n_batches)]
    assert [p["g"] for p in progress] == gains

    metrics = {(r.spike_def_id, r.target_rate, r.g): r for r in grid.metrics}
    taus = {(r.spike_def_id, r.target_rate, r.g, r.layer): r for r in grid.tau}
    for c in conds:
        key = (c.spike_def_id, c.target_rate, c.g)
        A = got.A[c.cond_id]
        b = branching(A > 0)
        row = metrics[key]
        assert (b.b_time, b.b_depth, b.n_occupied) == (row.b_time, row.b_depth, row.n_occupied)
        assert int(A.sum(dtype=np.int64)) == row.n_events
        for layer in range(n_layers):
            assert got.achieved_rate[c.cond_id, layer] == taus[(*key, layer)].achieved_rate
    worst = {p["g"]: p["max_abs_rate_err"] for p in progress}
    assert max(worst.values()) == max(r.achieved_rate_max_abs_err for r in grid.metrics)

    # And the lattice itself, value by value, from every u thresholded in numpy.
    for g in (gains[0], CANON.CONST.GAIN_BASELINE, gains[-1]):
        u = captured_u(loaded, ids, g, pipe.runtime.batch_size)
        for c in (c for c in conds if c.g == g):
            want = numpy_counts(u, m.mu, m.sigma, pipe.calibration.eps, c.spike_def_id, c.tau)
            np.testing.assert_array_equal(got.A[c.cond_id], want)


def test_out_of_sample_windows_and_arbitrary_thresholds(embedded) -> None:  # noqa: ANN001
    loaded, token_slice, m, pipe, _ = embedded
    # Other windows (shifted by one token): the calibrated tau is now out of sample.
    shifted = np.roll(token_slice.input_ids, 1, axis=1).astype(np.int64)
    ids = torch.from_numpy(shifted[:10])
    g = CANON.CONST.GAIN_GRID_DEFAULT[1]
    u = captured_u(loaded, ids, g, 4)
    n_layers = loaded.info.n_layers
    z = (u - m.mu[:, None, None, :]) / (
        m.sigma[:, None, None, :] + np.float32(pipe.calibration.eps)
    )
    # Thresholds exactly at an observed z (strictness), just below one (the float32 floor
    # of a float64 between two float32 values), and a loose and a tight one per layer.
    at_value = z.reshape(n_layers, -1).max(axis=1).astype(np.float64)
    between = np.abs(z).reshape(n_layers, -1).max(axis=1).astype(np.float64) * (1 - 1e-12)
    conds = [
        RasterCondition(0, SD.ONE_SIDED_POS, 0.01, g, at_value, np.full(n_layers, 0.01)),
        RasterCondition(1, SD.ONE_SIDED_POS, 0.02, g, np.full(n_layers, 0.5), np.zeros(n_layers)),
        RasterCondition(2, SD.TWO_SIDED_ABS, 0.01, g, between, np.zeros(n_layers)),
        RasterCondition(3, SD.TWO_SIDED_ABS, 0.02, g, np.full(n_layers, 1.75), np.zeros(n_layers)),
    ]
    got = extract_rasters(
        make_forward_fn(loaded),
        ids,
        mu=m.mu,
        sigma=m.sigma,
        eps=pipe.calibration.eps,
        conditions=conds,
        batch_size=4,
        device=CPU,
    )
    n = u[0].size
    for c in conds:
        want = numpy_counts(u, m.mu, m.sigma, pipe.calibration.eps, c.spike_def_id, c.tau)
        np.testing.assert_array_equal(got.A[c.cond_id], want)
        np.testing.assert_array_equal(got.achieved_rate[c.cond_id], want.sum(axis=(0, 2)) / n)
    assert got.A[0].sum() == 0  # strict: the maximum itself is not above itself
    assert (got.A[2].sum(axis=(0, 2)) >= 1).all()  # the maximum is above 1e-12 below it


def test_float32_floor() -> None:
    tau = np.array([0.5, 0.1, -0.1, 3e38, 1e39, -1e39, 0.0])
    got = float32_floor(tau)
    assert got.dtype == np.float32
    assert (got.astype(np.float64) <= tau).all()
    with np.errstate(over="ignore"):
        up = np.nextafter(got, np.float32(np.inf)).astype(np.float64)
    assert (up > tau).all()  # no float32 between floor and tau
    assert got[0] == np.float32(0.5) and got[6] == 0.0
    assert got[4] == np.finfo(np.float32).max and got[5] == -np.inf


class TinyModel:
    """Three layers of u = tanh of a random projection; optionally NaN at one layer."""

    def __init__(self, d_ff: int, nan_layer: int | None = None) -> None:
        gen = torch.Generator().manual_seed(3)
        self.emb = torch.randn(20, d_ff, generator=gen)
        self.nan_layer = nan_layer

    def forward(self, ids: torch.Tensor, g: float, on_u) -> None:  # noqa: ANN001
        h = self.emb[ids.cpu()].to(ids.device)
        for layer in range(3):
            u = torch.tanh(h * (layer + 1))
            if layer == self.nan_layer:
                u = u.clone()
                u[0, 1, 2] = math.nan
            on_u(layer, u)
            h = h + g * u

    def all_u(self, ids: torch.Tensor, g: float) -> np.ndarray:
        per_layer: list[np.ndarray] = []
        self.forward(ids, g, lambda _, u: per_layer.append(u.numpy()))
        return np.stack(per_layer)


def _tiny_conditions(n_layers: int, g: float = 1.0) -> list[RasterCondition]:
    ones = np.ones(n_layers)
    return [RasterCondition(0, SD.ONE_SIDED_POS, 0.1, g, ones, ones * 0.1)]


@pytest.mark.parametrize("device", DEVICES)
def test_tiny_model_counts_on_each_device(device: str) -> None:
    d_ff = 16
    model = TinyModel(d_ff)
    ids = torch.randint(0, 20, (5, 7), generator=torch.Generator().manual_seed(1))
    gen = np.random.default_rng(0)
    mu = gen.normal(size=(3, d_ff)).astype(np.float32) * 0.1
    sigma = gen.uniform(0.5, 1.5, size=(3, d_ff)).astype(np.float32)
    conds = [
        RasterCondition(i, sd, r, g, gen.uniform(0.2, 1.4, 3), np.zeros(3))
        for i, (sd, r, g) in enumerate(
            (sd, r, g)
            for sd in (SD.ONE_SIDED_POS, SD.TWO_SIDED_ABS)
            for r in (1.0, 2.0)
            for g in (0.5, 1.5)
        )
    ]
    got = extract_rasters(
        model.forward,
        ids,
        mu=mu,
        sigma=sigma,
        eps=EPS,
        conditions=conds,
        batch_size=2,
        device=device,
    )
    for c in conds:
        want = numpy_counts(model.all_u(ids, c.g), mu, sigma, EPS, c.spike_def_id, c.tau)
        np.testing.assert_array_equal(got.A[c.cond_id], want)


def test_non_finite_u_names_the_layer() -> None:
    model = TinyModel(8, nan_layer=1)
    ids = torch.zeros((2, 4), dtype=torch.int64)
    with pytest.raises(CheckFailed, match=r"non-finite u at layer 1 at g=1\.0"):
        extract_rasters(
            model.forward,
            ids,
            mu=np.zeros((3, 8), np.float32),
            sigma=np.ones((3, 8), np.float32),
            eps=EPS,
            conditions=_tiny_conditions(3),
            batch_size=2,
            device=CPU,
        )


def test_refusals() -> None:
    ids = torch.zeros((2, 4), dtype=torch.int64)

    def never(*_: object) -> None:
        raise AssertionError("no forward pass may run for refused input")

    def run(mu: np.ndarray, conds: list[RasterCondition]) -> None:
        extract_rasters(
            never,
            ids,
            mu=mu,
            sigma=np.ones_like(mu),
            eps=EPS,
            conditions=conds,
            batch_size=2,
            device=CPU,
        )

    wide = np.zeros((3, np.iinfo(np.uint16).max + 1), np.float32)
    with pytest.raises(ConfigError, match=r"d_ff 65536 exceeds 65535"):
        run(wide, _tiny_conditions(3))
    mu = np.zeros((3, 8), np.float32)
    [c] = _tiny_conditions(3)
    with pytest.raises(ConfigError, match=r"has cond_id 4: pass conditions in cond_id order"):
        run(mu, [RasterCondition(4, c.spike_def_id, c.target_rate, c.g, c.tau, c.r_star)])
    with pytest.raises(ConfigError, match=r"repeats an earlier condition"):
        run(mu, [c, RasterCondition(1, c.spike_def_id, c.target_rate, c.g, c.tau, c.r_star)])
    with pytest.raises(ConfigError, match=r"tau has shape \(2,\), expected \(3,\)"):
        run(mu, [RasterCondition(0, c.spike_def_id, c.target_rate, c.g, c.tau[:2], c.r_star)])
    with pytest.raises(ConfigError, match=r"tau is not finite"):
        run(mu, [RasterCondition(0, c.spike_def_id, 0.1, 1.0, c.tau * np.nan, c.r_star)])
    with pytest.raises(ConfigError, match=r"unknown spike definition"):
        run(mu, [RasterCondition(0, "three_sided", 0.1, 1.0, c.tau, c.r_star)])
    with pytest.raises(ConfigError, match=r"no raster conditions"):
        run(mu, [])


def test_embedded_dataset_a_holds_a_heldout_raster_slice(embedded) -> None:  # noqa: ANN001
    loaded, token_slice, *_ = embedded
    config = load_config(CONFIG)
    cal = config.pipeline.calibration
    tokens = tokenize_concat(load_texts(config.dataset_entry(cal.dataset_role)), loaded.tokenizer)
    n_rasters = CANON.PROFILE.EMBEDDED_DEFAULT.N_WINDOWS_A_RASTERS
    held = sample_heldout_windows(
        tokens,
        cal.seq_len_tokens,
        n_rasters,
        cal.dataset_role,
        CANON.ENUM.SLICE_NAME.RASTERS,
        token_slice.window_index,
    )
    assert held.input_ids.shape == (n_rasters, cal.seq_len_tokens)
    check_disjoint(held.window_index, token_slice.window_index, what="rasters vs calibration")
    assert len(tokens) // cal.seq_len_tokens >= cal.n_windows + n_rasters


def test_raster_conditions_need_every_layer_once(embedded) -> None:  # noqa: ANN001
    loaded, *_, grid = embedded
    frame = tau_frame(grid)
    [c0, *_] = raster_conditions(frame, loaded.info.n_layers)
    first = frame[(frame.spike_def_id == c0.spike_def_id) & (frame.target_rate == c0.target_rate)]
    first = first[first.g == c0.g].sort_values("layer")
    np.testing.assert_array_equal(c0.tau, first.tau.to_numpy())
    np.testing.assert_array_equal(c0.r_star, first.r_star.to_numpy())
    with pytest.raises(ConfigError, match=r"has layers \[0, 1, 2\], expected 0\.\.3 once each"):
        raster_conditions(frame[frame.layer < 3], loaded.info.n_layers)


def test_a_hook_that_fires_twice_fails() -> None:
    model = TinyModel(8)

    def twice(ids: torch.Tensor, g: float, on_u) -> None:  # noqa: ANN001
        model.forward(ids, g, on_u)
        model.forward(ids, g, lambda layer, u: on_u(layer, u) if layer == 2 else None)

    with pytest.raises(CheckFailed, match=r"fired \[1, 1, 2\] times per layer for the batch at"):
        extract_rasters(
            twice,
            torch.zeros((2, 4), dtype=torch.int64),
            mu=np.zeros((3, 8), np.float32),
            sigma=np.ones((3, 8), np.float32),
            eps=EPS,
            conditions=_tiny_conditions(3),
            batch_size=2,
            device=CPU,
        )
