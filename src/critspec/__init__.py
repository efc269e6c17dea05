"""critspec: a spec-driven validation harness for near-critical branching in LM activations."""

__version__ = "0.1.0"
