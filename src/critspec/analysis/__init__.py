"""Phase 5 analysis: pure statistics on rasters (spec/11_AVALANCHES_AND_SIGNATURES.md)."""
