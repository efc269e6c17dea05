"""Interventions and conditions, and the one place their keys are derived
(spec/06_MODELS_AND_HOOKS.md §7).

An intervention is (site, layers, g): a CANON.ENUM.INTERVENTION_SITE, the layers it
acts on (a CANON.ENUM.LAYER_BAND name or an explicit sorted tuple of layers) and the
gain. A condition is (spike_def_id, target_rate, intervention). The default
intervention (MLP output, all layers) keys exactly as the study always has,
(spike_def_id, target_rate, g), so every existing artifact keeps its bytes; any other
intervention adds the columns `site` and `layers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from canon import CANON
from critspec.errors import ConfigError

SITE = CANON.ENUM.SITE
BAND = CANON.ENUM.LAYER_BAND
COND_KEY_COLUMNS: tuple[str, ...] = ("spike_def_id", "target_rate", "g")
"""Key columns of a condition under the default intervention (artifacts' row keys)."""
INTERVENTION_COLUMNS: tuple[str, ...] = ("site", "layers")
"""Extra key columns of a condition whose intervention is not the default."""
LAYER_LIST_SEP = "+"
_BANDS = (BAND.EARLY, BAND.MIDDLE, BAND.LATE)

Layers = str | tuple[int, ...]


def _plain(value: Any) -> Any:
    # numpy scalars repr differently from Python ones (np.float64(0.9) vs 0.9): keys and
    # seeds must depend on the value only.
    return value.item() if isinstance(value, np.generic) else value


def band_layers(band: str, n_layers: int) -> tuple[int, ...]:
    """The layers of a CANON.ENUM.LAYER_BAND: ALL, or third i = floor(i L/3)..floor((i+1) L/3)-1."""
    if band == BAND.ALL:
        return tuple(range(n_layers))
    if band not in _BANDS:
        raise ConfigError(f"unknown layer band {band!r}; use one of {[BAND.ALL, *_BANDS]}")
    i = _BANDS.index(band)
    return tuple(range(i * n_layers // 3, (i + 1) * n_layers // 3))


@dataclass(frozen=True)
class Intervention:
    """Scale the output of `site` by g on `layers` (spec/06_MODELS_AND_HOOKS.md §7)."""

    g: float
    site: str = SITE.MLP_OUT
    layers: Layers = BAND.ALL

    def __post_init__(self) -> None:
        object.__setattr__(self, "g", float(_plain(self.g)))
        if self.site not in CANON.ENUM.INTERVENTION_SITE:
            raise ConfigError(
                f"intervention site {self.site!r} is not one of {CANON.ENUM.INTERVENTION_SITE}"
            )
        if not self.g > 0 or not np.isfinite(self.g):
            raise ConfigError(f"intervention gain {self.g} must be finite and > 0")
        if isinstance(self.layers, str):
            band_layers(self.layers, 3)  # validates the name
        else:
            layers = tuple(int(_plain(x)) for x in self.layers)
            if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0:
                raise ConfigError(
                    f"intervention layers {list(self.layers)} must be distinct, sorted, >= 0"
                )
            object.__setattr__(self, "layers", layers)

    @property
    def is_default(self) -> bool:
        """The study's gain: MLP output of every layer (its keys are the old ones)."""
        return self.site == SITE.MLP_OUT and self.layers == BAND.ALL

    def layer_indices(self, n_layers: int) -> tuple[int, ...]:
        """The layers the intervention acts on, for a model of n_layers layers."""
        if isinstance(self.layers, str):
            return band_layers(self.layers, n_layers)
        if self.layers[-1] >= n_layers:
            raise ConfigError(
                f"intervention layers {list(self.layers)} exceed the model's {n_layers} layers"
            )
        return self.layers

    @property
    def layers_label(self) -> str:
        """The `layers` column: the band name, or the layers joined by '+'."""
        if isinstance(self.layers, str):
            return self.layers
        return LAYER_LIST_SEP.join(str(x) for x in self.layers)

    def key(self) -> tuple:
        """(g,) for the default intervention, else (g, site, layers label)."""
        return (self.g,) if self.is_default else (self.g, self.site, self.layers_label)


def default_intervention(g: float) -> Intervention:
    return Intervention(g=g)


@dataclass(frozen=True)
class Condition:
    """(spike_def_id, target_rate, intervention): what one row of a phase's tables is about."""

    spike_def_id: str
    target_rate: float
    intervention: Intervention

    def __post_init__(self) -> None:
        object.__setattr__(self, "spike_def_id", str(self.spike_def_id))
        object.__setattr__(self, "target_rate", float(_plain(self.target_rate)))

    @property
    def g(self) -> float:
        return self.intervention.g

    def key(self) -> tuple:
        """The row key: (spike_def_id, target_rate, g[, site, layers])."""
        return (self.spike_def_id, self.target_rate, *self.intervention.key())

    def columns(self) -> dict[str, Any]:
        """The key columns by name, in key order."""
        names = COND_KEY_COLUMNS + (() if self.intervention.is_default else INTERVENTION_COLUMNS)
        return dict(zip(names, self.key(), strict=True))

    def seed_keys(self) -> tuple:
        """The keys a null of this condition is seeded from, after the null id
        (spec/10_NULLS.md): the row key, so the default keeps its old seeds."""
        return self.key()


def condition(spike_def_id: str, target_rate: float, g: float) -> Condition:
    """A condition under the default intervention."""
    return Condition(spike_def_id, target_rate, default_intervention(g))
