"""Multiple-choice evaluation of Phase 6 (spec/14_GENERALIZATION_MC_ABLATIONS.md)."""
