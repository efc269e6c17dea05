"""Acceptance checks, registered by name and declared per phase in spec/phases.yaml."""
