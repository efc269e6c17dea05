"""Generators of canon/ and contracts/ from spec/."""
