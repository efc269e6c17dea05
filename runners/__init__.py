"""Phase runners: one module per phase, each reading like its spec section."""
