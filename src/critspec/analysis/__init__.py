"""Phase 5 analysis: pure statistics on rasters (DESIGN §4b Phase 5)."""
