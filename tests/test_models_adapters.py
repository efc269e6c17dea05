"""Adapters and hooks on tiny random models of every supported family (spec/06_MODELS_AND_HOOKS.md
"Hook point")."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from canon import CANON
from critspec.errors import ConfigError
from critspec.models.adapters import adapt, recompute_u
from critspec.models.hooks import apply_gain, capture_mlp_inputs, capture_u

VOCAB, HIDDEN, D_FF, LAYERS, HEADS, POSITIONS = 40, 16, 24, 3, 2, 16
BATCH, T = 2, 7
OTHER_GAIN = 1.25
# Weights of unit-ish scale so that u, the MLP outputs and the logits are O(1):
# HF's default init (std 0.02) would make every comparison below nearly trivial.
WEIGHT_STD = 0.3
TOKEN_IDS = dict(bos_token_id=0, eos_token_id=1, pad_token_id=2)


def _llama() -> torch.nn.Module:
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            intermediate_size=D_FF,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            num_key_value_heads=HEADS,
            max_position_embeddings=POSITIONS,
            **TOKEN_IDS,
        )
    )


def _qwen2() -> torch.nn.Module:
    return Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            intermediate_size=D_FF,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            num_key_value_heads=1,
            max_position_embeddings=POSITIONS,
            **TOKEN_IDS,
        )
    )


def _gpt2() -> torch.nn.Module:
    # n_inner left unset: the adapter must fall back to d_ff = 4 * n_embd.
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=VOCAB,
            n_positions=POSITIONS,
            n_embd=HIDDEN,
            n_layer=LAYERS,
            n_head=HEADS,
            **TOKEN_IDS,
        )
    )


def _gpt_neox() -> torch.nn.Module:
    return GPTNeoXForCausalLM(
        GPTNeoXConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            intermediate_size=D_FF,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            max_position_embeddings=POSITIONS,
            **TOKEN_IDS,
        )
    )


# (builder, expected family, expected d_ff)
CASES = [
    (_llama, CANON.ENUM.ARCH_FAMILY.SWIGLU, D_FF),
    (_qwen2, CANON.ENUM.ARCH_FAMILY.SWIGLU, D_FF),
    (_gpt2, CANON.ENUM.ARCH_FAMILY.GPT2, 4 * HIDDEN),
    (_gpt_neox, CANON.ENUM.ARCH_FAMILY.GPT_NEOX, D_FF),
]


def _build(builder, seed: int, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.ndim > 1:  # matrices only: norm gains stay one, biases zero
                p.copy_(torch.randn(p.shape, generator=gen) * WEIGHT_STD)
    return model.to(dtype).eval()


def _input_ids(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (BATCH, T), generator=gen)


@pytest.fixture(params=CASES, ids=lambda c: c[0].__name__.strip("_"))
def case(request):
    builder, family, d_ff = request.param
    return _build(builder, seed=CASES.index(request.param)), family, d_ff


def test_adapt_finds_every_layer(case):
    model, family, d_ff = case
    sites = adapt(model)
    assert sites.family == family
    assert sites.d_ff == d_ff
    assert sites.n_layers == LAYERS == model.config.num_hidden_layers
    assert all(d in set(m.modules()) for m, d in zip(sites.mlps, sites.down_projs, strict=True))


def test_captured_u_matches_recomputation(case):
    model, _, d_ff = case
    sites = adapt(model)
    us: dict[int, list[torch.Tensor]] = {}
    hs: dict[int, torch.Tensor] = {}
    with (
        torch.no_grad(),
        capture_u(sites, lambda layer, u: us.setdefault(layer, []).append(u)),
        capture_mlp_inputs(sites, lambda layer, h: hs.__setitem__(layer, h)),
    ):
        model(_input_ids(0))
    assert sorted(us) == list(range(LAYERS))
    for layer in range(LAYERS):
        (u,) = us[layer]  # exactly one call per layer and forward
        assert u.dtype == torch.float32
        assert u.shape == (BATCH, T, d_ff)
        assert u.abs().max() > WEIGHT_STD  # not degenerate
        diff = (u - recompute_u(sites, layer, hs[layer])).abs().max().item()
        assert diff <= CANON.CONST.U_HOOK_MATCH_TOL_ABS


def test_gain_baseline_is_bit_identical_and_other_gain_changes_logits(case):
    model, _, _ = case
    sites = adapt(model)
    ids = _input_ids(1)
    with torch.no_grad():
        plain = model(ids).logits
        with apply_gain(sites, CANON.CONST.GAIN_BASELINE):
            at_baseline = model(ids).logits
        with apply_gain(sites, OTHER_GAIN):
            scaled = model(ids).logits
        after = model(ids).logits
    assert torch.equal(plain, at_baseline)
    assert not torch.equal(plain, scaled)
    assert torch.equal(plain, after)  # hooks are gone after the context


def test_gain_equals_scaling_the_down_projection(case):
    """Independent route: g * mlp(h) == mlp(h) with the down projection's weight and bias
    multiplied by g (its output is the MLP's output in every family, dropout off in eval)."""
    model, _, _ = case
    sites = adapt(model)
    edited = copy.deepcopy(model)
    with torch.no_grad():
        for down in adapt(edited).down_projs:
            for p in down.parameters():
                p.mul_(OTHER_GAIN)
        ids = _input_ids(2)
        with apply_gain(sites, OTHER_GAIN):
            hooked = model(ids).logits
        reference = edited(ids).logits
    torch.testing.assert_close(hooked, reference, rtol=1e-4, atol=1e-4)


def test_hooks_are_removed_when_the_body_raises(case):
    model, _, _ = case
    sites = adapt(model)
    with pytest.raises(RuntimeError), apply_gain(sites, OTHER_GAIN), capture_u(sites, print):
        raise RuntimeError
    assert all(not m._forward_hooks for m in sites.mlps)
    assert all(not d._forward_pre_hooks for d in sites.down_projs)


def test_u_matches_in_bf16():
    model = _build(_llama, seed=3, dtype=torch.bfloat16)
    sites = adapt(model)
    us, hs = {}, {}
    with (
        torch.no_grad(),
        capture_u(sites, us.__setitem__),
        capture_mlp_inputs(sites, hs.__setitem__),
    ):
        model(_input_ids(3))
    for layer in range(LAYERS):
        assert hs[layer].dtype == torch.bfloat16
        assert us[layer].dtype == torch.float32
        diff = (us[layer] - recompute_u(sites, layer, hs[layer])).abs().max().item()
        assert diff <= CANON.CONST.U_HOOK_MATCH_TOL_ABS


def test_unsupported_architecture_is_refused():
    opt = OPTForCausalLM(
        OPTConfig(
            vocab_size=VOCAB,
            hidden_size=HIDDEN,
            ffn_dim=D_FF,
            num_hidden_layers=1,
            num_attention_heads=HEADS,
            word_embed_proj_dim=HIDDEN,
            max_position_embeddings=POSITIONS,
            **TOKEN_IDS,
        )
    )
    with pytest.raises(ConfigError, match="opt.*not supported.*" + CANON.ENUM.GPT2_MODEL_TYPES[0]):
        adapt(opt)
    fake = SimpleNamespace(config=SimpleNamespace(model_type="made_up"))
    with pytest.raises(ConfigError, match="made_up"):
        adapt(fake)


def test_supported_type_with_wrong_layout_is_refused():
    wrong = SimpleNamespace(config=SimpleNamespace(model_type=CANON.ENUM.SWIGLU_MODEL_TYPES[0]))
    with pytest.raises(ConfigError, match="module layout"):
        adapt(wrong)
