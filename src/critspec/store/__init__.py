"""Run directories, deterministic writers, hashes and logs."""
