"""Architecture adapters: where a model's MLPs, attentions and down projections are
(spec/06_MODELS_AND_HOOKS.md §4 and §7).

One adapter per family names, for every layer, the three sites of CANON.ENUM.SITE:
the MLP module (its output: the default gain site), the attention module (its first
output, before the residual add) and the MLP's down projection (its input is u).
`recompute_u` is the independent route Phase 0 compares the hook against: it rebuilds u
from the MLP's input through the up/gate projections and the activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from canon import CANON
from critspec.errors import ConfigError


@dataclass(frozen=True)
class MlpSites:
    """Per-layer MLP modules, their down projections and the attention modules;
    n_layers = len(mlps)."""

    family: str
    mlps: tuple[nn.Module, ...]
    down_projs: tuple[nn.Module, ...]
    d_ff: int
    attns: tuple[nn.Module, ...] = ()

    @property
    def n_layers(self) -> int:
        return len(self.mlps)

    def modules_at(self, site: str) -> tuple[nn.Module, ...]:
        """The per-layer modules of a CANON.ENUM.SITE value: the MLP and attention sites
        are those modules' outputs, the down-projection site is its input."""
        by_site = {
            CANON.ENUM.SITE.MLP_OUT: self.mlps,
            CANON.ENUM.SITE.ATTN_OUT: self.attns,
            CANON.ENUM.SITE.DOWN_PROJ_IN: self.down_projs,
        }
        if site not in by_site:
            raise ConfigError(f"unknown site {site!r}; use one of {sorted(by_site)}")
        return by_site[site]


Layout = tuple[list[nn.Module], str, str, int]
"""(layers, attention attribute of a layer, down projection attribute of its MLP, d_ff)."""


def _swiglu(model: Any) -> Layout:
    return list(model.model.layers), "self_attn", "down_proj", int(model.config.intermediate_size)


def _gpt2(model: Any) -> Layout:
    cfg = model.config
    return list(model.transformer.h), "attn", "c_proj", int(cfg.n_inner or 4 * cfg.n_embd)


def _gpt_neox(model: Any) -> Layout:
    cfg = model.config
    return list(model.gpt_neox.layers), "attention", "dense_4h_to_h", int(cfg.intermediate_size)


_FAMILIES: dict[str, tuple[tuple[str, ...], Callable[[Any], Layout]]] = {
    CANON.ENUM.ARCH_FAMILY.SWIGLU: (CANON.ENUM.SWIGLU_MODEL_TYPES, _swiglu),
    CANON.ENUM.ARCH_FAMILY.GPT2: (CANON.ENUM.GPT2_MODEL_TYPES, _gpt2),
    CANON.ENUM.ARCH_FAMILY.GPT_NEOX: (CANON.ENUM.GPT_NEOX_MODEL_TYPES, _gpt_neox),
}


def supported_model_types() -> tuple[str, ...]:
    return tuple(t for types, _ in _FAMILIES.values() for t in types)


def arch_family(model_type: str) -> str:
    """The CANON.ENUM.ARCH_FAMILY of a Hugging Face model_type; ConfigError if unsupported."""
    for family, (types, _) in _FAMILIES.items():
        if model_type in types:
            return family
    raise ConfigError(
        f"model_type {model_type!r} is not supported; supported model types: "
        f"{', '.join(supported_model_types())} (add an adapter in critspec.models.adapters)"
    )


def _in_features(module: nn.Module) -> int:
    # nn.Linear names it in_features; GPT-2's Conv1D stores its weight as [in, out] (nx).
    if isinstance(module, nn.Linear):
        return module.in_features
    return int(getattr(module, "nx", -1))


def adapt(model: Any) -> MlpSites:
    """MlpSites of a causal LM, chosen by model.config.model_type."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", None))
    family = arch_family(model_type)
    try:
        layers, attn_name, down_name, d_ff = _FAMILIES[family][1](model)
        mlps = tuple(layer.mlp for layer in layers)
        downs = tuple(getattr(mlp, down_name) for mlp in mlps)
        attns = tuple(getattr(layer, attn_name) for layer in layers)
    except AttributeError as e:
        raise ConfigError(
            f"model_type {model_type!r} does not have the {family} module layout ({e}); "
            f"load it with AutoModelForCausalLM"
        ) from e
    widths = sorted({_in_features(d) for d in downs})
    if not mlps or widths != [d_ff]:
        raise ConfigError(
            f"model_type {model_type!r}: down projections take widths {widths} over "
            f"{len(mlps)} layers, expected d_ff={d_ff} in every layer"
        )
    return MlpSites(family=family, mlps=mlps, down_projs=downs, d_ff=d_ff, attns=attns)


def recompute_u(sites: MlpSites, layer: int, mlp_input: Tensor) -> Tensor:
    """u of one layer rebuilt from the MLP's input, in float32 (the hook's independent check)."""
    mlp: Any = sites.mlps[layer]
    with torch.no_grad():
        if sites.family == CANON.ENUM.ARCH_FAMILY.SWIGLU:
            u = mlp.act_fn(mlp.gate_proj(mlp_input)) * mlp.up_proj(mlp_input)
        elif sites.family == CANON.ENUM.ARCH_FAMILY.GPT2:
            u = mlp.act(mlp.c_fc(mlp_input))
        else:
            u = mlp.act(mlp.dense_h_to_4h(mlp_input))
    return u.float()
