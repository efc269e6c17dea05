"""Phase 6 on the pass engine, by independent routes (spec/14_GENERALIZATION_MC_ABLATIONS.md):
the Dataset B NLL against torch.nn.functional.cross_entropy on the unhooked model at
g = GAIN_BASELINE; the ablation interventions scale exactly the sites and layers they
name and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from canon import CANON
from critspec.models.embedded import EmbeddedModelDef, materialize
from critspec.models.hooks import intervene
from critspec.models.loading import load_model
from critspec.passes.consumers.nll import NLL, NllConsumer
from critspec.passes.engine import drive, model_forward
from critspec.passes.intervention import band_layers, default_intervention
from runners.phase6_ablations import ABLATION_SITES, intervention

CPU = torch.device(CANON.ENUM.DEVICE.CPU)
SMALL = EmbeddedModelDef(n_layers=6, hidden=32, d_ff=48, n_heads=4, max_positions=32, seed=9)
SITE = CANON.ENUM.SITE


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    model_dir = materialize(SMALL, Path(tmp_path_factory.mktemp("p6_model")))
    return load_model(
        source=CANON.ENUM.MODEL_SOURCE.EMBEDDED,
        device=CPU,
        dtype=torch.float32,
        local_dir=model_dir,
    )


def test_b_nll_equals_cross_entropy_of_the_unhooked_model(loaded) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(4, len(loaded.tokenizer), size=(5, 20)).astype(np.int64)
    [out] = drive(
        model_forward(loaded),
        torch.from_numpy(ids),
        n_layers=SMALL.n_layers,
        d_ff=SMALL.d_ff,
        batch_size=2,
        intervention=default_intervention(CANON.CONST.GAIN_BASELINE),
        consumers=(NllConsumer(),),
        device=CPU,
    )
    nll_sum = out[NLL].astype(np.float64).sum(axis=1)  # what Phase 6 stores per window
    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.from_numpy(ids)).logits
    ref = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]),
        torch.from_numpy(ids[:, 1:]).reshape(-1),
        reduction="none",
    ).reshape(5, 19)
    np.testing.assert_allclose(nll_sum, ref.double().sum(dim=1).numpy(), rtol=1e-7, atol=0)
    assert out[NLL].shape == (5, 19)


def _site_modules(loaded, site: str) -> list[torch.nn.Module]:
    sites = loaded.sites
    return list(sites.mlps if site == SITE.MLP_OUT else sites.attns)


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@pytest.mark.parametrize("ablation_id", list(ABLATION_SITES))
def test_ablation_scales_exactly_the_named_layers(loaded, ablation_id: str) -> None:
    """A hook registered before the intervention sees each site's raw output, one
    registered after sees what the residual stream receives: their ratio is g on the
    named layers and exactly 1 on every other layer and site."""
    g = 1.25
    iv = intervention(ablation_id, g)
    site, band = ABLATION_SITES[ablation_id]
    named = set(band_layers(band, SMALL.n_layers))
    ids = torch.arange(4, 20).reshape(2, 8)
    for probe in (SITE.MLP_OUT, SITE.ATTN_OUT):
        raw: dict[int, torch.Tensor] = {}
        final: dict[int, torch.Tensor] = {}
        modules = _site_modules(loaded, probe)

        def recorder(store: dict, layer: int):
            def hook(module, args, output):
                store[layer] = _first(output).detach().clone()

            return hook

        before = [m.register_forward_hook(recorder(raw, i)) for i, m in enumerate(modules)]
        try:
            with intervene(loaded.sites, iv):
                after = [m.register_forward_hook(recorder(final, i)) for i, m in enumerate(modules)]
                try:
                    with torch.inference_mode():
                        loaded.model(input_ids=ids)
                finally:
                    for h in after:
                        h.remove()
        finally:
            for h in before:
                h.remove()
        for layer in range(SMALL.n_layers):
            scaled = probe == site and layer in named
            want = raw[layer] * g if scaled else raw[layer]
            assert torch.equal(final[layer], want), (ablation_id, probe, layer)
