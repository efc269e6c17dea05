"""Consumers of one forward pass (spec/06_MODELS_AND_HOOKS.md §7); one module each."""

from critspec.passes.consumers.base import Accumulator, Consumer, PassShape
from critspec.passes.consumers.lattice import LatticeConsumer
from critspec.passes.consumers.nll import NllConsumer
from critspec.passes.consumers.option_loglik import OptionLogLikConsumer
from critspec.passes.consumers.topk import TopKConsumer

__all__ = [
    "Accumulator",
    "Consumer",
    "LatticeConsumer",
    "NllConsumer",
    "OptionLogLikConsumer",
    "PassShape",
    "TopKConsumer",
]
