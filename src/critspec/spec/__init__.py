"""Models of the machine-readable spec files."""
