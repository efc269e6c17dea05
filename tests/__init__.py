"""Unit tests of critspec."""
