"""Phase 8, the release (spec/16_RELEASE.md): the released runs walked through the run
graph, their manifest, a byte-deterministic archive, a self-contained HTML report, and
`critspec verify-release`."""
