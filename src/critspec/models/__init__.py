"""Model loading, architecture adapters and hooks."""
