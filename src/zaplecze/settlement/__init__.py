"""Settlement: standing instructions, obligations and netting, fails and CSDR penalties (pure)."""
