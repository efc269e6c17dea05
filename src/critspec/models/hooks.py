"""Hooks on the MLP sites: capture u, capture MLP inputs, apply the gain
(spec/06_MODELS_AND_HOOKS.md).

- u is the input of each layer's down projection, taken by a forward pre-hook (no
  recomputation) and handed over as float32.
- The gain multiplies every MLP's output before the residual add,
  h <- h + attn + g * mlp(h), by a forward hook; weights are never edited. x * 1.0
  is exact in IEEE arithmetic, so at g = GAIN_BASELINE the logits are bit-identical
  to the unhooked model.

- An intervention (spec/06_MODELS_AND_HOOKS.md §7) multiplies the output of one site
  (MLP or attention) by g on the named layers only; the gain above is the default
  intervention. A module returning a tuple (attention: output, weights) has its first
  element scaled.

Every context manager removes its hooks on exit, also when the body raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from critspec.errors import ConfigError
from critspec.models.adapters import MlpSites
from critspec.passes.intervention import Intervention, default_intervention


@contextmanager
def _registered(handles: Sequence[RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _first_input(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor:
    # Modules are called positionally by every supported family; kwargs are a fallback
    # so that a call like mlp(hidden_states=x) is still seen.
    value = args[0] if args else next(iter(kwargs.values()), None)
    if not isinstance(value, Tensor):
        raise ConfigError(f"{type(module).__name__} was called without a tensor input")
    return value


@contextmanager
def capture_u(sites: MlpSites, on_u: Callable[[int, Tensor], None]) -> Iterator[None]:
    """Call on_u(layer, u.float()) with the input of every down projection during forwards."""

    def make(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            on_u(layer, _first_input(module, args, kwargs).detach().float())

        return hook

    handles = [
        down.register_forward_pre_hook(make(i), with_kwargs=True)
        for i, down in enumerate(sites.down_projs)
    ]
    with _registered(handles):
        yield


@contextmanager
def capture_mlp_inputs(sites: MlpSites, on_input: Callable[[int, Tensor], None]) -> Iterator[None]:
    """Call on_input(layer, h) with every MLP's input, in the model's own dtype (so that
    recompute_u repeats the forward's arithmetic)."""

    def make(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            on_input(layer, _first_input(module, args, kwargs).detach())

        return hook

    handles = [
        mlp.register_forward_pre_hook(make(i), with_kwargs=True) for i, mlp in enumerate(sites.mlps)
    ]
    with _registered(handles):
        yield


def _scaled(module: nn.Module, output: Any, gain: float) -> Any:
    if isinstance(output, Tensor):
        return output * gain
    if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
        return (output[0] * gain, *output[1:])
    raise ConfigError(
        f"{type(module).__name__} returns {type(output).__name__}, not a tensor; "
        f"the gain hook supports modules that return a tensor or a tuple led by one"
    )


@contextmanager
def intervene(sites: MlpSites, intervention: Intervention) -> Iterator[None]:
    """Multiply the output of the intervention's site by g on its layers while open."""
    gain = float(intervention.g)
    modules = sites.modules_at(intervention.site)
    if len(modules) != sites.n_layers:
        raise ConfigError(
            f"the {sites.family} adapter names {len(modules)} {intervention.site} modules for "
            f"{sites.n_layers} layers: this model's layout does not support the intervention"
        )

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        return _scaled(module, output, gain)

    handles = [
        modules[layer].register_forward_hook(hook)
        for layer in intervention.layer_indices(sites.n_layers)
    ]
    with _registered(handles):
        yield


@contextmanager
def apply_gain(sites: MlpSites, g: float) -> Iterator[None]:
    """Multiply every MLP's output by g while the context is open (the default intervention)."""
    with intervene(sites, default_intervention(g)):
        yield
