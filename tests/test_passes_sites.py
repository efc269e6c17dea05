"""Named sites and interventions on tiny random models of every supported family
(spec/06_MODELS_AND_HOOKS.md §7): identity at GAIN_BASELINE, locality layer by layer,
and the scaled output against an independent route (weights of the site's output
projection scaled on the named layers only)."""

from __future__ import annotations

import copy

import pytest
import torch

from canon import CANON
from critspec.errors import ConfigError
from critspec.models.adapters import adapt
from critspec.models.hooks import intervene
from critspec.passes.intervention import Intervention, band_layers, condition
from tests.test_models_adapters import CASES, LAYERS, OTHER_GAIN, _build, _input_ids

SITE = CANON.ENUM.SITE
BAND = CANON.ENUM.LAYER_BAND
FAMILY = CANON.ENUM.ARCH_FAMILY
# The output projection whose output is the site's output, per family (dropout off in eval).
OUT_PROJ = {
    SITE.MLP_OUT: {
        FAMILY.SWIGLU: "down_proj",
        FAMILY.GPT2: "c_proj",
        FAMILY.GPT_NEOX: "dense_4h_to_h",
    },
    SITE.ATTN_OUT: {FAMILY.SWIGLU: "o_proj", FAMILY.GPT2: "c_proj", FAMILY.GPT_NEOX: "dense"},
}


@pytest.fixture(params=CASES, ids=lambda c: c[0].__name__.strip("_"))
def model(request):
    builder, _, _ = request.param
    return _build(builder, seed=10 + CASES.index(request.param))


def _hidden(model, ids, intervention=None):
    with torch.no_grad():
        if intervention is None:
            out = model(ids, output_hidden_states=True)
        else:
            with intervene(adapt(model), intervention):
                out = model(ids, output_hidden_states=True)
    return out.logits, out.hidden_states


@pytest.mark.parametrize("site", CANON.ENUM.INTERVENTION_SITE)
@pytest.mark.parametrize("layers", [BAND.ALL, BAND.EARLY, BAND.LATE, (1,)])
def test_identity_at_baseline(model, site, layers):
    ids = _input_ids(3)
    plain, _ = _hidden(model, ids)
    hooked, _ = _hidden(model, ids, Intervention(CANON.CONST.GAIN_BASELINE, site, layers))
    assert torch.equal(plain, hooked)


@pytest.mark.parametrize("site", CANON.ENUM.INTERVENTION_SITE)
@pytest.mark.parametrize("layers", [(1,), (2,), BAND.MIDDLE, BAND.LATE])
def test_locality_layer_by_layer(model, site, layers):
    """hidden_states[i] is the input of layer i: unchanged up to the first named layer,
    changed from its output on."""
    ids = _input_ids(4)
    intervention = Intervention(OTHER_GAIN, site, layers)
    named = intervention.layer_indices(LAYERS)
    _, plain = _hidden(model, ids)
    _, hooked = _hidden(model, ids, intervention)
    first = named[0]
    for i in range(first + 1):
        assert torch.equal(plain[i], hooked[i]), f"layer input {i} changed before layer {first}"
    for i in range(first + 1, LAYERS + 1):
        assert not torch.equal(plain[i], hooked[i]), f"hidden state {i} did not change"


@pytest.mark.parametrize("site", CANON.ENUM.INTERVENTION_SITE)
def test_intervention_equals_scaling_the_output_projection_on_named_layers(model, site):
    sites = adapt(model)
    edited = copy.deepcopy(model)
    named = (0, 2)
    with torch.no_grad():
        for layer in named:
            module = adapt(edited).modules_at(site)[layer]
            for p in getattr(module, OUT_PROJ[site][sites.family]).parameters():
                p.mul_(OTHER_GAIN)
        ids = _input_ids(5)
        with intervene(sites, Intervention(OTHER_GAIN, site, named)):
            hooked = model(ids).logits
        reference = edited(ids).logits
    torch.testing.assert_close(hooked, reference, rtol=1e-4, atol=1e-4)
    assert all(not m._forward_hooks for m in sites.modules_at(site))


def test_down_projection_site_is_u():
    model = _build(CASES[0][0], seed=0)
    sites = adapt(model)
    assert sites.modules_at(SITE.DOWN_PROJ_IN) == sites.down_projs
    assert sites.modules_at(SITE.MLP_OUT) == sites.mlps
    assert len(sites.modules_at(SITE.ATTN_OUT)) == LAYERS


def test_bands_are_thirds():
    # Hand-derived: band i of 3 is floor(i L / 3) .. floor((i + 1) L / 3) - 1.
    assert band_layers(BAND.EARLY, 4) == (0,)
    assert band_layers(BAND.MIDDLE, 4) == (1,)
    assert band_layers(BAND.LATE, 4) == (2, 3)
    assert band_layers(BAND.MIDDLE, 30) == tuple(range(10, 20))
    assert band_layers(BAND.ALL, 3) == (0, 1, 2)


def test_condition_keys_default_and_other():
    sd = CANON.ENUM.SPIKE_DEF_ID.ONE_SIDED_POS
    default = condition(sd, 0.003, 1.07)
    assert default.key() == (sd, 0.003, 1.07) and default.seed_keys() == (sd, 0.003, 1.07)
    assert list(default.columns()) == ["spike_def_id", "target_rate", "g"]
    other = type(default)(sd, 0.003, Intervention(1.07, SITE.ATTN_OUT, (0, 3)))
    assert other.key() == (sd, 0.003, 1.07, SITE.ATTN_OUT, "0+3")
    assert list(other.columns()) == ["spike_def_id", "target_rate", "g", "site", "layers"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"g": 1.0, "site": SITE.DOWN_PROJ_IN},
        {"g": 0.0},
        {"g": 1.0, "layers": "upper"},
        {"g": 1.0, "layers": (2, 1)},
    ],
)
def test_bad_interventions_refused(kwargs):
    with pytest.raises(ConfigError):
        Intervention(**kwargs)


def test_layers_beyond_the_model_refused(model):
    with (
        pytest.raises(ConfigError, match="exceed"),
        intervene(adapt(model), Intervention(OTHER_GAIN, SITE.MLP_OUT, (LAYERS,))),
    ):
        pass
