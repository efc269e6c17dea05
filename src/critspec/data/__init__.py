"""Corpora, tokenizers, windows and slices."""
