"""Config files: CANON references resolved, validated, hashed."""
