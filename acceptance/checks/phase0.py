"""Acceptance checks of phase0 (filled with the phase)."""
