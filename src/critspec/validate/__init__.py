"""Contract validation of artifacts and runs."""
