"""Acceptance checks of phase1 (filled with the phase)."""
