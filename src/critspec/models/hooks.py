"""Hooks on the MLP sites: capture u, capture MLP inputs, apply the gain
(spec/06_MODELS_AND_HOOKS.md).

- u is the input of each layer's down projection, taken by a forward pre-hook (no
  recomputation) and handed over as float32.
- The gain multiplies every MLP's output before the residual add,
  h <- h + attn + g * mlp(h), by a forward hook; weights are never edited. x * 1.0
  is exact in IEEE arithmetic, so at g = GAIN_BASELINE the logits are bit-identical
  to the unhooked model.

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


@contextmanager
def apply_gain(sites: MlpSites, g: float) -> Iterator[None]:
    """Multiply every MLP's output by g while the context is open."""
    gain = float(g)

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Tensor:
        if not isinstance(output, Tensor):
            raise ConfigError(
                f"{type(module).__name__} returns {type(output).__name__}, not a tensor; "
                f"the gain hook supports MLPs that return one tensor"
            )
        return output * gain

    handles = [mlp.register_forward_hook(hook) for mlp in sites.mlps]
    with _registered(handles):
        yield
