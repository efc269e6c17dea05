"""The study's math: moments, spikes, rate matching, lattices, branching, nulls."""
