"""Reconciliation: our books against custodian, CSD and bank statements (pure)."""
