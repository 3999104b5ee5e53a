"""The ledger: entries of postings, balanced per asset; pending, posted, voided; folds."""
