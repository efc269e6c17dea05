"""Selection of gstar from gain-grid metrics."""
