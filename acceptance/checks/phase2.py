"""Acceptance checks of phase2 (filled with the phase)."""
